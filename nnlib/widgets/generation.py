"""``GenerationExplorer`` (notebook 04): step through generation one token at a time, with a
sampler selector (top-p, top-k, min-p, greedy), a temperature slider, and a chart of the draw.

The generation in progress is a ``GenerationStepper`` and each decision a ``sampling.draw`` (both
tested on their own); this module wires controls to them and draws. ``ExplorerChart`` takes plain
arrays and writes the chart as HTML, which the browser lays out: a slider move costs the
distribution's arithmetic and a few kilobytes of markup, not a matplotlib redraw. Plain methods
(``step``, ``back``, ``run``, ``force``) let tests drive it headless; the ipywidgets tree is
``.widget``.
"""
from __future__ import annotations

import html
import math
from typing import Any

import ipywidgets as w
import numpy as np
import torch
from IPython.display import display

from nnlib import palette
from nnlib.llama.generation import GenerationStepper
from nnlib.llama.sampling import SAMPLERS, Draw, Sampler, candidates, draw, entropy_bits, rank_of
from nnlib.llama.tokenizer import display_piece

_KEPT, _DROPPED, _CHOSEN = palette.KEPT, palette.DROPPED, palette.CHOSEN
# On the cumulative bar, kept tokens that have no row above: blue (kept), striped (not listed).
# Grey means one thing only, a dropped token.
_KEPT_UNLISTED = f"repeating-linear-gradient(135deg,{palette.KEPT} 0 3px,#a9bedf 3px 6px)"
_FAINT = "rgba(159,180,214,0.45)"  # the temperature-1 bar behind the solid one
_LABEL_PX, _ROW_PX = 130, 20  # the label column; one candidate's row
_RIGHT = 1.75  # the plot is this many times the largest value wide: room for the value texts


def _pct(x: float) -> str:
    """A CSS percentage: positions scale with the chart's width."""
    return f"{100 * x:.3f}%"


class ExplorerChart:
    """The next-token picture as HTML with inline styles, drawn by the browser (no image).

    Top: one row per candidate, most likely first. The solid bar is the probability the draw
    uses (after temperature, renormalised over what the rule kept: 0 for a dropped token), blue
    kept, grey dropped, orange with an outline the chosen one; behind it a faint bar at
    temperature 1. Its text gives the value before the cut in brackets ("cut" for a dropped one).
    A dashed red line follows the last kept row when the kept tokens are a prefix of the rows.
    The x scale follows the largest value (it takes ``1 / 1.75`` of the width). Bottom: the kept
    tokens laid end to end over [0, 1) (the cumulative bar) in the same order, the candidates'
    stretches coloured, the kept tokens without a row striped blue (grey only ever means
    dropped, and a dropped token has no stretch), and a line at ``u``: the draw takes the token
    whose stretch holds u.

    ``ExplorerChart(n)``; ``update(labels, probs, before_cut, t1, kept, chosen, starts, u,
    title)`` takes one entry per bar (``starts``: where each kept bar's stretch begins on the
    cumulative bar, nan for a dropped one; ``u`` None: no draw pending) and returns the chart;
    ``html()`` is the markup. Why HTML: a matplotlib redraw plus PNG encoding took 80 to 250 ms
    per slider move or step here; writing this markup takes well under a millisecond.

    The numbers drawn are in data attributes, so a test reads them without measuring pixels:
    each row ``data-row`` (its index) with ``data-kept``/``data-chosen``, its bars ``data-p``
    (solid) and ``data-t1`` (faint), its text ``data-role="value"``; the cut
    ``data-role="cut"`` with ``data-after`` (the last kept row); each stretch ``data-segment``
    with ``data-start`` and ``data-p``; the line ``data-role="u"`` with ``data-u``. Every
    label is escaped: a token's text is never markup."""

    def __init__(self, n: int) -> None:
        if int(n) < 1:
            raise ValueError(f"the chart needs at least one bar; got n = {n!r}.")
        self.n = int(n)
        self._html = ""

    def update(self, labels: list[str], probs: Any, before_cut: Any, t1: Any, kept: Any,
               chosen: int | None, starts: Any, u: float | None, title: str = "") -> ExplorerChart:
        p, before, faint = np.asarray(probs, float), np.asarray(before_cut, float), np.asarray(t1, float)
        keep, start = [bool(k) for k in kept], np.asarray(starts, float)
        if not (len(labels) == len(p) == len(before) == len(faint) == len(keep) == len(start) == self.n):
            raise ValueError(f"every array needs one entry per bar ({self.n}); got {len(labels)} "
                             f"labels, {len(p)} probs, {len(before)} before_cut, {len(faint)} t1, "
                             f"{len(keep)} kept, {len(start)} starts.")
        xmax = _RIGHT * max(float(p.max()), float(faint.max()), 1e-9)
        n_kept = sum(keep)
        cut_after = n_kept - 1 if 0 < n_kept < self.n and all(keep[:n_kept]) else None
        rows, segments = [], []
        for i in range(self.n):
            colour = _CHOSEN if i == chosen else (_KEPT if keep[i] else _DROPPED)
            outline = ";box-shadow:inset 0 0 0 1px #000" if i == chosen else ""
            shown = f"{p[i]:.3f} ({before[i]:.3f})" if keep[i] else f"cut ({before[i]:.3f})"
            value_style = f";color:{palette.CHOSEN_TEXT};font-weight:bold" if i == chosen else ""
            label = html.escape(repr(labels[i]))
            rows.append(
                f'<div data-row="{i}" data-kept="{int(keep[i])}" data-chosen="{int(i == chosen)}" '
                f'style="display:flex;height:{_ROW_PX}px;line-height:{_ROW_PX}px">'
                f'<div title="{label}" style="flex:none;width:{_LABEL_PX}px;box-sizing:border-box;'
                f'padding-right:6px;text-align:right;font-family:monospace;font-size:12px;'
                f'white-space:pre;overflow:hidden;text-overflow:ellipsis">{label}</div>'
                f'<div style="position:relative;flex:1;border-left:1px solid #888">'
                f'<div data-t1="{float(faint[i])!r}" style="position:absolute;left:0;top:1px;bottom:1px;'
                f'width:{_pct(faint[i] / xmax)};background:{_FAINT}"></div>'
                f'<div data-p="{float(p[i])!r}" style="position:absolute;left:0;top:5px;bottom:5px;'
                f'width:{_pct(p[i] / xmax)};background:{colour}{outline}"></div>'
                f'<span data-role="value" style="position:absolute;white-space:nowrap;'
                f'left:calc({_pct(max(p[i], faint[i]) / xmax)} + 4px){value_style}">'
                f'{shown}{" &lt;-" if i == chosen else ""}</span></div></div>')
            if i == cut_after:
                rows.append(f'<div data-role="cut" data-after="{i}" style="margin-left:'
                            f'{_LABEL_PX}px;border-top:1.5px dashed {palette.CUT}"></div>')
            if keep[i] and not math.isnan(start[i]):
                inside = html.escape(labels[i].strip()[:6]) if p[i] > 0.06 else ""
                segments.append(
                    f'<div data-segment="{i}" data-start="{float(start[i])!r}" data-p="{float(p[i])!r}" '
                    f'style="position:absolute;top:0;bottom:0;left:{_pct(start[i])};'
                    f'width:{_pct(p[i])};background:{colour};box-sizing:border-box;'
                    f'border-right:1px solid #fff{outline};overflow:hidden;white-space:pre;'
                    f'color:#fff;font-size:10px;line-height:26px;text-align:center">{inside}</div>')
        if u is not None:
            side = f"left:calc({_pct(u)} + 5px)" if u < 0.8 else f"right:calc({_pct(1 - u)} + 5px)"
            segments.append(
                f'<div data-role="u" data-u="{float(u)!r}" style="position:absolute;top:-7px;'
                f'bottom:-3px;left:{_pct(u)};width:2px;margin-left:-1px;background:#000"></div>'
                f'<div style="position:absolute;bottom:100%;margin-bottom:2px;{side};'
                f'white-space:nowrap">u = {u:.3f}</div>')
        ticks = "".join(
            f'<span style="position:absolute;left:{_pct(x)};transform:translateX(-'
            f'{_pct(x)})">{x:.1f}</span>' for x in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0))
        caption = "font-size:10px;color:#555;text-align:center"
        self._html = (
            '<div class="nnlib-chart" style="width:600px;box-sizing:border-box;padding:6px 8px;'
            'background:#fff;color:#222;font-family:sans-serif;font-size:11px;line-height:1.3">'
            f'<div data-role="title" style="font-size:12px;margin-bottom:4px">'
            f'{html.escape(title)}</div>'
            f'<div>{"".join(rows)}</div>'
            f'<div style="margin-left:{_LABEL_PX}px;border-top:1px solid #888;padding-top:3px;'
            f'{caption}">probability the draw uses, '
            'renormalised over the kept tokens (in brackets: before the cut); faint: at '
            'temperature 1</div>'
            f'<div data-role="cumulative" style="position:relative;margin:26px 0 0 {_LABEL_PX}px;'
            f'height:26px;background:{_KEPT_UNLISTED}">{"".join(segments)}</div>'
            f'<div style="position:relative;margin-left:{_LABEL_PX}px;height:14px;font-size:10px;'
            f'color:#555">{ticks}</div>'
            f'<div style="margin-left:{_LABEL_PX}px;{caption}">cumulative probability over the '
            'kept tokens, most likely first (striped: kept tokens without a row above): the draw '
            'takes the stretch that holds u</div></div>')
        return self

    def html(self) -> str:
        """The markup of the last ``update`` (empty before the first)."""
        return self._html


class GenerationExplorer:
    """Step through generation one token at a time and see how each token is drawn.

    ``GenerationExplorer(llama, prompt)``: ``prompt`` is text (encoded with ``bos=True``: a
    BOS in front where the tokenizer adds one) or token ids.
    The chart shows the candidates for the *next* position, ranked by raw logit (so temperature
    never reorders them): the probability the draw uses (after temperature and the sampler's
    cut, renormalised over the kept tokens) with its value before the cut as a label, faint
    temperature-1 bars behind, and the cumulative bar with the uniform number ``u`` of the next
    draw. The token whose stretch holds u is the one **step** takes (orange). Moving a slider
    recomputes all that from the cached logits; it never runs the model. u stays where it is when
    a setting moves while the stretches move under it: that is why one seed gives another token
    at another temperature.

    Controls, as attribute: ``description`` (CSS class a browser test can select), what:

    - ``sampler``: "sampler" (``nnlib-sampler``), Dropdown of ``sampling.SAMPLERS``; the sliders
      of the other kinds are disabled
    - ``temperature``: "temperature" (``nnlib-temperature``), FloatSlider 0 to 2 (0 = greedy)
    - ``top_p``: "top_p" (``nnlib-top-p``), FloatSlider 0.01 to 1
    - ``top_k``: "top_k" (``nnlib-top-k``), IntSlider 1 to 200
    - ``min_p``: "min_p" (``nnlib-min-p``), FloatSlider 0 to 1
    - ``seed``: "seed" (``nnlib-seed``), IntText; a new seed restarts from the prompt
    - ``n_steps``: "N" (``nnlib-n``), how many tokens "run N" adds
    - ``step_button``: "step" (``nnlib-step``), one token
    - ``run_button``: "run N" (``nnlib-run``), N tokens, stopping at EOS
    - ``back_button``: "back one" (``nnlib-back``), remove the newest token (a forced one too)
    - ``reset_button``: "reset" (``nnlib-reset``), back to the prompt with the same seed
    - ``choice``: "branch" (``nnlib-choice``), Dropdown of the candidates shown;
      ``force_button``: "take it" (``nnlib-force``) commits that token instead of the draw
    - ``text``: HTML (``nnlib-text``), the prompt in bold, then each token coloured by the
      probability the model gave it (temperature 1, red unlikely to green likely; hover for the
      numbers), forced tokens underlined, the newest ``<mark>``-ed, "[EOS]"/"[max length]"
    - ``bars``: HTML (``nnlib-bars``), the chart, written by ``chart`` (an ``ExplorerChart``)
    - ``info``: HTML (``nnlib-info``): how many tokens the rule keeps and the entropy in bits of
      the distribution the draw uses (the kept tokens renormalised; before the cut and at T = 1
      in brackets), u and the stretch it falls in, and why u stays put while a slider moves;
      greedy is labelled as ignoring temperature (its draw has 0 bits); the path's logprob and
      perplexity, ``prev_pos`` and the KV cache's fill
    - ``widget``: VBox (``nnlib-generation-explorer``), all of the above

    State lives in ``stepper`` (a ``GenerationStepper``: ids, cache position, history, rewind,
    the generator); ``tokens``, ``history``, ``finished`` are its. ``pending`` is the
    ``sampling.Draw`` step would commit now and ``bar_data`` what the chart shows. Methods:
    ``step()`` -> the chosen id (None once finished), ``run(n)``, ``back()``, ``reset()``,
    ``force(token)``; ``settings()`` is the current ``Sampler``.

    The draw is by inverse CDF (``GenerationStepper.step_with``): one u per token from the
    stepper's generator seeded with ``seed``, so a fixed seed and settings repeat the same text,
    and back then step repeats the same draw. ``generate`` (Meta's ``torch.multinomial``) draws
    from the same distribution but, at the same seed, other tokens; at temperature 0 (or greedy)
    both take the argmax, so stepping to the end equals greedy ``generate``. If other code reuses
    the model's KV cache in between, the stepper re-runs only what the cache no longer holds.
    """

    def __init__(self, llama: Any, prompt: Any, max_gen_len: int | None = None,
                 temperature: float = 0.6, top_p: float = 0.9, seed: int = 0, n_bars: int = 12,
                 sampler: str = "top-p", top_k: int = 40, min_p: float = 0.05) -> None:
        if not 0 <= temperature <= 2 or not 0 < top_p <= 1:
            raise ValueError(f"temperature must be in [0, 2] and top_p in (0, 1]; got "
                             f"{temperature!r}, {top_p!r}.")
        Sampler(sampler, temperature, top_p, top_k, min_p)  # a clear error for the others
        self.llama = llama
        self.stepper = GenerationStepper(llama, prompt, max_gen_len, seed=seed, n_candidates=n_bars)
        self.prompt_tokens = self.stepper.prompt_tokens
        self.max_gen_len, self.total_len = self.stepper.max_gen_len, self.stepper.total_len
        self.n_bars = n_bars
        max_seq_len = llama.model.params.max_seq_len

        style = {"description_width": "initial"}
        self.sampler = w.Dropdown(options=list(SAMPLERS), value=sampler, description="sampler",
                                  layout=w.Layout(width="190px"))
        self.temperature = w.FloatSlider(value=temperature, min=0.0, max=2.0, step=0.05,
                                         description="temperature", readout_format=".2f",
                                         style=style)
        self.top_p = w.FloatSlider(value=top_p, min=0.01, max=1.0, step=0.01,
                                   description="top_p", readout_format=".2f")
        self.top_k = w.IntSlider(value=top_k, min=1, max=200, description="top_k")
        self.min_p = w.FloatSlider(value=min_p, min=0.0, max=1.0, step=0.01,
                                   description="min_p", readout_format=".2f")
        self.seed = w.IntText(value=seed, description="seed", layout=w.Layout(width="160px"))
        self.n_steps = w.BoundedIntText(value=10, min=1, max=max_seq_len, description="N",
                                        layout=w.Layout(width="130px"))
        self.step_button = w.Button(description="step", button_style="primary", icon="step-forward")
        self.run_button = w.Button(description="run N", icon="forward")
        self.back_button = w.Button(description="back one", icon="step-backward")
        self.reset_button = w.Button(description="reset", icon="undo")
        self.choice = w.Dropdown(options=[], description="branch", layout=w.Layout(width="260px"))
        self.force_button = w.Button(description="take it", icon="code-branch")
        self.text = w.HTML()
        self.bars = w.HTML()
        self.chart: ExplorerChart | None = None  # writes ``bars``; made for the number of rows
        self.info = w.HTML()
        for widget, css in [(self.sampler, "sampler"), (self.temperature, "temperature"),
                            (self.top_p, "top-p"), (self.top_k, "top-k"), (self.min_p, "min-p"),
                            (self.seed, "seed"), (self.n_steps, "n"), (self.step_button, "step"),
                            (self.run_button, "run"), (self.back_button, "back"),
                            (self.reset_button, "reset"), (self.choice, "choice"),
                            (self.force_button, "force"), (self.text, "text"),
                            (self.bars, "bars"), (self.info, "info")]:
            widget.add_class(f"nnlib-{css}")
        self.widget = w.VBox([
            w.HBox([self.sampler, self.temperature, self.seed]),
            w.HBox([self.top_p, self.top_k, self.min_p]),
            w.HBox([self.step_button, self.run_button, self.n_steps, self.back_button,
                    self.reset_button]),
            w.HBox([self.choice, self.force_button]),
            self.text, self.info, self.bars,
        ])
        self.widget.add_class("nnlib-generation-explorer")

        for control in (self.temperature, self.top_p, self.top_k, self.min_p, self.sampler):
            control.observe(self._on_setting, names="value")
        self.seed.observe(lambda _change: self.reset(), names="value")
        self.step_button.on_click(lambda _b: self.step())
        self.run_button.on_click(lambda _b: self.run())
        self.back_button.on_click(lambda _b: self.back())
        self.reset_button.on_click(lambda _b: self.reset())
        self.force_button.on_click(lambda _b: self.force())
        self._enable_sliders()
        self._update()

    # ---- state: the stepper's ------------------------------------------------------------------

    @property
    def history(self) -> list[Any]:
        return self.stepper.history

    @property
    def finished(self) -> bool:
        return self.stepper.finished

    @property
    def tokens(self) -> list[int]:
        """The completion's ids so far, without a final EOS (as ``generate`` returns them)."""
        return self.stepper.tokens

    @property
    def ids(self) -> list[int]:
        """Prompt + every committed token (EOS included): what the model has been fed."""
        return self.stepper.ids

    @property
    def completion(self) -> str:
        return self.llama.tokenizer.decode(self.tokens)

    def settings(self) -> Sampler:
        """The sampler the controls describe now."""
        return Sampler(str(self.sampler.value), float(self.temperature.value),
                       float(self.top_p.value), int(self.top_k.value), float(self.min_p.value))

    # ---- controls ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the prompt with a fresh generator seeded from the seed box."""
        self.stepper.reset(int(self.seed.value))
        self._update()

    def step(self) -> int | None:
        """Commit one token (the one marked in the chart) and run the model on it; returns its
        id, or None when generation has already finished (EOS or the length limit)."""
        s = self.stepper.step_with(self.settings())
        self._update()
        return None if s is None else s.token

    def run(self, n: int | None = None) -> list[int]:
        """Up to ``n`` steps (default: the N box), stopping at EOS; returns the ids chosen."""
        n = int(self.n_steps.value) if n is None else int(n)
        sampler, chosen = self.settings(), []
        for _ in range(n):
            s = self.stepper.step_with(sampler)
            if s is None:
                break
            chosen.append(s.token)
        self._update()
        return chosen

    def force(self, token: int | None = None) -> int | None:
        """Commit ``token`` (default: the one picked in the branch dropdown) instead of the draw,
        and run the model on it: the text branches. No u is used up; back one undoes it."""
        token = self.choice.value if token is None else token
        if token is None:
            return None
        s = self.stepper.force(int(token), self.settings())
        self._update()
        return None if s is None else s.token

    def back(self) -> int | None:
        """Remove the newest token; returns its id (None at the prompt). No model call, and the
        generator is restored, so step repeats the same draw unless a setting changed."""
        s = self.stepper.back()
        self._update()
        return None if s is None else s.token

    def _on_setting(self, change: Any = None) -> None:
        if change is not None and change.get("owner") is self.sampler:
            self._enable_sliders()
        self._update()

    def _enable_sliders(self) -> None:
        kind = self.sampler.value
        self.top_p.disabled = kind != "top-p"
        self.top_k.disabled = kind != "top-k"
        self.min_p.disabled = kind != "min-p"

    # ---- what is shown -------------------------------------------------------------------------

    def _update(self) -> None:
        """Recompute the pending draw from cached logits (no model call) and redraw."""
        sampler = self.settings()
        self.pending: Draw | None = self.stepper.decide(sampler)
        if self.pending is not None:
            logits, shown = self.stepper.next_logits, self.pending
        elif self.history:  # finished: show how the last token was chosen
            last = self.history[-1]
            logits = last.logits
            shown = draw(logits, sampler, last.u if last.u is not None else 0.0)
            shown = Draw(last.token, shown.u, shown.probs, shown.kept, shown.kept_probs)
        else:
            logits, shown = None, None
        self.bar_data = self._bar_data(logits, shown, sampler)
        self._update_choices()
        self.text.value = self._text_html()
        self.info.value = self._info_html()
        self.bars.value = self._chart_html()

    def _bar_data(self, logits: Any, d: Draw | None, sampler: Sampler) -> dict[str, Any]:
        """What the chart shows, one entry per bar (ranked by raw logit, ``sampling.candidates``):
        ``probs`` the renormalised probability the draw uses, ``before_cut`` after temperature
        only, ``t1`` at temperature 1, ``kept``, ``starts`` where each kept bar's stretch begins
        on the cumulative bar; and ``u``, ``entropy_t1``/``entropy`` in bits, ``n_kept``."""
        position = len(self.stepper.ids) - (1 if self.finished and self.history else 0)
        if d is None:
            return {"ids": [], "labels": [], "probs": [], "before_cut": [], "t1": [], "kept": [],
                    "starts": [], "chosen": None, "chosen_id": None, "position": position,
                    "n_kept": 0, "u": None}
        order = candidates(logits, self.n_bars, d.token)
        t1 = torch.softmax(logits.float(), -1)
        # Greedy ignores temperature: its "after temperature" is a one-hot, which says nothing;
        # the brackets then show the model's own probabilities (T = 1), and the chart says so.
        before = t1 if sampler.greedy else d.probs
        where = torch.full((len(d.probs),), -1, dtype=torch.long)  # rank among the kept
        where[d.kept] = torch.arange(d.n_kept)
        starts_all = torch.cumsum(d.kept_probs.double(), 0) - d.kept_probs.double()
        ranks = where[order].tolist()
        tok = self.llama.tokenizer
        return {
            "ids": order,
            "labels": [display_piece(tok, i) for i in order],
            "probs": [float(d.kept_probs[r]) if r >= 0 else 0.0 for r in ranks],
            "before_cut": [float(before[i]) for i in order],
            "t1": [float(t1[i]) for i in order],
            "kept": [r >= 0 for r in ranks],
            "starts": [float(starts_all[r]) if r >= 0 else math.nan for r in ranks],
            "chosen": order.index(d.token),
            "chosen_id": d.token,
            "chosen_prob": d.token_prob,
            "chosen_before_cut": float(before[d.token]),
            "chosen_rank": rank_of(logits, d.token),
            # NaN when these settings cut the chosen token (a finished generation's last one)
            "chosen_start": float(starts_all[where[d.token]]) if where[d.token] >= 0 else math.nan,
            "position": position,
            "n_kept": d.n_kept,
            "u": d.u,
            "entropy_t1": float(entropy_bits(t1)),
            "entropy": float(entropy_bits(d.probs)),  # after temperature, before the cut
            "entropy_drawn": max(0.0, float(entropy_bits(d.kept_probs))),  # what u picks from
            "sampler": sampler,
        }

    def _update_choices(self) -> None:
        """The branch dropdown lists the candidates shown (new options only when they change)."""
        d = self.bar_data
        options = [(f"{k + 1}. {label!r}", i) for k, (label, i) in enumerate(zip(d["labels"], d["ids"]))]
        if options != list(self.choice.options):
            self.choice.options = options
            self.choice.value = options[0][1] if options else None
        self.force_button.disabled = self.finished

    def _text_html(self) -> str:
        """The prompt in bold, then each token on a background from red (the model gave it a
        low probability) to green (high), at temperature 1, whatever the draw's settings."""
        tok = self.llama.tokenizer
        parts = [f"<b>{html.escape(tok.decode(self.prompt_tokens))}</b>"]
        for k, s in enumerate(self.history):
            if s.eos:
                break
            p = math.exp(s.logprob)
            hover = f"p = {p:.3f} at T = 1, logprob {s.logprob:.2f}"
            if s.chance is not None:
                hover += f"; {s.chance:.3f} under the sampler"
            if s.u is not None:
                hover += f"; u = {s.u:.3f}"
            if s.forced:
                hover += "; forced"
            style = f"background:hsl({120 * p:.0f},75%,82%)" + \
                (";text-decoration:underline" if s.forced else "")
            tag = "mark" if k == len(self.history) - 1 else "span"
            parts.append(f"<{tag} style='{style}' title='{html.escape(hover, quote=True)}'>"
                         f"{html.escape(s.piece)}</{tag}>")
        if self.finished:
            why = "EOS" if self.history and self.history[-1].eos else "max length"
            parts.append(f" <span style='color:{palette.CUT}'>[{why}]</span>")
        return ("<div style='white-space:pre-wrap;font-family:monospace;font-size:13px;"
                "border:1px solid #ddd;padding:6px;max-height:14em;overflow:auto'>"
                + "".join(parts) + "</div>")

    def _info_html(self) -> str:
        d, out = self.bar_data, []
        model = self.llama.model
        record = getattr(self.llama, "cache_record", None)  # which ids the KV cache holds
        held = record.held(self.ids) if record is not None else int((model.cache_ids[0] >= 0).sum())
        out.append(f"prev_pos = {self.stepper.prev_pos} (the last model call fed positions "
                   f"{self.stepper.prev_pos}..{len(self.ids) - 1}); KV cache row 0 holds {held} "
                   f"of {model.params.max_seq_len} positions")
        logps = [s.logprob for s in self.history]
        if logps:
            total = sum(logps)
            out.append(f"path: {len(logps)} tokens, logprob {total:.2f} (T = 1), perplexity "
                       f"{math.exp(-total / len(logps)):.2f}")
        if self.finished:
            why = "it drew EOS" if self.history and self.history[-1].eos else \
                f"it reached {self.total_len} tokens"
            out.append(f"finished: {why}. Press back one or reset.")
        elif d["chosen_id"] is not None:
            s = d["sampler"]
            label = html.escape(repr(d["labels"][d["chosen"]]))
            vocab = model.params.vocab_size
            if s.greedy:
                why = "temperature 0" if s.kind != "greedy" else "the greedy sampler"
                out.append(f"next (position {d['position']}): greedy ({why}) ignores temperature "
                           f"and takes the argmax: greedy keeps 1 of {vocab} tokens, so the draw "
                           f"has 0 bits of entropy (the model's own distribution, at T = 1: "
                           f"{d['entropy_t1']:.2f} bits)")
                out.append(f"step takes {label}, rank 1 (p = {d['chosen_before_cut']:.3f} at T = 1)"
                           f"; u = {d['u']:.3f} is not used")
            else:
                rule = {"top-p": f"top_p = {s.top_p:.2f}", "top-k": f"top_k = {s.top_k}",
                        "min-p": f"min_p = {s.min_p:.2f}"}[s.kind]
                out.append(f"next (position {d['position']}): temperature {s.temperature:.2f} "
                           f"first, then {rule} keeps {d['n_kept']} of {vocab} tokens; the draw "
                           f"picks from those, renormalised: entropy {d['entropy_drawn']:.2f} "
                           f"bits (before the cut {d['entropy']:.2f} bits at T = "
                           f"{s.temperature:.2f}, {d['entropy_t1']:.2f} at T = 1)")
                out.append(f"u = {d['u']:.3f} falls in the stretch of {label} "
                           f"({d['chosen_start']:.3f} to {d['chosen_start'] + d['chosen_prob']:.3f})"
                           f": step takes it, rank {d['chosen_rank']}, p = {d['chosen_prob']:.3f} "
                           f"after the cut ({d['chosen_before_cut']:.3f} before)")
            out.append("<i>u stays put while you move a slider: it is this step's one random "
                       "number, drawn from the seed. A slider only moves the stretches under it, "
                       "so another setting can put u in another token's stretch; step uses it "
                       "and draws the next u.</i>")
        return "<br>".join(out)

    def _chart_html(self) -> str:
        """The chart's markup (``ExplorerChart``), empty when there is nothing to draw."""
        d = self.bar_data
        if not d["ids"]:
            return ""
        if self.chart is None or self.chart.n != len(d["ids"]):
            self.chart = ExplorerChart(len(d["ids"]))
        where = "step takes" if not self.finished else "was chosen"
        title = (f"next token at position {d['position']}, most likely first; orange (<-) = the "
                 f"token {where}")
        if d["sampler"].greedy:
            title += "; greedy ignores temperature (brackets: p at T = 1)"
        self.chart.update(d["labels"], d["probs"], d["before_cut"], d["t1"], d["kept"],
                          d["chosen"], d["starts"], d["u"] if not self.finished else None, title)
        return self.chart.html()

    def _ipython_display_(self) -> None:
        display(self.widget)
