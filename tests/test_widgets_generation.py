"""nnlib.widgets.GenerationExplorer driven headless on the shipped tiny Llama.

What a learner relies on: the controls exist under the names and CSS classes the docstring
promises; every control changes the state and what is drawn; a slider move redraws from cached
logits without running the model; a step adds one token and runs the model once; the inverse-CDF
draw has the kept, renormalised distribution (chi-square) and, at a fixed seed, equals a numpy
reference loop; at temperature 0 stepping to the end is greedy ``generate``; every number shown
equals a fresh forward pass (no cache) computed here; back, reset and forcing rewind without drift.
The chart is HTML: it is read back with ``html.parser`` (its data attributes, styles and texts),
so what is checked is what the browser is given to draw.
"""
from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from hypothesis import (
    HealthCheck,
    given,
    settings,
    strategies as st,
)
from scipy.stats import chisquare

from nnlib.llama.sampling import Sampler, draw
from nnlib.widgets import GenerationExplorer
from nnlib.widgets.generation import ExplorerChart

PROMPT = "ROMEO:\n"  # the speech begins: an unsure position, where the sliders matter


@pytest.fixture(scope="module")
def llama():
    from nnlib.llama import load_tiny

    return load_tiny(max_seq_len=128, max_batch_size=4)


@pytest.fixture
def forward_calls(llama, monkeypatch):
    """Counts calls of the model (the widget reaches it only through ``Llama.step``)."""
    calls = []
    original = llama.model.forward

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(llama.model, "forward", counting)
    return calls


def prompt_ids(llama, text=PROMPT):
    return llama.tokenizer.encode(text, bos=True, eos=False)


def all_children(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from all_children(child)


class Drawn(HTMLParser):
    """What the chart's markup draws, read back as a browser would parse it: per row the label,
    the solid and faint bars' values (``data-p``, ``data-t1``) and CSS widths in %, the value
    text; the cut's row; each stretch of the cumulative bar; u; every tag seen."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.labels, self.values, self.kept, self.chosen = [], [], [], []
        self.p, self.t1, self.width, self.faint_width = [], [], [], []
        self.segments: dict[int, dict] = {}
        self.cut_after, self.u, self.u_left, self.title = None, None, None, ""
        self.tags, self._into = [], None
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        width = re.search(r"(?:^|;)width:([0-9.]+)%", a.get("style", ""))
        if "data-row" in a:
            assert int(a["data-row"]) == len(self.labels), "rows out of order"
            self.kept.append(a["data-kept"] == "1")
            self.chosen.append(a["data-chosen"] == "1")
            self.labels.append("")
            self.values.append("")
            self._into = None
        elif "title" in a and len(self.labels) > len(self.p):  # a row's label, before its bars
            self._into = ("labels", len(self.labels) - 1)
        elif "data-t1" in a:
            self.t1.append(float(a["data-t1"]))
            self.faint_width.append(float(width.group(1)))
        elif "data-p" in a and "data-segment" not in a:
            self.p.append(float(a["data-p"]))
            self.width.append(float(width.group(1)))
        elif a.get("data-role") == "value":
            self._into = ("values", len(self.labels) - 1)
        elif a.get("data-role") == "cut":
            self.cut_after = int(a["data-after"])
        elif a.get("data-role") == "title":
            self._into = ("title", None)
        elif "data-segment" in a:
            i = int(a["data-segment"])
            left = re.search(r"left:([0-9.]+)%", a["style"])
            self.segments[i] = {"start": float(a["data-start"]), "p": float(a["data-p"]),
                                "left": float(left.group(1)), "width": float(width.group(1)),
                                "text": ""}
            self._into = ("segment", i)
        elif a.get("data-role") == "u":
            self.u = float(a["data-u"])
            self.u_left = float(re.search(r"left:([0-9.]+)%", a["style"]).group(1))

    def handle_endtag(self, tag):
        self._into = None  # labels, values, stretches and the title hold text only

    def handle_data(self, data):
        if self._into is None:
            return
        where, i = self._into
        if where == "title":
            self.title += data
        elif where == "segment":
            self.segments[i]["text"] += data
        else:
            getattr(self, where)[i] += data


def drawn(ex) -> Drawn:
    return Drawn(ex.bars.value)


def fresh_logits(llama, ids):
    """Raw scores (len(ids), V) from one forward pass over the whole sequence, no KV cache."""
    with torch.inference_mode():
        return llama.model.forward(torch.tensor([ids]), 0, use_cache=False)[0].double().numpy()


def reference_keep(p: np.ndarray, kind: str, top_p=0.9, top_k=40, min_p=0.05) -> np.ndarray:
    """Each rule written from its definition, in numpy: the kept ids, most likely first."""
    order = np.argsort(-p, kind="stable")
    if kind == "greedy":
        return order[:1]
    if kind == "top-k":
        return order[:top_k]
    if kind == "min-p":
        return order[p[order] >= min_p * p.max()]
    before = np.cumsum(p[order]) - p[order]  # Meta: drop a token once the mass above it > p
    return order[before <= top_p]


def reference_probs(logits: np.ndarray, T: float) -> np.ndarray:
    z = logits / T
    e = np.exp(z - z.max())
    return e / e.sum()


def test_controls_have_the_documented_names_descriptions_and_classes(llama):
    import ipywidgets as w

    ex = GenerationExplorer(llama, PROMPT)
    assert isinstance(ex.widget, w.VBox) and "nnlib-generation-explorer" in ex.widget._dom_classes
    inside = list(all_children(ex.widget))
    expected = {
        "sampler": (w.Dropdown, "sampler", "nnlib-sampler"),
        "temperature": (w.FloatSlider, "temperature", "nnlib-temperature"),
        "top_p": (w.FloatSlider, "top_p", "nnlib-top-p"),
        "top_k": (w.IntSlider, "top_k", "nnlib-top-k"),
        "min_p": (w.FloatSlider, "min_p", "nnlib-min-p"),
        "seed": (w.IntText, "seed", "nnlib-seed"),
        "n_steps": (w.BoundedIntText, "N", "nnlib-n"),
        "step_button": (w.Button, "step", "nnlib-step"),
        "run_button": (w.Button, "run N", "nnlib-run"),
        "back_button": (w.Button, "back one", "nnlib-back"),
        "reset_button": (w.Button, "reset", "nnlib-reset"),
        "choice": (w.Dropdown, "branch", "nnlib-choice"),
        "force_button": (w.Button, "take it", "nnlib-force"),
        "text": (w.HTML, None, "nnlib-text"),
        "bars": (w.HTML, None, "nnlib-bars"),
        "info": (w.HTML, None, "nnlib-info"),
    }
    for name, (kind, description, css) in expected.items():
        control = getattr(ex, name)
        assert isinstance(control, kind), name
        assert css in control._dom_classes, name
        assert any(control is c for c in inside), f"{name} is not shown in .widget"
        if description is not None:
            assert control.description == description
    assert list(ex.sampler.options) == ["top-p", "top-k", "min-p", "greedy"]
    assert (ex.temperature.min, ex.temperature.max) == (0.0, 2.0)
    assert 0 < ex.top_p.min and ex.top_p.max == 1.0
    assert ex.tokens == [] and not ex.finished
    chart = drawn(ex)
    assert chart.labels == [repr(s) for s in ex.bar_data["labels"]]  # one row per candidate
    assert "script" not in chart.tags and "img" not in chart.tags
    assert "ROMEO:" in ex.text.value
    assert [v for _, v in ex.choice.options] == ex.bar_data["ids"]


def test_bars_show_the_renormalised_probabilities_and_the_t1_ones_behind(llama):
    ex = GenerationExplorer(llama, PROMPT, temperature=0.7, top_p=0.5, seed=0)
    d = ex.bar_data
    logits = fresh_logits(llama, ex.ids)[-1]
    p = reference_probs(logits, 0.7)
    kept = reference_keep(p, "top-p", top_p=0.5)
    renorm = np.zeros_like(p)
    renorm[kept] = p[kept] / p[kept].sum()
    assert d["probs"] == pytest.approx(renorm[d["ids"]].tolist(), abs=1e-5)
    assert d["before_cut"] == pytest.approx(p[d["ids"]].tolist(), abs=1e-5)
    assert d["t1"] == pytest.approx(reference_probs(logits, 1.0)[d["ids"]].tolist(), abs=1e-5)
    assert d["kept"] == [i in set(kept.tolist()) for i in d["ids"]]
    chart = drawn(ex)
    assert chart.p == pytest.approx(renorm[d["ids"]].tolist(), abs=1e-5)
    assert chart.t1 == pytest.approx(reference_probs(logits, 1.0)[d["ids"]].tolist(), abs=1e-5)
    # The CSS widths: proportional to the values, the largest at 1 / 1.75 of the plot.
    top = max(max(chart.p), max(chart.t1))
    assert chart.width == pytest.approx([100 * v / (1.75 * top) for v in chart.p], abs=2e-3)
    assert chart.faint_width == pytest.approx([100 * v / (1.75 * top) for v in chart.t1], abs=2e-3)
    assert chart.kept == d["kept"] and chart.chosen.index(True) == d["chosen"]
    for i, text in enumerate(chart.values):
        before = f"({p[d['ids'][i]]:.3f})"
        assert text.startswith(f"{renorm[d['ids'][i]]:.3f} {before}" if d["kept"][i] else
                               f"cut {before}")
        assert text.endswith(" <-") == (i == d["chosen"])
    assert 0 < d["n_kept"] < len(d["ids"])
    assert chart.cut_after == d["n_kept"] - 1  # the cut is drawn after the last kept row
    p_entropy = -(p * np.log2(np.where(p > 0, p, 1))).sum()
    assert d["entropy"] == pytest.approx(p_entropy, abs=1e-3)
    assert f"{d['entropy']:.2f} bits" in ex.info.value
    # the entropy of what the draw picks from: the kept tokens, renormalised
    q = renorm[renorm > 0]
    assert d["entropy_drawn"] == pytest.approx(-(q * np.log2(q)).sum(), abs=1e-3)
    assert f"keeps {d['n_kept']} of" in ex.info.value
    assert f"entropy {d['entropy_drawn']:.2f} bits" in ex.info.value
    assert "u stays put while you move a slider" in ex.info.value


def test_one_colour_one_meaning(llama):
    """Grey is a dropped token's colour only: the cumulative bar, which holds kept tokens alone,
    shows the kept tokens without a row in a striped blue, not grey."""
    ex = GenerationExplorer(llama, PROMPT, temperature=1.0, top_p=0.95, seed=0)
    assert ex.bar_data["n_kept"] > len(ex.bar_data["ids"])  # some kept tokens have no row
    markup = ex.bars.value
    cumulative = markup.split('data-role="cumulative"', 1)[1].split(">", 1)[0]
    assert "#c8ccd4" not in cumulative and "repeating-linear-gradient" in cumulative
    assert "striped: kept tokens without a row above" in markup


def test_greedy_at_a_temperature_says_it_ignores_it(llama):
    ex = GenerationExplorer(llama, PROMPT, temperature=0.6, sampler="greedy", seed=0)
    assert "ignores temperature" in ex.info.value and "-0.00" not in ex.info.value
    assert "(1.000 before)" not in ex.info.value
    assert "greedy ignores temperature" in ex.bars.value


def test_slider_moves_redraw_from_cached_logits_without_the_model(llama, forward_calls):
    ex = GenerationExplorer(llama, PROMPT, temperature=0.6, top_p=0.9)
    assert len(forward_calls) == 1  # the prompt, once
    markup, before = ex.bars.value, ex.bar_data["before_cut"]
    widths = drawn(ex).p
    ex.temperature.value = 1.5
    assert ex.bars.value != markup and ex.bar_data["before_cut"] != before
    assert drawn(ex).p == pytest.approx(ex.bar_data["probs"])
    assert drawn(ex).p != pytest.approx(widths)
    assert max(ex.bar_data["before_cut"]) < max(before)  # a higher temperature flattens
    logits = ex.stepper.next_logits
    assert ex.bar_data["ids"] == sorted(ex.bar_data["ids"], key=lambda i: -logits[i])
    kept_wide, wide = ex.bar_data["n_kept"], drawn(ex)
    ex.top_p.value = 0.3
    assert ex.bar_data["n_kept"] < kept_wide
    narrow = drawn(ex)  # renormalised over fewer tokens: each kept one drawn longer
    assert sum(narrow.kept) == min(ex.bar_data["n_kept"], len(narrow.kept))
    assert all(a > b for a, b, k in zip(narrow.p, wide.p, narrow.kept) if k)
    ex.temperature.value = 0.0
    assert ex.bar_data["probs"][0] == 1.0 and ex.bar_data["chosen"] == 0  # greedy: the argmax
    assert len(forward_calls) == 1, "a slider move must not run the model"


def test_the_sampler_selector_and_each_rules_slider(llama, forward_calls):
    ex = GenerationExplorer(llama, PROMPT, temperature=1.0, top_p=0.9, seed=4)
    p = reference_probs(fresh_logits(llama, ex.ids)[-1], 1.0)
    calls = len(forward_calls)
    assert not ex.top_p.disabled and ex.top_k.disabled and ex.min_p.disabled
    charts = {ex.bars.value}

    ex.sampler.value = "top-k"
    assert ex.top_p.disabled and not ex.top_k.disabled and ex.min_p.disabled
    ex.top_k.value = 5
    assert ex.bar_data["n_kept"] == 5 and ex.bar_data["kept"] == [True] * 5 + [False] * 7
    assert drawn(ex).cut_after == 4 and drawn(ex).kept == ex.bar_data["kept"]
    charts.add(ex.bars.value)

    ex.sampler.value = "min-p"
    ex.min_p.value = 0.2
    want = reference_keep(p, "min-p", min_p=0.2)
    assert ex.bar_data["n_kept"] == len(want)
    assert ex.pending.kept.tolist() == want.tolist()
    assert sum(drawn(ex).kept) == min(len(want), len(ex.bar_data["ids"]))
    charts.add(ex.bars.value)

    ex.sampler.value = "greedy"
    assert ex.top_p.disabled and ex.top_k.disabled and ex.min_p.disabled
    assert ex.bar_data["n_kept"] == 1 and ex.pending.token == int(p.argmax())
    assert "greedy keeps 1 of" in ex.info.value and "ignores temperature" in ex.info.value
    assert "-0.00" not in ex.info.value and "0 bits" in ex.info.value
    assert ex.bar_data["before_cut"] == pytest.approx(p[ex.bar_data["ids"]].tolist(), abs=1e-5)
    assert drawn(ex).p[0] == 1.0 and drawn(ex).cut_after == 0
    charts.add(ex.bars.value)
    kept_rows = {tuple(Drawn(c).kept) for c in charts}
    assert len(charts) == 4 and len(kept_rows) == 4, "each sampler must draw something different"
    assert len(forward_calls) == calls, "a selector or slider must not run the model"
    with pytest.raises(ValueError, match="sampler kind"):
        GenerationExplorer(llama, PROMPT, sampler="beam")


def test_step_adds_one_token_changes_text_and_chart_and_runs_the_model_once(llama, forward_calls):
    ex = GenerationExplorer(llama, PROMPT, temperature=0.8, top_p=0.9, seed=3)
    text, chart, calls = ex.text.value, drawn(ex), len(forward_calls)
    marked = ex.bar_data["chosen_id"]
    assert chart.labels[chart.chosen.index(True)] == repr(llama.tokenizer.decode([marked]))
    ex.step_button.click()
    assert ex.tokens == [marked]  # step takes the token the chart marked
    assert ex.text.value != text and "<mark" in ex.text.value
    after = drawn(ex)
    assert f"position {len(ex.ids)}" in after.title and after.title != chart.title
    assert after.p != chart.p or after.labels != chart.labels
    assert len(forward_calls) == calls + 1 and forward_calls[-1] == (1, 1)  # one token, cached
    assert ex.history[-1].position == len(prompt_ids(llama))


@pytest.mark.parametrize("sampler", ["top-p", "top-k", "min-p", "greedy"])
def test_stepping_to_the_end_at_temperature_0_equals_greedy_generate(llama, sampler):
    n = 30
    ex = GenerationExplorer(llama, PROMPT, max_gen_len=n, temperature=0.0, sampler=sampler,
                            seed=5)
    ex.run(n + 5)
    assert ex.finished
    (want,), _ = llama.generate([prompt_ids(llama)], n, temperature=0.0)
    assert ex.tokens == want
    assert ex.completion == llama.tokenizer.decode(want)
    assert ex.step() is None  # finished: nothing more


@pytest.mark.parametrize("kind,T,seed", [("top-p", 0.6, 1), ("top-p", 1.7, 123), ("top-k", 1.0, 7),
                                         ("min-p", 1.3, 2)])
def test_at_a_fixed_seed_the_choices_equal_a_numpy_inverse_cdf_loop(llama, kind, T, seed):
    """The relation to the seed: one u = torch.rand(float64) per token from a generator seeded
    with ``seed``, then the first kept token (most likely first) whose cumulative probability
    exceeds u. Re-done here with numpy on fresh forward passes."""
    n = 12
    ex = GenerationExplorer(llama, PROMPT, max_gen_len=n, temperature=T, sampler=kind, seed=seed,
                            top_p=0.9, top_k=20, min_p=0.05)
    ex.run(n)
    g = torch.Generator().manual_seed(seed)
    ids = prompt_ids(llama)
    for _ in range(n):
        u = float(torch.rand((), generator=g, dtype=torch.float64))
        p = reference_probs(fresh_logits(llama, ids)[-1], T)
        kept = reference_keep(p, kind, top_p=0.9, top_k=20, min_p=0.05)
        cum = np.cumsum(p[kept] / p[kept].sum())
        ids.append(int(kept[min(np.searchsorted(cum, u, side="right"), len(kept) - 1)]))
        if ids[-1] in llama.tokenizer.stop_tokens:
            break
    assert ex.ids == ids


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["top-p", "top-k", "min-p"])
def test_the_inverse_cdf_draw_has_the_kept_renormalised_distribution(kind):
    """Chi-square of 20000 draws against the kept probabilities, computed here with numpy."""
    logits = torch.randn(300, generator=torch.Generator().manual_seed(0)) * 2
    sampler = Sampler(kind, temperature=0.9, top_p=0.8, top_k=12, min_p=0.1)
    p = reference_probs(logits.double().numpy(), 0.9)
    kept = reference_keep(p, kind, top_p=0.8, top_k=12, min_p=0.1)
    expected = p[kept] / p[kept].sum()
    g = torch.Generator().manual_seed(1)
    n = 20000
    where = {int(t): k for k, t in enumerate(kept)}
    counts = np.zeros(len(kept))
    for u in torch.rand(n, generator=g, dtype=torch.float64).tolist():
        token = draw(logits, sampler, u).token
        assert token in where, "a token outside the kept set was drawn"
        counts[where[token]] += 1
    # pool the rare tokens so every expected count is at least 5
    big = expected * n >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum()) * n
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    assert chisquare(obs, exp).pvalue > 1e-3


def test_u_stays_while_the_stretches_move_under_it(llama, forward_calls):
    ex = GenerationExplorer(llama, PROMPT, temperature=0.3, top_p=1.0, seed=0)
    u, first = ex.bar_data["u"], ex.pending.token
    assert 0 <= u < 1 and drawn(ex).u == u and drawn(ex).u_left == pytest.approx(100 * u, abs=1e-3)
    assert f"u = {u:.3f}" in ex.info.value
    start, width = ex.bar_data["chosen_start"], ex.bar_data["chosen_prob"]
    assert start <= u < start + width  # the chosen stretch holds u
    seen = {first}
    for T in (0.6, 1.0, 1.5, 2.0):
        ex.temperature.value = T
        assert ex.bar_data["u"] == u  # the same seed: the same u
        s, wd = ex.bar_data["chosen_start"], ex.bar_data["chosen_prob"]
        assert s <= u < s + wd
        stretch = drawn(ex).segments[ex.bar_data["chosen"]]  # the line is in the chosen stretch
        assert stretch["left"] <= drawn(ex).u_left < stretch["left"] + stretch["width"]
        seen.add(ex.pending.token)
    assert len(seen) > 1, "the same u at another temperature should land on another token here"
    assert len(forward_calls) == 1


def test_force_branches_the_text_and_back_undoes_it(llama, forward_calls):
    ex = GenerationExplorer(llama, PROMPT, temperature=0.8, seed=9)
    ex.step()
    drawn_next, u_next = ex.pending.token, ex.bar_data["u"]
    pick = ex.bar_data["ids"][4]
    calls, text = len(forward_calls), ex.text.value
    ex.choice.value = pick
    ex.force_button.click()
    assert ex.tokens[-1] == pick and ex.history[-1].forced
    assert len(forward_calls) == calls + 1  # the model runs on the forced token
    assert "underline" in ex.text.value and ex.text.value != text
    assert ex.bar_data["u"] == u_next  # forcing used no u
    assert ex.back() == pick and not any(s.forced for s in ex.history)
    assert ex.pending.token == drawn_next and ex.text.value == text
    with pytest.raises(ValueError, match="token must be an id"):
        ex.force(llama.model.params.vocab_size)


def test_text_colours_logprob_perplexity_and_cache_readout(llama):
    ex = GenerationExplorer(llama, PROMPT, temperature=1.0, seed=2)
    ex.run(6)
    logits = fresh_logits(llama, ex.ids)
    start = len(ex.prompt_tokens)
    logp = [float(torch.log_softmax(torch.from_numpy(logits[start - 1 + i]), -1)[t])
            for i, t in enumerate(ex.tokens)]
    total = sum(logp)
    assert f"logprob {total:.2f}" in ex.info.value
    assert f"perplexity {math.exp(-total / len(logp)):.2f}" in ex.info.value
    for lp in logp:  # each token on a background of its own probability (hue 0 red .. 120 green)
        assert f"hsl({120 * math.exp(lp):.0f},75%,82%)" in ex.text.value
    n = len(ex.ids)
    assert f"prev_pos = {n - 1}" in ex.info.value and f"holds {n} of" in ex.info.value
    ex.back()
    assert f"prev_pos = {n - 2}" in ex.info.value  # back moves the cache position


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(temperature=st.floats(0.05, 2.0), top_p=st.floats(0.01, 1.0), seed=st.integers(0, 2**31))
def test_the_marked_token_is_kept_and_is_what_step_takes(llama, temperature, top_p, seed):
    ex = GenerationExplorer(llama, PROMPT, max_gen_len=4, temperature=round(temperature, 2),
                            top_p=max(0.01, round(top_p, 2)), seed=seed)
    for _ in range(3):
        pending = ex.pending
        assert pending.token in set(pending.kept.tolist())
        assert ex.step() == pending.token
        s = ex.history[-1]
        assert s.token in set(s.kept.tolist()) and s.u == pending.u
        # The nucleus is Meta's: the mass ranked above the last kept token is at most top_p.
        sorted_probs = torch.sort(s.probs, descending=True).values
        assert float(sorted_probs[: s.n_kept - 1].sum()) <= s.top_p + 1e-5
        if ex.finished:
            break


def test_a_draw_from_the_tail_is_still_shown_and_marked(llama):
    ex = GenerationExplorer(llama, PROMPT, temperature=2.0, top_p=1.0, n_bars=8)
    for seed in range(200):
        ex.seed.value = seed
        if ex.bar_data["chosen_rank"] > 8:
            break
    else:
        pytest.fail("no seed drew a token outside the top 8 at temperature 2")
    d = ex.bar_data
    assert d["chosen"] == 7 and d["ids"][-1] == ex.pending.token == d["chosen_id"]
    assert d["ids"][:7] == torch.topk(ex.stepper.next_logits, 7).indices.tolist()
    assert drawn(ex).segments[7]["start"] == pytest.approx(d["chosen_start"])
    assert drawn(ex).chosen == [False] * 7 + [True]
    assert f"rank {d['chosen_rank']}" in ex.info.value


@pytest.mark.slow
def test_back_rewinds_without_the_model_and_repeats_the_draw(llama, forward_calls):
    ex = GenerationExplorer(llama, PROMPT, temperature=1.0, top_p=0.95, seed=11)
    first = ex.run(6)
    calls = len(forward_calls)
    assert ex.back() == first[-1] and ex.back() == first[-2]
    assert ex.tokens == first[:4] and len(forward_calls) == calls
    assert ex.pending.token == first[4]  # the generator was rewound too
    assert ex.run(2) == first[4:]
    assert len(forward_calls) == calls + 2  # one cached token per step, from the rewound position
    while ex.back() is not None:
        pass
    assert ex.tokens == [] and ex.back() is None


@pytest.mark.slow
def test_reset_and_a_new_seed_restart_from_the_prompt(llama):
    ex = GenerationExplorer(llama, PROMPT, temperature=1.2, top_p=0.95, seed=2)
    first = ex.run(10)
    ex.reset()
    assert ex.tokens == [] and ex.text.value.count("<mark") == 0
    assert ex.run(10) == first
    ex.seed.value = 99
    assert ex.tokens == []
    other = ex.run(10)
    ex.seed.value = 2
    assert ex.run(10) == first and other != first


def test_another_user_of_the_kv_cache_is_noticed(llama):
    ex = GenerationExplorer(llama, PROMPT, temperature=0.0, max_gen_len=20)
    ex.run(5)
    llama.generate([prompt_ids(llama, "KING HENRY:"), prompt_ids(llama, "O")], 10, temperature=0.0)
    ex.run(15)
    (want,), _ = llama.generate([prompt_ids(llama)], 20, temperature=0.0)
    assert ex.tokens == want


def test_eos_ends_the_run_and_is_not_in_tokens(llama, monkeypatch):
    ex = GenerationExplorer(llama, PROMPT, temperature=0.0)
    eos = llama.tokenizer.eos_id
    original = llama.model.forward

    def prefer_eos(*args, **kwargs):
        out = original(*args, **kwargs).clone()
        out[..., eos] += 1e4
        return out

    monkeypatch.setattr(llama.model, "forward", prefer_eos)
    first = ex.step()  # chosen from the prompt's (unchanged) logits
    assert ex.pending.token == eos and ex.bar_data["chosen"] == 0
    assert ex.step() == eos
    assert ex.finished and ex.tokens == [first] and ex.history[-1].eos
    assert "[EOS]" in ex.text.value and "EOS" in ex.info.value
    assert ex.step() is None and ex.run(3) == [] and ex.force(first) is None
    assert ex.back() == eos and not ex.finished and ex.tokens == [first]


def test_the_length_limit_ends_the_run(llama):
    ex = GenerationExplorer(llama, PROMPT, max_gen_len=3, temperature=0.0)
    assert len(ex.run(10)) <= 3 and ex.finished and ex.step() is None
    if not ex.history[-1].eos:
        assert "[max length]" in ex.text.value
    assert drawn(ex).u is None and "was chosen" in drawn(ex).title  # no draw is pending


def test_the_chart_escapes_token_text_and_draws_the_cut_only_after_a_kept_prefix():
    """A token's text is data: markup in it must be shown, never obeyed."""
    labels = ["<b>bold</b>", '"><script>x</script>', " &amp;", "\n"]
    nan = math.nan
    chart = ExplorerChart(4).update(labels, [0.5, 0.3, 0.2, 0.0], [0.4, 0.3, 0.2, 0.1],
                                    [0.4, 0.3, 0.2, 0.1], [True, True, True, False], 0,
                                    [0.0, 0.5, 0.8, nan], 0.2, title="<i>title</i>")
    shown = Drawn(chart.html())
    assert not {"b", "script", "i"} & set(shown.tags), "a label's markup reached the page"
    assert shown.labels == [repr(s) for s in labels] and shown.title == "<i>title</i>"
    assert [shown.segments[i]["text"] for i in range(3)] == ["<b>bol", '"><scr', "&amp;"]
    assert shown.values[0] == "0.500 (0.400) <-" and shown.values[3] == "cut (0.100)"
    assert shown.cut_after == 2 and shown.u == 0.2 and 3 not in shown.segments
    # A draw from the tail keeps a row below a dropped one: the kept rows are no prefix, no cut.
    tail = ExplorerChart(4).update(labels, [0.6, 0.0, 0.0, 0.4], [0.5, 0.2, 0.1, 0.3],
                                   [0.5, 0.2, 0.1, 0.3], [True, False, False, True], 3,
                                   [0.0, nan, nan, 0.6], None)
    shown = Drawn(tail.html())
    assert shown.cut_after is None and shown.u is None and shown.chosen == [0, 0, 0, 1]
    assert shown.segments[3]["left"] == pytest.approx(60.0)
    with pytest.raises(ValueError, match="one entry per bar"):
        ExplorerChart(4).update(labels[:3], [0.5, 0.5, 0.0], [0.5] * 3, [0.5] * 3, [1, 1, 0], 0,
                                [0.0, 0.5, nan], 0.1)


def test_bad_input_says_what_to_do(llama):
    with pytest.raises(ValueError, match="empty"):
        GenerationExplorer(llama, [])
    with pytest.raises(ValueError, match="max_seq_len"):
        GenerationExplorer(llama, [1] * llama.model.params.max_seq_len)
    with pytest.raises(ValueError, match="max_gen_len"):
        GenerationExplorer(llama, PROMPT, max_gen_len=-1)
    with pytest.raises(ValueError, match="top_p"):
        GenerationExplorer(llama, PROMPT, top_p=0.0)
    with pytest.raises(ValueError, match="top_k"):
        GenerationExplorer(llama, PROMPT, top_k=0)
    with pytest.raises(ValueError, match="min_p"):
        GenerationExplorer(llama, PROMPT, min_p=1.5)


def test_notebook_04_s3_and_s12_do_not_depend_on_where_the_learner_left_the_explorer(llama):
    """04 §3 reads the first position from a fresh stepper and §12 sets the controls it relies on
    and resets before running: after a learner has driven the explorer to the end (steps at
    Meta's defaults, greedy, other settings), both give what they give on a fresh explorer."""
    from nnlib.exercises.step_through_generation import _top_p_counts
    from nnlib.llama.stepper import GenerationStepper

    def section_3():  # the notebook's §3 computation, as written there
        first = GenerationStepper(llama, PROMPT, seed=0).next_logits
        return first, _top_p_counts(first)

    def section_12(explorer):  # the notebook's §12 check, as written there
        explorer.sampler.value, explorer.seed.value, explorer.temperature.value = "top-p", 0, 0.0
        explorer.reset()
        explorer.run(12)
        return list(explorer.tokens)

    blue = llama.tokenizer.encode(" blue", bos=False, eos=False)[0]

    def section_12_branch(explorer):  # the notebook's §12 branch cell, as written there
        explorer.sampler.value, explorer.top_p.value = "top-p", 0.9
        explorer.seed.value, explorer.temperature.value = 0, 0.0
        explorer.reset()
        explorer.run(5)
        assert explorer.stepper.next_logits is not None  # the notebook guards this case
        explorer.force(blue)
        explorer.run(4)
        return list(explorer.tokens)

    def over_to_you(explorer):  # the cell after it: top-p sampling at T = 0.8, from the prompt
        explorer.sampler.value, explorer.temperature.value, explorer.top_p.value = "top-p", 0.8, 0.9
        explorer.reset()

    greedy = llama.generate([prompt_ids(llama)], 12, temperature=0.0)[0][0]
    fresh_first, fresh_counts = section_3()
    fresh_tokens = section_12(GenerationExplorer(llama, PROMPT, temperature=0.6, top_p=0.9, seed=0))
    assert fresh_tokens == greedy

    used = GenerationExplorer(llama, PROMPT, temperature=0.6, top_p=0.9, seed=0)
    used.run(3)
    used.sampler.value = "greedy"
    used.run(None)
    used.n_steps.value = used.total_len
    used.run()  # to the end of the answer (EOS or the length limit)
    assert used.finished and used.stepper.next_logits is None
    used.sampler.value, used.temperature.value, used.seed.value = "min-p", 1.7, 5

    first, counts = section_3()
    assert torch.equal(first, fresh_first) and counts == fresh_counts
    assert section_12(used) == fresh_tokens == greedy

    # the branch cell: the same tokens run twice, after the learner played on, and after the
    # "over to you" cell left the widget at T = 0.8 and the learner stepped to the end
    branch = section_12_branch(used)
    assert branch[:5] == greedy[:5] and branch[5] == blue and len(branch) == 10
    assert section_12_branch(used) == branch
    over_to_you(used)
    assert used.tokens == []
    used.n_steps.value = used.total_len
    used.run()
    assert used.finished and used.stepper.next_logits is None
    assert section_12_branch(used) == branch


def test_a_finished_explorer_survives_settings_that_cut_its_last_token():
    """Finished, the explorer shows how its last token was chosen; a slider that now cuts that
    token (greedy, when the last draw was not the argmax) must redraw, not raise: the token's
    chance under the new rule is 0 and it has no stretch on the cumulative bar."""
    import math

    from nnlib.llama import load_tiny
    from nnlib.widgets.generation import GenerationExplorer

    ex = GenerationExplorer(load_tiny(max_seq_len=128, max_batch_size=4), "ROMEO:", max_gen_len=6,
                            temperature=1.5, top_p=1.0, seed=3)
    ex.run()
    last = ex.history[-1]
    assert last.token != int(last.logits.argmax())  # the case: the last draw was not greedy's
    ex.temperature.value = 0.0
    assert ex.bar_data["chosen_prob"] == 0.0 and math.isnan(ex.bar_data["chosen_start"])
    assert "finished" in ex.info.value
