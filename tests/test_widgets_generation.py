"""nnlib.widgets.GenerationExplorer driven headless on the shipped tiny Llama.

What a learner relies on: the controls exist under the names and CSS classes the docstring
promises; a slider move redraws from cached logits without running the model; a step adds one
token, changes the text and the chart, and runs the model once; stepping to the end is exactly
``generate`` with the same seed, temperature and top_p; every number shown equals a fresh forward
pass; back and reset rewind without drift.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nnlib.widgets import GenerationExplorer  # noqa: E402

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


def test_controls_have_the_documented_names_descriptions_and_classes(llama):
    import ipywidgets as w

    ex = GenerationExplorer(llama, PROMPT)
    assert isinstance(ex.widget, w.VBox) and "nnlib-generation-explorer" in ex.widget._dom_classes
    inside = list(all_children(ex.widget))
    expected = {
        "temperature": (w.FloatSlider, "temperature", "nnlib-temperature"),
        "top_p": (w.FloatSlider, "top_p", "nnlib-top-p"),
        "seed": (w.IntText, "seed", "nnlib-seed"),
        "n_steps": (w.BoundedIntText, "N", "nnlib-n"),
        "step_button": (w.Button, "step", "nnlib-step"),
        "run_button": (w.Button, "run N", "nnlib-run"),
        "back_button": (w.Button, "back one", "nnlib-back"),
        "reset_button": (w.Button, "reset", "nnlib-reset"),
        "text": (w.HTML, None, "nnlib-text"),
        "bars": (w.Image, None, "nnlib-bars"),
        "info": (w.HTML, None, "nnlib-info"),
    }
    for name, (kind, description, css) in expected.items():
        control = getattr(ex, name)
        assert isinstance(control, kind), name
        assert css in control._dom_classes, name
        assert any(control is c for c in inside), f"{name} is not shown in .widget"
        if description is not None:
            assert control.description == description
    assert (ex.temperature.min, ex.temperature.max) == (0.0, 2.0)
    assert 0 < ex.top_p.min and ex.top_p.max == 1.0
    assert ex.tokens == [] and not ex.finished
    assert ex.bars.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ROMEO:" in ex.text.value


def test_slider_moves_redraw_from_cached_logits_without_the_model(llama, forward_calls):
    ex = GenerationExplorer(llama, PROMPT, temperature=0.6, top_p=0.9)
    assert len(forward_calls) == 1  # the prompt, once
    png, probs = ex.bars.value, ex.bar_data["probs"]
    widths = [b.get_width() for b in ex.chart.bars]
    ex.temperature.value = 1.5
    assert ex.bars.value != png and ex.bar_data["probs"] != probs
    assert [b.get_width() for b in ex.chart.bars] == pytest.approx(ex.bar_data["probs"])
    assert [b.get_width() for b in ex.chart.bars] != pytest.approx(widths)
    assert max(ex.bar_data["probs"]) < max(probs)  # a higher temperature flattens
    assert ex.bar_data["ids"] == sorted(ex.bar_data["ids"], key=lambda i: -ex.pending.logits[i])
    kept_wide, png = ex.bar_data["n_kept"], ex.bars.value
    ex.top_p.value = 0.3
    assert ex.bar_data["n_kept"] < kept_wide and ex.bars.value != png
    ex.temperature.value = 0.0
    assert ex.bar_data["probs"][0] == 1.0 and ex.bar_data["chosen"] == 0  # greedy: the argmax
    assert len(forward_calls) == 1, "a slider move must not run the model"


def test_step_adds_one_token_changes_text_and_chart_and_runs_the_model_once(llama, forward_calls):
    ex = GenerationExplorer(llama, PROMPT, temperature=0.8, top_p=0.9, seed=3)
    text, png, calls = ex.text.value, ex.bars.value, len(forward_calls)
    marked = ex.bar_data["chosen_id"]
    ex.step_button.click()
    assert ex.tokens == [marked]  # step takes the token the chart marked
    assert ex.text.value != text and "<mark" in ex.text.value
    assert ex.bars.value != png
    assert len(forward_calls) == calls + 1 and forward_calls[-1] == (1, 1)  # one token, cached
    assert ex.history[-1].position == len(prompt_ids(llama))


@pytest.mark.parametrize("temperature,top_p,seed", [(0.0, 0.9, 0), (0.6, 0.9, 1), (1.0, 0.5, 7),
                                                    (1.7, 1.0, 123)])
def test_stepping_to_the_end_equals_generate(llama, temperature, top_p, seed):
    n = 30
    ex = GenerationExplorer(llama, PROMPT, max_gen_len=n, temperature=temperature, top_p=top_p,
                            seed=seed)
    ex.run(n + 5)
    assert ex.finished
    torch.manual_seed(seed)
    (want,), _ = llama.generate([prompt_ids(llama)], n, temperature=temperature, top_p=top_p)
    assert ex.tokens == want
    assert ex.completion == llama.tokenizer.decode(want)
    assert ex.step() is None  # finished: nothing more


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(temperature=st.floats(0.05, 2.0), top_p=st.floats(0.01, 1.0), seed=st.integers(0, 2**31))
def test_the_marked_token_is_in_the_nucleus_and_is_what_step_takes(llama, temperature, top_p, seed):
    ex = GenerationExplorer(llama, PROMPT, max_gen_len=4, temperature=round(temperature, 2),
                            top_p=max(0.01, round(top_p, 2)), seed=seed)
    for _ in range(3):
        pending = ex.pending
        assert pending.token in set(pending.kept.tolist())
        assert ex.step() == pending.token
        s = ex.history[-1]
        assert s.token in set(s.kept.tolist())
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
    assert d["ids"][:7] == torch.topk(ex.pending.logits, 7).indices.tolist()
    assert any(f"rank {d['chosen_rank']}" in t.get_text() for t in ex.chart.values)


@pytest.mark.slow
def test_numbers_shown_equal_a_fresh_forward_pass(llama):
    ex = GenerationExplorer(llama, PROMPT, temperature=0.9, top_p=0.8, seed=5)
    ex.run(8)
    ids = torch.tensor([ex.ids])
    with torch.inference_mode():
        logits = llama.model.forward(ids, 0, use_cache=False)[0].float()
    start = len(ex.prompt_tokens)
    logp = torch.log_softmax(logits, -1)
    for i, s in enumerate(ex.history):
        assert s.logprob == pytest.approx(float(logp[start - 1 + i, s.token]), abs=1e-4)
        assert torch.allclose(s.logits, logits[start - 1 + i], atol=1e-4)
    T = ex.temperature.value
    fresh = torch.softmax(logits[-1] / T, -1)
    assert torch.allclose(ex.pending.probs, fresh, atol=1e-5)
    assert ex.bar_data["probs"] == pytest.approx([float(fresh[i]) for i in ex.bar_data["ids"]],
                                                 abs=1e-5)


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
    assert ex.step() is None and ex.run(3) == []
    assert ex.back() == eos and not ex.finished and ex.tokens == [first]


def test_the_length_limit_ends_the_run(llama):
    ex = GenerationExplorer(llama, PROMPT, max_gen_len=3, temperature=0.0)
    assert len(ex.run(10)) <= 3 and ex.finished and ex.step() is None
    if not ex.history[-1].eos:
        assert "[max length]" in ex.text.value


def test_bad_input_says_what_to_do(llama):
    with pytest.raises(ValueError, match="empty"):
        GenerationExplorer(llama, [])
    with pytest.raises(ValueError, match="max_seq_len"):
        GenerationExplorer(llama, [1] * llama.model.params.max_seq_len)
    with pytest.raises(ValueError, match="max_gen_len"):
        GenerationExplorer(llama, PROMPT, max_gen_len=0)
    with pytest.raises(ValueError, match="top_p"):
        GenerationExplorer(llama, PROMPT, top_p=0.0)


def test_the_nucleus_cut_is_drawn_or_named_when_it_lies_below_the_bars(llama):
    explorer = GenerationExplorer(llama, PROMPT, temperature=0.7, top_p=0.5, seed=0)
    chart = explorer.chart
    n_kept = explorer.bar_data["n_kept"]
    assert 0 < n_kept < chart.n, "at T=0.7, top_p=0.5 the nucleus is shorter than the chart here"
    assert chart.cut.get_visible() and chart.cut_text.get_text() == "nucleus cut"
    explorer.temperature.value, explorer.top_p.value = 1.5, 0.9  # a flat tail: many tokens kept
    n_kept = explorer.bar_data["n_kept"]
    assert n_kept > chart.n
    assert not chart.cut.get_visible()
    assert chart.cut_text.get_visible() and f"after rank {n_kept}" in chart.cut_text.get_text()
