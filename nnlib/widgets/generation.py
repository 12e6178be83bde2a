"""``GenerationExplorer`` (notebook 04): step through ``Llama.generate`` one token at a time with
temperature and top_p sliders; the bar chart is redrawn from cached logits.

The generation in progress is a ``GenerationStepper`` (tested on its own); this module wires
sliders and buttons to it and draws. Plain methods (``step``, ``back``, ``run``) let tests drive
it headless; the ipywidgets tree is ``.widget``.
"""
from __future__ import annotations

import html
import io
from typing import Any

import ipywidgets as w
from IPython.display import display
from matplotlib.figure import Figure

from nnlib.llama.generation import GenerationStepper
from nnlib.llama.sampling import candidates, next_token_distribution, rank_of
from nnlib.llama.tokenizer import decode_added, display_piece
from nnlib.plots import NextTokenBars


class GenerationExplorer:
    """Step through ``Llama.generate`` one token at a time, with temperature and top_p sliders.

    ``GenerationExplorer(llama, prompt)``: ``prompt`` is text (encoded with BOS) or token ids.
    The bar chart shows the candidates for the *next* position: their probabilities after
    temperature (ranked by raw logit, so moving temperature never reorders them), the nucleus cut
    of ``top_p`` (blue kept, grey dropped) and, in orange, the token that **step** will take: the
    draw of the seeded generator under the current settings (the argmax at temperature 0).
    Moving a slider recomputes that from the cached logits; it never runs the model. A click on
    step commits the token and runs the model on that one new token at ``prev_pos`` (KV cache).

    Controls, as attribute: ``description`` (CSS class a browser test can select), what:

    - ``temperature``: "temperature" (``nnlib-temperature``), FloatSlider 0 to 2 (0 = greedy)
    - ``top_p``: "top_p" (``nnlib-top-p``), FloatSlider 0.01 to 1
    - ``seed``: "seed" (``nnlib-seed``), IntText; a new seed restarts from the prompt
    - ``n_steps``: "N" (``nnlib-n``), how many tokens "run N" adds
    - ``step_button``: "step" (``nnlib-step``), one token
    - ``run_button``: "run N" (``nnlib-run``), N tokens, stopping at EOS
    - ``back_button``: "back one" (``nnlib-back``), remove the newest token
    - ``reset_button``: "reset" (``nnlib-reset``), back to the prompt with the same seed
    - ``text``: HTML (``nnlib-text``), the prompt in bold, the completion, the newest token
      highlighted (``<mark>``), "[EOS]" or "[max length]" at the end
    - ``bars``: Image, PNG (``nnlib-bars``), the bar chart; its figure is ``figure``, its
      ``NextTokenBars`` is ``chart``
    - ``info``: HTML (``nnlib-info``), position, the pick, its probability, the last logprob
    - ``widget``: VBox (``nnlib-generation-explorer``), all of the above

    State lives in ``stepper``, a ``nnlib.llama.generation.GenerationStepper`` (ids, cache
    position, history, rewind, the generator); the widget only wires controls to it and draws.
    ``tokens``, ``history``, ``finished`` are the stepper's; ``pending`` is the step that step
    would commit now and ``bar_data`` what the chart shows. Methods: ``step()`` -> the chosen id
    (None once finished), ``run(n)``, ``back()``, ``reset()``.

    Stepping to the end with one temperature and top_p gives exactly
    ``torch.manual_seed(seed); llama.generate([ids], max_gen_len, T, top_p)``. Rewinding
    restores the generator too, so back then step repeats the same draw. If other code reuses
    the model's KV cache in between (another ``generate``), the stepper asks the model what the
    cache still holds and re-runs only the rest.
    """

    def __init__(self, llama: Any, prompt: Any, max_gen_len: int | None = None,
                 temperature: float = 0.6, top_p: float = 0.9, seed: int = 0, n_bars: int = 12
                 ) -> None:
        if not 0 <= temperature <= 2 or not 0 < top_p <= 1:
            raise ValueError(f"temperature must be in [0, 2] and top_p in (0, 1]; got "
                             f"{temperature!r}, {top_p!r}.")
        self.llama = llama
        self.stepper = GenerationStepper(llama, prompt, max_gen_len, seed=seed, top_k=n_bars)
        self.prompt_tokens = self.stepper.prompt_tokens
        self.max_gen_len, self.total_len = self.stepper.max_gen_len, self.stepper.total_len
        self.n_bars = n_bars
        max_seq_len = llama.model.params.max_seq_len

        self.temperature = w.FloatSlider(value=temperature, min=0.0, max=2.0, step=0.05,
                                         description="temperature", readout_format=".2f",
                                         style={"description_width": "initial"})
        self.top_p = w.FloatSlider(value=top_p, min=0.01, max=1.0, step=0.01,
                                   description="top_p", readout_format=".2f")
        self.seed = w.IntText(value=seed, description="seed", layout=w.Layout(width="160px"))
        self.n_steps = w.BoundedIntText(value=10, min=1, max=max_seq_len, description="N",
                                        layout=w.Layout(width="130px"))
        self.step_button = w.Button(description="step", button_style="primary", icon="step-forward")
        self.run_button = w.Button(description="run N", icon="forward")
        self.back_button = w.Button(description="back one", icon="step-backward")
        self.reset_button = w.Button(description="reset", icon="undo")
        self.text = w.HTML()
        self.bars = w.Image(format="png", layout=w.Layout(width="528px"))
        self.figure: Any = None  # matplotlib Figure behind ``bars``; ``chart`` its NextTokenBars
        self.chart: Any = None
        self.info = w.HTML()
        for widget, css in [(self.temperature, "temperature"), (self.top_p, "top-p"),
                            (self.seed, "seed"), (self.n_steps, "n"), (self.step_button, "step"),
                            (self.run_button, "run"), (self.back_button, "back"),
                            (self.reset_button, "reset"), (self.text, "text"), (self.bars, "bars"),
                            (self.info, "info")]:
            widget.add_class(f"nnlib-{css}")
        self.widget = w.VBox([
            w.HBox([self.temperature, self.top_p, self.seed]),
            w.HBox([self.step_button, self.run_button, self.n_steps, self.back_button,
                    self.reset_button]),
            self.text, self.info, self.bars,
        ])
        self.widget.add_class("nnlib-generation-explorer")

        self.temperature.observe(self._on_setting, names="value")
        self.top_p.observe(self._on_setting, names="value")
        self.seed.observe(lambda _change: self.reset(), names="value")
        self.step_button.on_click(lambda _b: self.step())
        self.run_button.on_click(lambda _b: self.run())
        self.back_button.on_click(lambda _b: self.back())
        self.reset_button.on_click(lambda _b: self.reset())
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

    def _settings(self) -> tuple[float, float]:
        return float(self.temperature.value), float(self.top_p.value)

    # ---- controls ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the prompt with a fresh generator seeded from the seed box."""
        self.stepper.reset(int(self.seed.value))
        self._update()

    def step(self) -> int | None:
        """Commit one token (the one marked in the chart) and run the model on it; returns its
        id, or None when generation has already finished (EOS or the length limit)."""
        s = self.stepper.step(*self._settings())
        self._update()
        return None if s is None else s.token

    def run(self, n: int | None = None) -> list[int]:
        """Up to ``n`` steps (default: the N box), stopping at EOS; returns the ids chosen."""
        n = int(self.n_steps.value) if n is None else int(n)
        chosen = [s.token for s in self.stepper.run(n, *self._settings())]
        self._update()
        return chosen

    def back(self) -> int | None:
        """Remove the newest token; returns its id (None at the prompt). No model call, and the
        generator is restored, so step repeats the same draw unless a setting changed."""
        s = self.stepper.back()
        self._update()
        return None if s is None else s.token

    def _on_setting(self, _change: Any = None) -> None:
        self._update()

    # ---- what is shown -------------------------------------------------------------------------

    def _update(self) -> None:
        """Recompute the pending choice from cached logits (no model call) and redraw."""
        self.pending = self.stepper.preview(*self._settings())
        if self.pending is not None:
            logits, chosen_id = self.pending.logits, self.pending.token
        elif self.history:
            logits, chosen_id = self.history[-1].logits, self.history[-1].token
        else:
            logits, chosen_id = None, None
        self.bar_data = self._bar_data(logits, chosen_id)
        self.text.value = self._text_html()
        self.info.value = self._info_html()
        self.bars.value = self._chart_png()

    def _bar_data(self, logits: Any, chosen_id: int | None) -> dict[str, Any]:
        """What the chart shows: ``sampling.candidates`` with their labels, probabilities after
        temperature and whether the nucleus keeps them."""
        position = len(self.stepper.ids) - (1 if self.finished and self.history else 0)
        if logits is None:
            return {"ids": [], "labels": [], "probs": [], "kept": [], "chosen": None,
                    "chosen_id": None, "position": position, "n_kept": 0}
        probs, kept, _ = next_token_distribution(logits, *self._settings())
        order = candidates(logits, self.n_bars, chosen_id)
        kept_set = set(kept.tolist())
        tok = self.llama.tokenizer
        return {
            "ids": order,
            "labels": [display_piece(tok, i) for i in order],
            "probs": [float(probs[i]) for i in order],
            "kept": [i in kept_set for i in order],
            "chosen": order.index(chosen_id) if chosen_id in order else None,
            "chosen_id": chosen_id,
            "chosen_prob": None if chosen_id is None else float(probs[chosen_id]),
            "chosen_rank": None if chosen_id is None else rank_of(logits, chosen_id),
            "position": position,
            "n_kept": len(kept_set),
        }

    def _text_html(self) -> str:
        tok, prompt, tokens = self.llama.tokenizer, self.prompt_tokens, self.tokens
        prompt_text = tok.decode(prompt)
        before = decode_added(tok, prompt, tokens[:-1])
        newest = decode_added(tok, prompt + tokens[:-1], tokens[-1:]) if tokens else ""
        parts = [f"<b>{html.escape(prompt_text)}</b>", html.escape(before)]
        if newest:
            parts.append(f"<mark style='background:#ffd59e'>{html.escape(newest)}</mark>")
        if self.finished:
            why = "EOS" if self.history and self.history[-1].eos else "max length"
            parts.append(f" <span style='color:#c44e52'>[{why}]</span>")
        return ("<div style='white-space:pre-wrap;font-family:monospace;font-size:13px;"
                "border:1px solid #ddd;padding:6px;max-height:14em;overflow:auto'>"
                + "".join(parts) + "</div>")

    def _info_html(self) -> str:
        d = self.bar_data
        T, p = float(self.temperature.value), float(self.top_p.value)
        out = []
        if self.history:
            s = self.history[-1]
            out.append(f"last token {html.escape(repr(s.piece))} at position {s.position}: "
                       f"logprob {s.logprob:.3f} (T = 1){' - EOS' if s.eos else ''}")
        if self.finished:
            why = "it drew EOS" if self.history and self.history[-1].eos else \
                f"it reached {self.total_len} tokens"
            out.append(f"finished: {why}. Press back one or reset.")
        elif d["chosen_id"] is not None:
            label = html.escape(repr(d["labels"][d["chosen"]])) if d["chosen"] is not None else \
                f"id {d['chosen_id']}"
            out.append(f"next (position {d['position']}, T = {T:.2f}, top_p = {p:.2f}): step takes "
                       f"{label}, rank {d['chosen_rank']}, p = {d['chosen_prob']:.3f}; the nucleus "
                       f"keeps {d['n_kept']} of {self.llama.model.params.vocab_size} tokens")
        return "<br>".join(out)

    def _chart_png(self) -> bytes:
        """The bar chart as PNG. One figure, updated in place (``NextTokenBars``): drawing a new
        figure per slider move would take several times longer."""
        d = self.bar_data
        if not d["ids"]:
            return b""
        if getattr(self, "chart", None) is None or self.chart.n != len(d["ids"]):
            height = 1.2 + 0.27 * len(d["ids"])
            self.figure = Figure(figsize=(6.6, height), dpi=80)
            self.figure.subplots_adjust(left=0.22, right=0.97, top=1 - 0.55 / height,
                                        bottom=0.5 / height)
            self.chart = NextTokenBars(self.figure.add_subplot(), len(d["ids"]))
        where = "step takes" if not self.finished else "was chosen"
        title = (f"position {d['position']}, T = {self.temperature.value:.2f}, top_p = "
                 f"{self.top_p.value:.2f}: nucleus keeps {d['n_kept']} of "
                 f"{self.llama.model.params.vocab_size}\nthe most likely first; orange = the "
                 f"token {where}")
        outside = d["chosen_rank"] is not None and d["chosen_rank"] > len(d["ids"])
        self.chart.update(d["labels"], d["probs"], d["kept"], d["chosen"], title=title,
                          chosen_note=f" (rank {d['chosen_rank']})" if outside else "",
                          n_kept_total=d["n_kept"])
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png")
        return buf.getvalue()

    def _ipython_display_(self) -> None:
        display(self.widget)
