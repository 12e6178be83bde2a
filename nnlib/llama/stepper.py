"""One generation in progress, one token at a time, with rewind (``GenerationStepper``, what the
explorer widget drives), what each step records (``GenerationStep``, also ``Llama.step``'s
result, built by ``make_step``), and which token ids the KV cache holds (``CacheRecord``).

Below ``generation``: a stepper needs a model, its tokenizer and ``next_logits`` (``Steppable``),
not the ``Llama`` class, so ``generation`` builds its steps from here and nothing points back.
"""
from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from .model import Transformer
from .sampling import Draw, Sampler, candidates, draw
from .tokenizer import BaseTokenizer, decode_added, display_piece


class CacheRecord:
    """Which token ids each row of a ``Transformer``'s KV cache holds, kept outside the model.

    Meta's code (and ours, and a notebook) calls ``model.forward(...)`` directly, which runs no
    hook on the model itself, so the record watches the modules that call goes through: the
    token embedding (which ids) and the attention layers (``start_pos``, ``use_cache``; they are
    what writes the cache). A cached call first makes the positions from its ``start_pos`` on
    unknown, and once its last layer has written them, notes its tokens there; positions after a
    call's last one were computed from an older prefix, so they no longer count. A call that
    stops half-way, or an attention layer called by hand, leaves those positions unknown, never
    wrongly held. The tokens are noted as device tensors (no copy to the CPU, no wait) and read
    only when asked.

    ``model`` may be a ``Transformer`` or any module wrapping one. A cache re-allocated
    (``reset_buffers``, ``.to``) holds nothing: noticed by its identity."""

    #: Notes kept before they are folded into the table, when nobody asks (a long ``generate``).
    MAX_PENDING = 256

    def __init__(self, model: torch.nn.Module) -> None:
        p = model.params
        self._model = weakref.ref(model)
        self._ids = torch.full((p.max_batch_size, p.max_seq_len), -1, dtype=torch.long)
        # (tokens, start): tokens written from start on; (None, bsz, start): rows unknown from start.
        self._pending: list[tuple[torch.Tensor | None, int, int]] = []
        self._cache = self._first_cache(model)
        self._embedded: torch.Tensor | None = None  # the ids of the call under way
        self._call: tuple[torch.Tensor, int] | None = None
        attentions = [m for m in model.modules() if hasattr(m, "cache_k")]
        embedding = next((m for m in model.modules() if isinstance(m, torch.nn.Embedding)), None)
        if not attentions or embedding is None:
            return
        me = weakref.ref(self)

        def embedded(_module: torch.nn.Module, args: tuple) -> None:
            record = me()
            if record is not None:
                record._embedded = args[0]

        def first(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            record = me()
            if record is not None:
                record._start(args, kwargs)

        def last(_module: torch.nn.Module, args: tuple, kwargs: dict, _output: Any) -> None:
            record = me()
            if record is not None:
                record._finish(args, kwargs)

        handles = [embedding.register_forward_pre_hook(embedded),
                   attentions[0].register_forward_pre_hook(first, with_kwargs=True),
                   attentions[-1].register_forward_hook(last, with_kwargs=True)]
        weakref.finalize(self, lambda: [h.remove() for h in handles])

    @staticmethod
    def _first_cache(model: torch.nn.Module) -> weakref.ref | None:
        """A weak reference to the first KV cache tensor inside ``model`` (None if it has none)."""
        cache = next((m.cache_k for m in model.modules() if hasattr(m, "cache_k")), None)
        return None if cache is None else weakref.ref(cache)

    @staticmethod
    def _attention_call(args: tuple, kwargs: dict) -> tuple[torch.Tensor, int, bool]:
        """(x, start_pos, use_cache) of a call of ``Attention.forward``."""
        names = ("x", "start_pos", "cos", "sin", "mask", "use_cache")
        given = {**dict(zip(names, args)), **kwargs}
        return given["x"], int(given["start_pos"]), bool(given.get("use_cache", True))

    def _start(self, args: tuple, kwargs: dict) -> None:
        tokens, self._embedded, self._call = self._embedded, None, None
        x, start, use_cache = self._attention_call(args, kwargs)
        if not use_cache:
            return
        model = self._model()
        if model is not None:
            self._check_identity(model)
        self._add((None, x.shape[0], start))
        if tokens is not None and tuple(tokens.shape) == tuple(x.shape[:2]):
            self._call = (tokens.detach().clone(), start)

    def _finish(self, args: tuple, kwargs: dict) -> None:
        call, self._call = self._call, None
        x, start, use_cache = self._attention_call(args, kwargs)
        if use_cache and call is not None and call[1] == start \
                and tuple(call[0].shape) == tuple(x.shape[:2]):
            self._add((call[0], call[0].shape[0], start))

    def _add(self, note: tuple[torch.Tensor | None, int, int]) -> None:
        self._pending.append(note)
        if len(self._pending) > self.MAX_PENDING:
            self._fold()

    def _fold(self) -> None:
        for tokens, bsz, start in self._pending:
            rows = self._ids[:bsz]
            if tokens is None:
                rows[:, start:] = -1
                continue
            end = start + tokens.shape[1]
            rows[:, start:end] = tokens.cpu()
            rows[:, end:] = -1
        self._pending.clear()

    def _check_identity(self, model: torch.nn.Module) -> None:
        now = self._first_cache(model)
        if (now and now()) is not (self._cache and self._cache()):
            self._ids.fill_(-1)
            self._pending.clear()
            self._cache = now

    def held(self, ids: Sequence[int], row: int = 0) -> int:
        """How many leading tokens of ``ids`` the cache's batch row ``row`` holds, i.e. the
        largest ``prev_pos`` from which ``forward(ids[prev_pos:], prev_pos)`` is exact. Another
        ``generate`` (or any call with other tokens) in between makes this smaller."""
        model = self._model()
        if model is not None:
            self._check_identity(model)
        self._fold()
        held = self._ids[row, : min(len(ids), self._ids.shape[1])]
        same = (held == torch.as_tensor(list(ids[: len(held)]), dtype=torch.long)).tolist()
        return same.index(False) if False in same else len(same)


class Steppable(Protocol):
    """What a stepper needs of a ``Llama``."""

    model: Transformer
    tokenizer: BaseTokenizer
    cache_record: CacheRecord

    def next_logits(self, ids: Sequence[int], prev_pos: int, use_cache: bool = True
                    ) -> torch.Tensor: ...


@dataclass
class GenerationStep:
    """Everything about one generated token, for printing or a widget.

    ``position`` is where the token is written in the sequence (prompt included, 0-based).
    ``piece`` is the text it adds after the tokens before it. ``logits`` are the raw scores (V,)
    it was chosen from; ``probs`` = softmax(logits / T); ``top`` the candidates (``candidates``:
    ranked by logit) as (id, label, prob); ``kept`` the nucleus (ids, most likely first) and
    ``cutoff`` its smallest probability; ``logprob`` = log_softmax(logits)[token] at temperature
    1. ``prev_pos`` is where the model call that produced the logits started. Steps made by
    ``GenerationStepper.step_with`` also carry ``u`` (the uniform number of the inverse-CDF draw)
    and ``chance`` (the token's probability renormalised over what the rule kept); ``forced`` marks
    a token a person picked (``GenerationStepper.force``), which used no draw.
    """

    position: int
    token: int
    piece: str
    logits: torch.Tensor
    probs: torch.Tensor
    top: list[tuple[int, str, float]]
    kept: torch.Tensor
    cutoff: float
    logprob: float
    eos: bool
    temperature: float
    top_p: float
    prev_pos: int = 0
    u: float | None = None
    chance: float | None = None
    forced: bool = False

    @property
    def n_kept(self) -> int:
        return int(self.kept.numel())


def make_step(tokenizer: BaseTokenizer, ids: Sequence[int], token: int, logits: torch.Tensor,
              probs: torch.Tensor, kept: torch.Tensor, cutoff: float, temperature: float,
              top_p: float, prev_pos: int, n_candidates: int, **extra: Any) -> GenerationStep:
    """The ``GenerationStep`` of choosing ``token`` after ``ids`` from ``logits`` (the one
    place a step is built: ``Llama.step`` and the stepper both call it). ``top`` lists the
    ``n_candidates`` most likely tokens."""
    return GenerationStep(
        position=len(ids), token=token, piece=decode_added(tokenizer, ids, [token]),
        logits=logits, probs=probs,
        top=[(i, display_piece(tokenizer, i), float(probs[i]))
             for i in candidates(logits, n_candidates)],
        kept=kept, cutoff=cutoff, logprob=float(torch.log_softmax(logits, -1)[token]),
        eos=token in tokenizer.stop_tokens, temperature=float(temperature), top_p=float(top_p),
        prev_pos=prev_pos, **extra)


def check_max_gen_len(max_gen_len: Any) -> None:
    """The one rule for ``max_gen_len`` (``generate``, ``steps``, the stepper): an int >= 0, the
    number of tokens to add at most."""
    if isinstance(max_gen_len, bool) or not isinstance(max_gen_len, int) or max_gen_len < 0:
        raise ValueError(f"max_gen_len must be an int >= 0 (tokens to add), got {max_gen_len!r}.")


class GenerationStepper:
    """One generation in progress, one token at a time, with rewind: what a widget drives.

    Holds the sequence (``ids``: prompt + committed tokens), the ``history`` of committed
    ``GenerationStep``s, the logits for the next position (computed once per position, so
    changing temperature or top_p only re-decides) and its own seeded ``torch.Generator``, whose
    state before each draw is kept so that ``back`` then ``step`` repeats the same draw.

    ``reset`` (and so a new stepper) runs the whole prompt from position 0, as ``generate``'s first
    call does, so the stepper's numbers never depend on what ran before it: the same logits as
    ``generate`` in every dtype (in half precision a cache filled by another call, in other
    chunks, can differ in the last bit and flip a near tie). After that the model is run on the
    tokens the KV cache does not yet hold: the stepper asks the Llama's ``CacheRecord``, so
    another ``generate`` in between (which overwrites the cache) only costs a re-run from where
    the cache stops agreeing.

    ``step_with`` (any ``sampling.Sampler``: top-p, top-k, min-p, greedy) draws by inverse CDF
    from one visible uniform number per token, and ``force`` commits a token a person picked;
    ``back`` rewinds either. ``n_candidates`` is how many of the most likely tokens each step
    lists (``GenerationStep.top``); it filters nothing (top-k sampling is ``Sampler.top_k``).
    """

    def __init__(self, llama: Steppable, prompt: str | Sequence[int],
                 max_gen_len: int | None = None, seed: int = 0, n_candidates: int = 10) -> None:
        tok = llama.tokenizer
        ids = tok.encode(prompt, bos=True, eos=False) if isinstance(prompt, str) else \
            [int(x) for x in prompt]
        max_seq_len = llama.model.params.max_seq_len
        if not ids:
            raise ValueError("The prompt is empty: give some text, or token ids such as "
                             "[tokenizer.bos_id] for a model that puts a BOS in front.")
        if len(ids) >= max_seq_len:
            raise ValueError(f"The prompt has {len(ids)} tokens, leaving no room under "
                             f"max_seq_len={max_seq_len}. Shorten it or build with a larger "
                             "max_seq_len.")
        if max_gen_len is None:
            max_gen_len = max_seq_len - len(ids)
        check_max_gen_len(max_gen_len)
        self.llama = llama
        self.prompt_tokens: list[int] = ids
        self.max_gen_len = max_gen_len
        self.total_len = min(max_seq_len, len(ids) + max_gen_len)
        self.n_candidates = n_candidates
        self.reset(seed)

    # ---- state -------------------------------------------------------------------------------

    @property
    def ids(self) -> list[int]:
        """Prompt + every committed token (a final stop token included): what the model is fed."""
        return list(self._ids)

    @property
    def tokens(self) -> list[int]:
        """The completion's ids so far, without a final stop token (as ``generate`` returns them)."""
        return [s.token for s in self.history if not s.eos]

    @property
    def finished(self) -> bool:
        """A stop token was committed, or the sequence reached ``total_len``."""
        return bool(self.history and self.history[-1].eos) or len(self._ids) >= self.total_len

    @property
    def prev_pos(self) -> int:
        """Where the model call for the pending logits started (the cache held what was before)."""
        return self._prev_pos

    @property
    def next_logits(self) -> torch.Tensor | None:
        """Raw scores (V,) for the next position; None once finished."""
        return None if self.finished else self._logits

    def reset(self, seed: int | None = None) -> None:
        """Back to the prompt; ``seed`` (default: the last one) restarts the generator."""
        if seed is not None:
            self.seed = int(seed)
        self._generator = torch.Generator().manual_seed(self.seed)
        self._ids: list[int] = list(self.prompt_tokens)
        self.history: list[GenerationStep] = []
        self._states: list[torch.Tensor] = []  # generator state before each committed draw
        self._logits: torch.Tensor | None = None
        self._prev_pos = 0
        self._forward(from_start=True)

    # ---- moving ------------------------------------------------------------------------------

    def back(self) -> GenerationStep | None:
        """Remove the newest token and return its step (None at the prompt). No model call: its
        logits are kept, the cache position moves back, and the generator is restored, so step
        repeats the same draw unless a setting changed."""
        if not self.history:
            return None
        last = self.history.pop()
        self._generator.set_state(self._states.pop())
        self._ids.pop()
        self._logits, self._prev_pos = last.logits, last.prev_pos
        return last

    # ---- the draw: one uniform number u, inverse CDF -----------------------------------------
    # ``generate`` draws with torch.multinomial (Meta's line), an exponential race over all V
    # tokens with no single number to show. A stepper is what a person watches, so it draws one u
    # from its seeded generator and takes the kept token whose stretch of the cumulative bar holds
    # it: the same distribution, other tokens for the same seed (greedy is the same: the argmax).

    def next_u(self) -> float | None:
        """The uniform number in [0, 1) the next ``step_with`` will use (nothing is used up)."""
        if self.finished:
            return None
        copy = torch.Generator()
        copy.set_state(self._generator.get_state())
        return uniform(copy)

    def decide(self, sampler: Sampler) -> Draw | None:
        """The draw ``step_with(sampler)`` would commit now (no model call, nothing used up)."""
        if self.finished:
            return None
        return draw(self._logits, sampler, self.next_u())

    def step_with(self, sampler: Sampler) -> GenerationStep | None:
        """Commit the inverse-CDF draw under ``sampler`` (using up one u) and run the model on the
        new token; None once finished."""
        if self.finished:
            return None
        state = self._generator.get_state()
        d = draw(self._logits, sampler, uniform(self._generator))
        return self._commit(d.token, d.probs, d.kept, sampler, state, u=d.u, chance=d.token_prob)

    def force(self, token: int, sampler: Sampler | None = None) -> GenerationStep | None:
        """Commit ``token`` instead of a draw (a branch a person picks): no u is used up, so
        ``back`` then ``step_with`` draws what it would have drawn. ``sampler`` only sets what
        the step records (its probabilities and kept set); None once finished."""
        vocab = self.llama.model.params.vocab_size
        if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token < vocab:
            raise ValueError(f"token must be an id in 0..{vocab - 1}, got {token!r}.")
        if self.finished:
            return None
        sampler = sampler or Sampler(temperature=1.0, top_p=1.0)
        d = draw(self._logits, sampler, 0.0)
        chance = float(d.kept_probs[d.kept == token].sum())
        return self._commit(token, d.probs, d.kept, sampler, self._generator.get_state(),
                            chance=chance, forced=True)

    def _commit(self, token: int, probs: torch.Tensor, kept: torch.Tensor, sampler: Sampler,
                state: torch.Tensor, **extra: Any) -> GenerationStep:
        s = make_step(self.llama.tokenizer, self._ids, token, self._logits, probs, kept,
                      float(probs[kept[-1]]), sampler.temperature, sampler.top_p, self._prev_pos,
                      self.n_candidates, **extra)
        self.history.append(s)
        self._states.append(state)
        self._ids.append(token)
        self._forward()
        return s

    # ---- the model and the choice ------------------------------------------------------------

    def _forward(self, from_start: bool = False) -> None:
        """Logits for the next position, running the model on what the cache does not hold (on
        everything, ``from_start``)."""
        if self.finished:
            self._logits = None
            return
        held = 0 if from_start else self.llama.cache_record.held(self._ids)
        self._prev_pos = min(held, len(self._ids) - 1)
        self._logits = self.llama.next_logits(self._ids, self._prev_pos)

def uniform(generator: torch.Generator) -> float:
    """One uniform number in [0, 1) from ``generator`` (float64, on the CPU)."""
    return float(torch.rand((), generator=generator, dtype=torch.float64))
