"""``GenerationExplorer`` (notebook 04): step through ``Llama.generate`` one token at a time with
temperature and top_p sliders; the bar chart is redrawn from cached logits.

The logic lives in plain methods (``step``, ``back``, ``run``) so tests drive it headless; the
ipywidgets tree is ``.widget``.
"""
from __future__ import annotations

from typing import Any, Optional


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

    State: ``tokens`` (the completion's ids so far, EOS excluded as ``generate`` returns them),
    ``history`` (one ``GenerationStep`` per committed token, EOS included), ``finished``,
    ``pending`` (the ``GenerationStep`` that step would commit now) and ``bar_data`` (what the
    chart shows). Methods: ``step()`` -> the chosen id (None once finished), ``run(n)``,
    ``back()``, ``reset()``.

    It is built on ``Llama.step``, the same choice (``choose_next``) ``generate`` makes, with the
    same generator draws: for one prompt, the same seed, temperature and top_p, stepping to the
    end gives exactly ``llama.set_seed(seed); llama.generate([ids], max_gen_len, T, top_p)``.
    Rewinding restores the generator too, so back then step repeats the same draw. If other code
    reuses the model's KV cache in between (another ``generate``), the next step notices and
    re-runs the sequence from position 0.
    """

    def __init__(self, llama: Any, prompt: Any, max_gen_len: Optional[int] = None,
                 temperature: float = 0.6, top_p: float = 0.9, seed: int = 0, n_bars: int = 12
                 ) -> None:
        import ipywidgets as w

        self.llama = llama
        tok = llama.tokenizer
        ids = tok.encode(prompt, bos=True, eos=False) if isinstance(prompt, str) else \
            [int(x) for x in prompt]
        max_seq_len = llama.model.params.max_seq_len
        if not ids:
            raise ValueError("The prompt is empty: give some text (or token ids starting with BOS).")
        if len(ids) >= max_seq_len:
            raise ValueError(f"The prompt has {len(ids)} tokens, leaving no room under "
                             f"max_seq_len={max_seq_len}. Shorten it or build with a larger "
                             "max_seq_len.")
        if max_gen_len is None:
            max_gen_len = max_seq_len - len(ids)
        if isinstance(max_gen_len, bool) or not isinstance(max_gen_len, int) or max_gen_len < 1:
            raise ValueError(f"max_gen_len must be an int >= 1 (tokens to step through), got "
                             f"{max_gen_len!r}.")
        if not 0 <= temperature <= 2 or not 0 < top_p <= 1:
            raise ValueError(f"temperature must be in [0, 2] and top_p in (0, 1]; got "
                             f"{temperature!r}, {top_p!r}.")
        self.prompt_tokens: list[int] = ids
        self.max_gen_len = max_gen_len
        self.total_len = min(max_seq_len, len(ids) + max_gen_len)
        self.n_bars = n_bars
        self._stops = set(getattr(tok, "stop_tokens", [tok.eos_id]))

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
        self.reset()

    # ---- state -------------------------------------------------------------------------------

    @property
    def tokens(self) -> list[int]:
        """The completion's ids so far, without a final EOS (as ``generate`` returns them)."""
        return [s.token for s in self.history if not s.eos]

    @property
    def ids(self) -> list[int]:
        """Prompt + every committed token (EOS included): what the model has been fed."""
        return list(self._ids)

    @property
    def completion(self) -> str:
        return self.llama.tokenizer.decode(self.tokens)

    def reset(self) -> None:
        """Back to the prompt with a fresh generator seeded from the seed box."""
        import torch

        self._generator = torch.Generator().manual_seed(int(self.seed.value))
        self._ids: list[int] = list(self.prompt_tokens)
        self.history: list[Any] = []
        self._states: list[Any] = []  # generator state before each committed draw
        self._fed = 0  # positions 0.._fed-1 of KV-cache row 0 hold this sequence
        self._fingerprint: Any = None
        self.finished = False
        self._forward()
        self._update()

    def step(self) -> Optional[int]:
        """Commit one token (the one marked in the chart) and run the model on it; returns its
        id, or None when generation has already finished (EOS or the length limit)."""
        token = self._commit()
        self._update()
        return token

    def run(self, n: Optional[int] = None) -> list[int]:
        """Up to ``n`` steps (default: the N box), stopping at EOS; returns the ids chosen."""
        n = int(self.n_steps.value) if n is None else int(n)
        chosen = []
        for _ in range(n):
            token = self._commit()
            if token is None:
                break
            chosen.append(token)
        self._update()
        return chosen

    def back(self) -> Optional[int]:
        """Remove the newest token; returns its id (None at the prompt). No model call: the
        distribution it was drawn from is kept, the cache position moves back, and the generator
        is restored, so step repeats the same draw unless a setting changed."""
        if not self.history:
            self._update()
            return None
        last = self.history.pop()
        self._generator.set_state(self._states.pop())
        self._ids.pop()
        self._pending_logits, self._pending_prev_pos = last.logits, last.prev_pos
        self._fed = len(self._ids)
        self.finished = False
        self._update()
        return last.token

    # ---- the model and the choice ----------------------------------------------------------------

    def _forward(self) -> None:
        """Run the model on the tokens not yet in the cache: logits for the next position."""
        if len(self._ids) >= self.total_len:
            self.finished, self._pending_logits = True, None
            return
        prev_pos = self._fed if self._cache_holds(self._fed) else 0
        s = self.llama.step(self._ids, prev_pos, temperature=0.0, top_p=1.0, top_k=1)
        self._pending_logits, self._pending_prev_pos = s.logits, prev_pos
        self._fed = len(self._ids)
        rows = self._cache_row()
        self._fingerprint = None if rows is None else rows[: self._fed].clone()

    def _cache_row(self) -> Any:
        """Layer 0's cached keys of batch row 0 (max_seq_len, KV, hd), or None. A key in layer 0
        depends only on the token and its position, so equal keys mean the cache still holds
        this sequence (and so do the deeper layers, which are functions of the same prefix)."""
        try:
            return self.llama.model.layers[0].attention.cache_k[0]
        except (AttributeError, IndexError, TypeError):
            return None

    def _cache_holds(self, n: int) -> bool:
        if n == 0:
            return True
        rows = self._cache_row()
        if rows is None or self._fingerprint is None or len(self._fingerprint) < n:
            return False
        import torch

        return bool(torch.equal(rows[:n], self._fingerprint[:n]))

    def _decide(self, generator: Any) -> Any:
        return self.llama.step(self._ids, self._pending_prev_pos, float(self.temperature.value),
                               float(self.top_p.value), generator=generator, top_k=self.n_bars,
                               logits=self._pending_logits)

    def _commit(self) -> Optional[int]:
        if self.finished:
            return None
        state = self._generator.get_state()
        s = self._decide(self._generator)
        self.history.append(s)
        self._states.append(state)
        self._ids.append(s.token)
        if s.eos:
            self.finished, self._pending_logits = True, None
        else:
            self._forward()
        return s.token

    def _on_setting(self, _change: Any = None) -> None:
        self._update()

    # ---- what is shown -------------------------------------------------------------------------

    def _update(self) -> None:
        """Recompute the pending choice from cached logits (no model call) and redraw."""
        import torch

        if self.finished:
            self.pending = None
            view = self.history[-1] if self.history else None
            logits, chosen_id = (view.logits, view.token) if view is not None else (None, None)
        else:
            g = torch.Generator()
            g.set_state(self._generator.get_state())  # a copy: preview the draw, do not consume it
            self.pending = self._decide(g)
            logits, chosen_id = self.pending.logits, self.pending.token
        self.bar_data = self._bar_data(logits, chosen_id)
        self.text.value = self._text_html()
        self.info.value = self._info_html()
        self.bars.value = self._chart_png()

    def _bar_data(self, logits: Any, chosen_id: Optional[int]) -> dict[str, Any]:
        import torch

        from nnlib.llama.generation import display_piece, next_token_distribution

        if logits is None:
            return {"ids": [], "labels": [], "probs": [], "kept": [], "chosen": None,
                    "chosen_id": None, "position": len(self._ids), "n_kept": 0}
        T, p = float(self.temperature.value), float(self.top_p.value)
        probs, kept, _ = next_token_distribution(logits, T, p)
        order = torch.sort(logits, descending=True, stable=True).indices[: self.n_bars].tolist()
        if chosen_id is not None and chosen_id not in order:  # a draw from the tail: show it last
            order = order[:-1] + [chosen_id]
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
            "chosen_rank": None if chosen_id is None else int((logits > logits[chosen_id]).sum()) + 1,
            "position": len(self._ids) - (1 if self.finished and self.history else 0),
            "n_kept": len(kept_set),
        }

    def _text_html(self) -> str:
        import html

        tok = self.llama.tokenizer
        prompt_text = tok.decode(self.prompt_tokens)
        full = tok.decode(self.prompt_tokens + self.tokens)
        before = tok.decode(self.prompt_tokens + self.tokens[:-1]) if self.tokens else prompt_text
        if not (full.startswith(before) and before.startswith(prompt_text)):
            before = full  # a tokenizer whose decodes are not prefixes: no highlight
        parts = [f"<b>{html.escape(prompt_text)}</b>", html.escape(before[len(prompt_text):])]
        newest = full[len(before):]
        if newest:
            parts.append(f"<mark style='background:#ffd59e'>{html.escape(newest)}</mark>")
        if self.finished:
            why = "EOS" if self.history and self.history[-1].eos else "max length"
            parts.append(f" <span style='color:#c44e52'>[{why}]</span>")
        return ("<div style='white-space:pre-wrap;font-family:monospace;font-size:13px;"
                "border:1px solid #ddd;padding:6px;max-height:14em;overflow:auto'>"
                + "".join(parts) + "</div>")

    def _info_html(self) -> str:
        import html

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
        import io

        d = self.bar_data
        if not d["ids"]:
            return b""
        if getattr(self, "chart", None) is None or self.chart.n != len(d["ids"]):
            from matplotlib.figure import Figure

            from nnlib.plots import NextTokenBars

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
        from IPython.display import display

        display(self.widget)
