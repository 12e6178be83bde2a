"""``GenerationExplorer`` (notebook 04): step through generation one token at a time, with a
sampler selector (top-p, top-k, min-p, greedy), a temperature slider, and a picture of the draw.

The generation in progress is a ``GenerationStepper`` and each decision a ``sampling.draw`` (both
tested on their own); this module wires controls to them and draws. ``ExplorerChart`` takes plain
arrays. Plain methods (``step``, ``back``, ``run``, ``force``) let tests drive it headless; the
ipywidgets tree is ``.widget``.
"""
from __future__ import annotations

import html
import io
import math
from typing import Any

import ipywidgets as w
import numpy as np
import torch
from IPython.display import display
from matplotlib.figure import Figure

from nnlib.llama.generation import GenerationStepper
from nnlib.llama.sampling import SAMPLERS, Draw, Sampler, candidates, draw, entropy_bits, rank_of
from nnlib.llama.tokenizer import display_piece

_KEPT, _DROPPED, _CHOSEN, _FAINT = "#4c72b0", "#c8ccd4", "#dd8452", "#9fb4d6"


class ExplorerChart:
    """The next-token picture, drawn once and updated in place (a slider redraws it).

    Top: one row per candidate, most likely first. The solid bar is the probability the draw
    uses (after temperature, renormalised over what the rule kept: 0 for a dropped token), blue
    kept, grey dropped, orange the chosen one; behind it a faint bar at temperature 1. Its label
    gives the value before the cut. Bottom: the kept tokens laid end to end over [0, 1) (the
    cumulative bar) in the same order, the candidates' stretches drawn, and a line at ``u``: the
    draw takes the token whose stretch holds u.

    ``ExplorerChart(figure, n)``; ``update(labels, probs, before_cut, t1, kept, chosen, starts,
    u, title)`` takes one entry per bar (``starts``: where each kept bar's stretch begins on the
    cumulative bar, nan for a dropped one). ``bars``/``faint`` are the rectangles (their widths
    are the values drawn); ``u_line`` the line at u."""

    def __init__(self, figure: Figure, n: int) -> None:
        self.n = n
        grid = figure.add_gridspec(2, 1, height_ratios=[n, 2.2], hspace=0.55)
        self.ax, self.cum = figure.add_subplot(grid[0]), figure.add_subplot(grid[1])
        ax, y = self.ax, list(range(n))[::-1]  # candidate 0 at the top
        self.y = y
        self.faint = ax.barh(y, [0.0] * n, height=0.85, color=_FAINT, alpha=0.35, zorder=1)
        self.bars = ax.barh(y, [0.0] * n, height=0.5, color=_KEPT, zorder=2)
        self.values = [ax.text(0, v, "", va="center", ha="left", fontsize=7, zorder=3) for v in y]
        self.cut = ax.axhline(0, color="#c44e52", linestyle="--", linewidth=1.2, visible=False)
        ax.set_yticks(y, [""] * n)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xticks([])  # the values are written at the bars; the scale follows the largest
        ax.set_xlabel("probability the draw uses, renormalised over the kept tokens (in brackets: "
                      "before the cut); faint: at temperature 1", fontsize=7)
        ax.set_ylim(-0.6, n - 0.4)
        # Plain texts in axes coordinates: set_title re-measures every tick label on each redraw.
        self.title = ax.text(0.0, 1.02, "", transform=ax.transAxes, fontsize=8, va="bottom")
        # The last row's label is drawn with the bars, not as a tick: a draw from the tail takes
        # that row (``candidates``), and a new tick label would mean redrawing everything.
        self.last_label = ax.text(-0.015, y[-1], "", transform=ax.get_yaxis_transform(),
                                  ha="right", va="center", fontsize=8, family="monospace")
        c = self.cum
        c.barh([0], [1.0], height=0.8, color=_DROPPED, zorder=1)  # the kept tokens not drawn above
        self.segments = c.barh([0] * n, [0.0] * n, height=0.8, color=_KEPT, edgecolor="white",
                               linewidth=0.6, zorder=2)
        self.seg_text = [c.text(0, 0, "", ha="center", va="center", fontsize=6, color="white",
                                zorder=3, clip_on=True) for _ in range(n)]
        self.u_line = c.axvline(0.0, color="black", linewidth=1.6, zorder=4)
        self.u_text = c.text(0, 0.62, "", ha="left", va="bottom", fontsize=7, zorder=4,
                             transform=c.get_xaxis_transform())
        c.set_xlim(0, 1)
        c.set_ylim(-0.5, 0.5)
        c.set_yticks([])
        c.tick_params(axis="x", labelsize=7)
        c.set_xlabel("cumulative probability over the kept tokens, most likely first: "
                     "the draw takes the stretch that holds u", fontsize=7)
        self._labels: list[str] = []
        # What changes on a slider move is drawn over a saved picture of the rest (blitting):
        # redrawing the axes, ticks and labels each time would take several times longer.
        self.dynamic = [*self.faint, *self.bars, *self.values, self.cut, self.last_label,
                        *self.segments, *self.seg_text, self.u_line, self.u_text]
        for artist in self.dynamic:
            artist.set_animated(True)
        self.figure, self._background = figure, None

    def update(self, labels: list[str], probs: Any, before_cut: Any, t1: Any, kept: Any,
               chosen: int | None, starts: Any, u: float | None, title: str = "") -> ExplorerChart:
        p, before, faint = np.asarray(probs, float), np.asarray(before_cut, float), np.asarray(t1, float)
        keep, start = [bool(k) for k in kept], np.asarray(starts, float)
        if not (len(labels) == len(p) == len(before) == len(faint) == len(keep) == len(start) == self.n):
            raise ValueError(f"every array needs one entry per bar ({self.n}).")
        top = max(float(p.max()), float(faint.max()), 1e-9)
        for i, (bar, back, text, seg, stext) in enumerate(
                zip(self.bars, self.faint, self.values, self.segments, self.seg_text)):
            colour = _CHOSEN if i == chosen else (_KEPT if keep[i] else _DROPPED)
            bar.set_width(p[i])
            bar.set_facecolor(colour)
            bar.set_edgecolor("black" if i == chosen else "none")
            back.set_width(faint[i])
            text.set_x(max(p[i], faint[i]) + top * 0.01)
            shown = f"{p[i]:.3f} ({before[i]:.3f})" if keep[i] else f"cut ({before[i]:.3f})"
            text.set_text(shown + (" <-" if i == chosen else ""))
            text.set_color("#8c3b0c" if i == chosen else "black")
            text.set_fontweight("bold" if i == chosen else "normal")
            on_bar = keep[i] and not math.isnan(start[i])
            seg.set_visible(on_bar)
            stext.set_visible(on_bar and p[i] > 0.06)
            if on_bar:
                seg.set_x(start[i])
                seg.set_width(p[i])
                seg.set_facecolor(colour)
                stext.set_position((start[i] + p[i] / 2, 0))
                stext.set_text(labels[i].strip()[:6])
        if [repr(s) for s in labels[:-1]] != self._labels:  # new ticks only when they change
            self._labels = [repr(s) for s in labels[:-1]]
            self.ax.set_yticklabels(self._labels + [""], family="monospace")
            self._background = None
        self.last_label.set_text(repr(labels[-1]))
        n_kept = sum(keep)
        show_cut = 0 < n_kept < self.n and all(keep[:n_kept])  # a prefix kept: draw the cut
        self.cut.set_visible(show_cut)
        if show_cut:
            where = self.y[n_kept - 1] - 0.5
            self.cut.set_ydata([where, where])
        self.u_line.set_visible(u is not None)
        self.u_text.set_visible(u is not None)
        if u is not None:
            self.u_line.set_xdata([u, u])
            right = u < 0.8  # the label beside the line, on the side with room
            self.u_text.set_x(u + 0.01 if right else u - 0.01)
            self.u_text.set_horizontalalignment("left" if right else "right")
            self.u_text.set_text(f"u = {u:.3f}")
        self.ax.set_xlim(0, top * 1.75)
        if title != self.title.get_text():  # part of the background: redrawn when it changes
            self.title.set_text(title)
            self._background = None
        return self

    def png(self) -> bytes:
        """The figure as PNG: the saved background (redrawn only when the tick labels changed)
        with the changing artists drawn over it."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from PIL import Image

        canvas = self.figure.canvas
        if not isinstance(canvas, FigureCanvasAgg):
            canvas = FigureCanvasAgg(self.figure)
        if self._background is None:
            canvas.draw()  # animated artists are left out
            self._background = canvas.copy_from_bbox(self.figure.bbox)
        canvas.restore_region(self._background)
        renderer = canvas.get_renderer()
        for artist in self.dynamic:
            if artist.get_visible():
                artist.draw(renderer)
        buf = io.BytesIO()
        Image.fromarray(np.asarray(canvas.buffer_rgba())).save(buf, format="png", compress_level=1)
        return buf.getvalue()


class GenerationExplorer:
    """Step through generation one token at a time and see how each token is drawn.

    ``GenerationExplorer(llama, prompt)``: ``prompt`` is text (encoded with BOS) or token ids.
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
    - ``bars``: Image, PNG (``nnlib-bars``), the chart; its figure is ``figure``, its
      ``ExplorerChart`` is ``chart``
    - ``info``: HTML (``nnlib-info``): u and the stretch it falls in, the entropy in bits at
      T = 1 and at T, the path's logprob and perplexity, ``prev_pos`` and the KV cache's fill
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
        self.stepper = GenerationStepper(llama, prompt, max_gen_len, seed=seed, top_k=n_bars)
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
        self.bars = w.Image(format="png", layout=w.Layout(width="600px"))
        self.figure: Any = None  # matplotlib Figure behind ``bars``; ``chart`` its ExplorerChart
        self.chart: Any = None
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
        self.bars.value = self._chart_png()

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
        where = torch.full((len(d.probs),), -1, dtype=torch.long)  # rank among the kept
        where[d.kept] = torch.arange(d.n_kept)
        starts_all = torch.cumsum(d.kept_probs.double(), 0) - d.kept_probs.double()
        ranks = where[order].tolist()
        tok = self.llama.tokenizer
        return {
            "ids": order,
            "labels": [display_piece(tok, i) for i in order],
            "probs": [float(d.kept_probs[r]) if r >= 0 else 0.0 for r in ranks],
            "before_cut": [float(d.probs[i]) for i in order],
            "t1": [float(t1[i]) for i in order],
            "kept": [r >= 0 for r in ranks],
            "starts": [float(starts_all[r]) if r >= 0 else math.nan for r in ranks],
            "chosen": order.index(d.token),
            "chosen_id": d.token,
            "chosen_prob": d.token_prob,
            "chosen_before_cut": float(d.probs[d.token]),
            "chosen_rank": rank_of(logits, d.token),
            "chosen_start": float(starts_all[where[d.token]]),
            "position": position,
            "n_kept": d.n_kept,
            "u": d.u,
            "entropy_t1": float(entropy_bits(t1)),
            "entropy": float(entropy_bits(d.probs)),
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
            parts.append(f" <span style='color:#c44e52'>[{why}]</span>")
        return ("<div style='white-space:pre-wrap;font-family:monospace;font-size:13px;"
                "border:1px solid #ddd;padding:6px;max-height:14em;overflow:auto'>"
                + "".join(parts) + "</div>")

    def _info_html(self) -> str:
        d, out = self.bar_data, []
        model = self.llama.model
        held = int((model.cache_ids[0] >= 0).sum())
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
            rule = "greedy" if s.greedy else {"top-p": f"top_p = {s.top_p:.2f}",
                                              "top-k": f"top_k = {s.top_k}",
                                              "min-p": f"min_p = {s.min_p:.2f}"}[s.kind]
            label = html.escape(repr(d["labels"][d["chosen"]]))
            out.append(f"next (position {d['position']}): entropy {d['entropy_t1']:.2f} bits at "
                       f"T = 1, {d['entropy']:.2f} bits at T = {s.temperature:.2f}; {rule} keeps "
                       f"{d['n_kept']} of {model.params.vocab_size} tokens")
            out.append(f"u = {d['u']:.3f} falls in the stretch of {label} ({d['chosen_start']:.3f}"
                       f" to {d['chosen_start'] + d['chosen_prob']:.3f}): step takes it, rank "
                       f"{d['chosen_rank']}, p = {d['chosen_prob']:.3f} after the cut "
                       f"({d['chosen_before_cut']:.3f} before)")
        return "<br>".join(out)

    def _chart_png(self) -> bytes:
        """The chart as PNG. One figure, updated in place and blitted (``ExplorerChart.png``):
        drawing a new figure per slider move would take many times longer."""
        d = self.bar_data
        if not d["ids"]:
            return b""
        if self.chart is None or self.chart.n != len(d["ids"]):
            height = 2.2 + 0.27 * len(d["ids"])
            self.figure = Figure(figsize=(7.5, height), dpi=80)
            self.figure.subplots_adjust(left=0.17, right=0.98, top=1 - 0.5 / height,
                                        bottom=0.45 / height)
            self.chart = ExplorerChart(self.figure, len(d["ids"]))
        where = "step takes" if not self.finished else "was chosen"
        title = (f"next token at position {d['position']}, most likely first; orange (<-) = the "
                 f"token {where}")
        self.chart.update(d["labels"], d["probs"], d["before_cut"], d["t1"], d["kept"],
                          d["chosen"], d["starts"], d["u"] if not self.finished else None, title)
        return self.chart.png()

    def _ipython_display_(self) -> None:
        display(self.widget)
