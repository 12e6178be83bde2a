"""``Llama``: build from a checkpoint folder, then generate, in Meta's names and algorithm.

``generate`` follows Meta's loop: a ``tokens`` tensor filled with ``pad_id``, the prompts written
at the left, ``input_text_mask`` marking prompt positions (those are teacher-forced, never
overwritten), and the KV cache advanced by ``prev_pos``: each call of the model sees only the
tokens since the previous call. Generation stops per row at EOS and the EOS is not returned.

The choice of the next token (temperature, ``sample_top_p``, or argmax) is one function,
``choose_next``; ``generate`` and the step-through ``Llama.steps`` both call it, so the widget
and ``generate`` cannot drift apart. Sampling draws from a CPU ``torch.Generator`` seeded by
``build(seed=...)``, so a seed gives the same text on every device for the same probabilities.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from . import checkpoint, devices
from .model import ModelArgs, Transformer
from .tokenizer import BaseTokenizer, find_tokenizer_file, load_tokenizer

PathLike = Union[str, Path]


# ---- choosing the next token -----------------------------------------------------------------


def sample_top_p(probs: torch.Tensor, p: float, generator: Optional[torch.Generator] = None
                 ) -> torch.Tensor:
    """Nucleus sampling, Meta's rule: sort high to low, keep each token whose *preceding* mass
    (the cumulative sum minus itself) is at most ``p``, renormalise the kept ones, draw one.

    The kept set is therefore the shortest most-likely-first prefix whose mass exceeds ``p`` (all
    tokens if none does); it always holds the most likely token. ``probs`` (B, V), rows summing to
    1 -> token ids (B, 1). ``generator`` makes the draw reproducible."""
    sorted_probs, order, keep = nucleus(probs, p)
    kept = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
    kept = kept / kept.sum(dim=-1, keepdim=True)
    rank = torch.multinomial(kept, num_samples=1, generator=generator)  # index into sorted order
    return torch.gather(order, -1, rank)


def nucleus(probs: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(probabilities sorted high to low, their token ids, which of them the nucleus keeps).

    A token is kept when the mass of the tokens ranked above it is at most ``p`` (Meta's
    ``probs_sum - probs_sort > p`` drops the others); the most likely token is therefore always
    kept. Ties are ordered by id (stable sort), so the cut is deterministic. Shapes: (B, V) each."""
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    return sorted_probs, order, mass_before <= p


def temperature_probs(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T) over the last axis; at T = 0 the limit: all mass on the argmax."""
    logits = logits.float()
    if temperature > 0:
        return torch.softmax(logits / temperature, dim=-1)
    return F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).float()


def choose_next(logits: torch.Tensor, temperature: float, top_p: float,
                generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The decision Meta's loop makes for each row of ``logits`` (B, V): argmax at temperature 0,
    else ``sample_top_p(softmax(logits / temperature), top_p)``. Returns (ids (B,), probs (B, V)
    after temperature), on the CPU where the generator lives."""
    logits = logits.float().cpu()
    probs = temperature_probs(logits, temperature)
    if temperature > 0:
        next_token = sample_top_p(probs, top_p, generator).reshape(-1)
    else:
        next_token = torch.argmax(logits, dim=-1)
    return next_token, probs


def next_token_distribution(logits: torch.Tensor, temperature: float, top_p: float
                            ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """For one position's raw ``logits`` (V,): (probs after temperature, the nucleus's token ids
    most likely first, the smallest kept probability). What a slider redraws, with no model call."""
    probs = temperature_probs(logits, temperature)
    sorted_probs, order, keep = nucleus(probs[None], top_p)
    kept = order[0][keep[0]]
    return probs, kept, float(sorted_probs[0][keep[0]][-1])


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """log_softmax(logits)[target] for each position (temperature 1), 0 where the target is
    ``pad_id``: the same numbers as Meta's ``-F.cross_entropy(..., ignore_index=pad_id)``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(targets == pad_id, torch.zeros_like(picked), picked)


# ---- one step, for the step-through ----------------------------------------------------------


@dataclass
class GenerationStep:
    """Everything about one generated token, for printing or a widget.

    ``position`` is where the token is written in the sequence (prompt included, 0-based).
    ``logits`` are the raw scores (V,) it was chosen from; ``probs`` = softmax(logits / T);
    ``top`` the most likely candidates as (id, text, prob); ``kept`` the nucleus (ids, most likely
    first) and ``cutoff`` its smallest probability; ``logprob`` = log_softmax(logits)[token] at
    temperature 1. ``prev_pos`` is where the model call that produced the logits started.
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

    @property
    def n_kept(self) -> int:
        return int(self.kept.numel())


def display_piece(tokenizer: BaseTokenizer, token: int) -> str:
    """A readable label for one token id: SentencePiece's '▁' as a space, byte pieces such as
    '<0x0A>' as the character when it is one byte of ASCII."""
    piece_of = getattr(tokenizer, "id_to_piece", None)
    if piece_of is None:
        return tokenizer.decode([token])
    piece = piece_of(token)
    if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
        byte = int(piece[3:5], 16)
        return chr(byte) if byte < 128 else piece
    return piece.replace("\u2581", " ")


# ---- the model wrapper -----------------------------------------------------------------------


class Llama:
    """A ``Transformer``, its ``Tokenizer`` and the device they live on, as in Meta's code."""

    def __init__(self, model: Transformer, tokenizer: BaseTokenizer, device: Any = None, seed: int = 1):
        self.model = model
        self.tokenizer = tokenizer
        self.device = torch.device(device) if device is not None else model.tok_embeddings.weight.device
        self.generator = torch.Generator().manual_seed(seed)
        self.load_seconds: Optional[float] = None

    def set_seed(self, seed: int) -> None:
        """Restart the sampling random numbers: the same seed gives the same samples again."""
        self.generator.manual_seed(seed)

    # ---- building ------------------------------------------------------------------------

    @staticmethod
    def build(ckpt_dir: PathLike, tokenizer_path: Optional[PathLike] = None, max_seq_len: int = 512,
              max_batch_size: int = 4, device: Any = None, dtype: Any = None, seed: int = 1,
              model_parallel_size: Optional[int] = None, check_memory: bool = True,
              verbose: bool = False) -> "Llama":
        """Load a Meta-layout (one or many shards) or Hugging Face-layout folder onto one device.

        No torchrun, process group or CUDA needed. ``device=None`` picks cuda, mps, then cpu;
        ``dtype=None`` picks bf16 (or fp16) on CUDA, fp16 on MPS, fp32 on the CPU.
        ``max_seq_len``/``max_batch_size`` size the KV cache. ``model_parallel_size`` is accepted
        for Meta's signature and ignored: all shards are merged onto ``device``.
        Raises FileNotFoundError/ValueError naming the fix for every bad input, and MemoryError
        before loading when the weights and cache will not fit (``check_memory=False`` skips it).
        """
        t0 = time.perf_counter()
        ckpt = Path(ckpt_dir).expanduser()
        layout, params = checkpoint.read_params(ckpt)
        # tokenizer.model (SentencePiece or tiktoken) or tokenizer.json, told apart by content.
        tok_path = Path(tokenizer_path).expanduser() if tokenizer_path is not None else find_tokenizer_file(ckpt)
        if not tok_path.is_file():
            raise FileNotFoundError(
                f"No tokenizer at {tok_path}. Pass tokenizer_path= the tokenizer.model or "
                "tokenizer.json that came with the weights (Meta keeps it next to the model folders)."
            )
        tokenizer = load_tokenizer(tok_path)
        dev = devices.choose_device(device)
        dt = devices.choose_dtype(dev, dtype)
        # Under torchrun (as in the seed's command) a process group is expected: start it with a
        # backend this device has (gloo off-CUDA), never a hard-coded "nccl". Otherwise: nothing.
        devices.init_process_group_if_needed(dev)
        if params.get("vocab_size", -1) in (-1, None):  # Llama 2's params.json: from the tokenizer
            params = {**params, "vocab_size": tokenizer.n_words}
        args = ModelArgs.from_dict(params, max_seq_len=max_seq_len, max_batch_size=max_batch_size)
        if tokenizer.n_words != args.vocab_size:
            raise ValueError(
                f"The tokenizer has {tokenizer.n_words} tokens but the model's vocab_size is "
                f"{args.vocab_size}: {tok_path} is not the tokenizer of this checkpoint. Pass "
                "tokenizer_path= the one that came with these weights."
            )
        if check_memory:
            _check_memory(args, dt, dev)
        torch.manual_seed(seed)
        state = checkpoint.load_state_dict(ckpt, args, layout)
        moved: dict[int, torch.Tensor] = {}  # tied embeddings: one tensor under two names, moved once
        for k, v in state.items():
            if id(v) not in moved:
                moved[id(v)] = v.to(device=dev, dtype=dt)
            state[k] = moved[id(v)]
        with torch.device("meta"):
            model = Transformer(args)
        model.load_state_dict(state, strict=True, assign=True)
        model.reset_buffers(dev, dt)
        model.eval()
        llama = Llama(model, tokenizer, dev, seed)
        llama.load_seconds = time.perf_counter() - t0
        if verbose:
            print(f"Loaded {layout} checkpoint in {llama.load_seconds:.2f} s on {dev} ({dt}).")
        return llama

    # ---- checks --------------------------------------------------------------------------

    def _check_request(self, prompt_tokens: Sequence[Sequence[int]], max_gen_len: int,
                       temperature: float, top_p: float) -> None:
        params = self.model.params
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
                math.isnan(temperature) or temperature < 0:
            raise ValueError(f"temperature must be a number >= 0 (0 means greedy), got {temperature!r}.")
        if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not (0 < top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1] (the probability mass to keep), got {top_p!r}.")
        if isinstance(max_gen_len, bool) or not isinstance(max_gen_len, int) or max_gen_len < 0:
            raise ValueError(f"max_gen_len must be an int >= 0 (tokens to add), got {max_gen_len!r}.")
        if isinstance(prompt_tokens, (str, bytes)) or not isinstance(prompt_tokens, Sequence):
            raise ValueError("prompt_tokens must be a list of prompts, each a list of token ids "
                             "(use tokenizer.encode(text, bos=True, eos=False), or text_completion).")
        if len(prompt_tokens) == 0:
            raise ValueError("prompt_tokens is empty: give at least one prompt.")
        if len(prompt_tokens) > params.max_batch_size:
            raise ValueError(
                f"{len(prompt_tokens)} prompts but max_batch_size={params.max_batch_size}: the KV "
                "cache holds that many rows. Build with a larger max_batch_size or split the batch."
            )
        for i, t in enumerate(prompt_tokens):
            if isinstance(t, (str, bytes)) or not isinstance(t, Sequence):
                raise ValueError(f"Prompt {i} is {type(t).__name__}, not a list of token ids.")
            if len(t) == 0:
                raise ValueError(f"Prompt {i} is empty: a prompt needs at least one token "
                                 "(encode with bos=True to start from BOS alone).")
            if len(t) > params.max_seq_len:
                raise ValueError(
                    f"Prompt {i} has {len(t)} tokens, longer than max_seq_len={params.max_seq_len}. "
                    "Shorten it or build with a larger max_seq_len."
                )
            bad = [x for x in t if not (0 <= int(x) < params.vocab_size)]
            if bad:
                raise ValueError(f"Prompt {i} has token ids outside 0..{params.vocab_size - 1}: {bad[:5]}.")

    # ---- generate ------------------------------------------------------------------------

    @torch.inference_mode()
    def generate(self, prompt_tokens: Sequence[Sequence[int]], max_gen_len: int,
                 temperature: float = 0.6, top_p: float = 0.9, logprobs: bool = False,
                 echo: bool = False, *, use_cache: bool = True
                 ) -> tuple[list[list[int]], Optional[list[list[float]]]]:
        """Continue each prompt by up to ``max_gen_len`` tokens, Meta's signature and semantics.

        Returns (generation_tokens, generation_logprobs or None): per prompt the new tokens (with
        ``echo``, prompt + new), cut before the first EOS. ``logprobs`` are log_softmax (T = 1) of
        the logits each token was chosen from; with ``echo`` the first prompt token, which nothing
        predicts, gets 0.0. ``use_cache=False`` re-runs the whole prefix at every step (the
        baseline the KV cache is measured against).
        """
        return self._generate(prompt_tokens, max_gen_len, temperature, top_p, logprobs, echo,
                              use_cache=use_cache, logprobs_before_write=False)

    def _generate(self, prompt_tokens, max_gen_len, temperature, top_p, logprobs, echo, *,
                  use_cache=True, logprobs_before_write=False):
        self._check_request(prompt_tokens, max_gen_len, temperature, top_p)
        params, tok = self.model.params, self.tokenizer
        bsz = len(prompt_tokens)
        min_prompt_len = min(len(t) for t in prompt_tokens)
        max_prompt_len = max(len(t) for t in prompt_tokens)
        total_len = min(params.max_seq_len, max_gen_len + max_prompt_len)

        pad_id = tok.pad_id
        tokens = torch.full((bsz, total_len), pad_id, dtype=torch.long, device=self.device)
        for k, t in enumerate(prompt_tokens):
            tokens[k, : len(t)] = torch.tensor(list(t), dtype=torch.long, device=self.device)
        token_logprobs = torch.zeros((bsz, total_len), dtype=torch.float)
        input_text_mask = tokens != pad_id  # prompt positions: teacher-forced
        stop = torch.tensor(sorted(set(getattr(tok, "stop_tokens", [tok.eos_id]))), device=self.device)
        eos_reached = torch.zeros(bsz, dtype=torch.bool, device=self.device)

        prev_pos = 0
        if min_prompt_len == total_len and logprobs:  # nothing to generate: score the prompts
            logits = self.model.forward(tokens, 0, use_cache=use_cache)
            token_logprobs[:, 1:] = token_logprobs_cpu(logits[:, :-1], tokens[:, 1:], pad_id)

        for cur_pos in range(min_prompt_len, total_len):
            if use_cache:  # only the tokens since the last call; the cache holds the rest
                logits = self.model.forward(tokens[:, prev_pos:cur_pos], prev_pos)
            else:          # everything from position 0 again, no cache
                logits = self.model.forward(tokens[:, :cur_pos], 0, use_cache=False)[:, prev_pos:]
            next_token, _ = choose_next(logits[:, -1], temperature, top_p, self.generator)
            next_token = next_token.to(self.device)
            # Keep the prompt where there is one (teacher forcing), the choice elsewhere.
            next_token = torch.where(input_text_mask[:, cur_pos], tokens[:, cur_pos], next_token)
            if logprobs and logprobs_before_write:  # the seed's order: targets still pad_id
                token_logprobs[:, prev_pos + 1: cur_pos + 1] = token_logprobs_cpu(
                    logits, tokens[:, prev_pos + 1: cur_pos + 1], pad_id)
            tokens[:, cur_pos] = next_token
            if logprobs and not logprobs_before_write:
                token_logprobs[:, prev_pos + 1: cur_pos + 1] = token_logprobs_cpu(
                    logits, tokens[:, prev_pos + 1: cur_pos + 1], pad_id)
            eos_reached |= (~input_text_mask[:, cur_pos]) & torch.isin(next_token, stop)
            prev_pos = cur_pos
            if bool(eos_reached.all()):
                break

        out_tokens, out_logprobs = [], []
        stops = set(stop.tolist())
        for i, t in enumerate(tokens.tolist()):
            start = 0 if echo else len(prompt_tokens[i])
            end = len(prompt_tokens[i]) + max_gen_len
            toks, probs = t[start:end], token_logprobs[i].tolist()[start:end]
            # Cut at the first stop token among the *generated* ones (a prompt may contain EOS).
            first_new = len(prompt_tokens[i]) - start
            for j in range(first_new, len(toks)):
                if toks[j] in stops:
                    toks, probs = toks[:j], probs[:j]
                    break
            out_tokens.append(toks)
            out_logprobs.append(probs)
        return out_tokens, (out_logprobs if logprobs else None)

    def text_completion(self, prompts: Sequence[str], temperature: float = 0.6, top_p: float = 0.9,
                        max_gen_len: Optional[int] = None, logprobs: bool = False, echo: bool = False
                        ) -> list[dict[str, Any]]:
        """Meta's text API: strings in, ``[{"generation": str}]`` out (with ``logprobs``, also
        ``"tokens"`` (each token's text) and ``"logprobs"``). ``max_gen_len=None`` means up to
        ``max_seq_len - 1`` tokens."""
        if isinstance(prompts, str):
            raise ValueError("prompts must be a list of strings, e.g. ['ROMEO:'], not one string.")
        if max_gen_len is None:
            max_gen_len = self.model.params.max_seq_len - 1
        prompt_tokens = [self.tokenizer.encode(x, bos=True, eos=False) for x in prompts]
        return self._completions(prompt_tokens, max_gen_len, temperature, top_p, logprobs, echo,
                                 wrap=lambda text: text)

    def chat_completion(self, dialogs: Sequence[Sequence[dict[str, str]]], temperature: float = 0.6,
                        top_p: float = 0.9, max_gen_len: Optional[int] = None,
                        logprobs: bool = False) -> list[dict[str, Any]]:
        """Meta's chat API: dialogs in (each a list of ``{"role", "content"}``: an optional
        system message, then user and assistant taking turns, ending with the user), one
        ``{"generation": {"role": "assistant", "content": str}}`` per dialog out (with
        ``logprobs``, also ``"tokens"`` and ``"logprobs"``). The prompt format follows the
        tokenizer: Llama 3's headers, or Llama 2's ``[INST]`` for SentencePiece (see
        ``nnlib.llama.chat``). The reply ends at the first stop token, which is not returned."""
        from .chat import encode_dialog

        if isinstance(dialogs, dict) or (isinstance(dialogs, Sequence) and len(dialogs) > 0
                                         and isinstance(dialogs[0], dict)):
            raise ValueError("dialogs must be a list of dialogs, each a list of messages: pass "
                             "[dialog], e.g. [[{'role': 'user', 'content': 'Hi'}]].")
        if max_gen_len is None:
            max_gen_len = self.model.params.max_seq_len - 1
        prompt_tokens = [encode_dialog(self.tokenizer, d) for d in dialogs]
        return self._completions(prompt_tokens, max_gen_len, temperature, top_p, logprobs, False,
                                 wrap=lambda text: {"role": "assistant", "content": text})

    def _completions(self, prompt_tokens, max_gen_len, temperature, top_p, logprobs, echo, wrap
                     ) -> list[dict[str, Any]]:
        """``generate``, then Meta's result dicts: ``{"generation": wrap(text)}``, and with
        ``logprobs`` each token's text and logprob."""
        gen_tokens, gen_logprobs = self.generate(prompt_tokens, max_gen_len, temperature, top_p,
                                                 logprobs, echo)
        out = []
        for i, t in enumerate(gen_tokens):
            item: dict[str, Any] = {"generation": wrap(self.tokenizer.decode(t))}
            if logprobs:
                item["tokens"] = [self.tokenizer.decode([x]) for x in t]
                item["logprobs"] = gen_logprobs[i]
            out.append(item)
        return out

    # ---- step through --------------------------------------------------------------------

    @torch.inference_mode()
    def step(self, ids: Sequence[int], prev_pos: int, temperature: float = 0.6, top_p: float = 0.9,
             generator: Optional[torch.Generator] = None, top_k: int = 10,
             use_cache: bool = True, logits: Optional[torch.Tensor] = None) -> GenerationStep:
        """One token after ``ids`` (one sequence). The model sees ``ids[prev_pos:]`` at
        ``prev_pos``; the cache must already hold ``ids[:prev_pos]`` (so ``prev_pos=0`` the first
        time; rewinding is calling again with a smaller ``prev_pos``). ``logits`` (V,), when
        given, are this position's raw scores from an earlier call: the model is not run and only
        the choice is made again (a widget's slider moved)."""
        ids = [int(x) for x in ids]
        self._check_request([ids], 0, temperature, top_p)
        if len(ids) >= self.model.params.max_seq_len:
            raise ValueError(f"The sequence already fills max_seq_len={self.model.params.max_seq_len}.")
        if not 0 <= prev_pos < len(ids):
            raise ValueError(f"prev_pos must be in 0..{len(ids) - 1}, got {prev_pos}.")
        x = torch.tensor([ids], dtype=torch.long, device=self.device)
        if logits is not None:
            if tuple(logits.shape) != (self.model.params.vocab_size,):
                raise ValueError(f"logits must have shape ({self.model.params.vocab_size},), one "
                                 f"score per vocabulary entry; got {tuple(logits.shape)}.")
        elif use_cache:
            logits = self.model.forward(x[:, prev_pos:], prev_pos)[0, -1]
        else:
            logits = self.model.forward(x, 0, use_cache=False)[0, -1]
        token_t, probs = choose_next(logits[None], temperature, top_p, generator or self.generator)
        token, probs, logits = int(token_t[0]), probs[0], logits.float().cpu()
        _, kept, cutoff = next_token_distribution(logits, temperature, top_p)
        top_vals, top_ids = torch.topk(probs, min(top_k, probs.numel()))
        tok = self.tokenizer
        before = tok.decode(ids)
        after = tok.decode(ids + [token])
        piece = after[len(before):] if after.startswith(before) else tok.decode([token])
        stops = set(getattr(tok, "stop_tokens", [tok.eos_id]))
        return GenerationStep(
            position=len(ids), token=token, piece=piece, logits=logits, probs=probs,
            top=[(int(i), display_piece(tok, int(i)), float(v)) for v, i in zip(top_vals, top_ids)],
            kept=kept, cutoff=cutoff, logprob=float(torch.log_softmax(logits, -1)[token]),
            eos=token in stops, temperature=float(temperature), top_p=float(top_p), prev_pos=prev_pos,
        )

    def steps(self, prompt: Union[str, Sequence[int]], max_gen_len: int, temperature: float = 0.6,
              top_p: float = 0.9, *, seed: Optional[int] = None, top_k: int = 10,
              use_cache: bool = True) -> Iterator[GenerationStep]:
        """Generate one token at a time, yielding a ``GenerationStep`` for each; stops after an EOS
        (yielded, with ``eos=True``) or ``max_gen_len`` tokens. ``prompt`` is text (encoded with
        BOS) or token ids. With ``seed`` the draws come from a fresh generator with that seed;
        otherwise from the Llama's own, exactly as ``generate`` would draw them for one prompt."""
        ids = self.tokenizer.encode(prompt, bos=True, eos=False) if isinstance(prompt, str) else list(prompt)
        self._check_request([ids], max_gen_len, temperature, top_p)
        generator = torch.Generator().manual_seed(seed) if seed is not None else self.generator
        total_len = min(self.model.params.max_seq_len, len(ids) + max_gen_len)
        prev_pos = 0
        while len(ids) < total_len:
            s = self.step(ids, prev_pos, temperature, top_p, generator, top_k, use_cache)
            yield s
            prev_pos = len(ids)
            ids.append(s.token)
            if s.eos:
                return


def token_logprobs_cpu(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    return token_logprobs(logits, targets, pad_id).float().cpu()


def generate_seed_order(llama: Llama, prompt_tokens: Sequence[Sequence[int]], max_gen_len: int,
                        temperature: float = 0.6, top_p: float = 0.9, echo: bool = False
                        ) -> tuple[list[list[int]], list[list[float]]]:
    """``generate(..., logprobs=True)`` with the logprob line *before* the new token is written
    into ``tokens``, as in the seed's copy of Meta's code. The targets of generated positions are
    then still ``pad_id``, which cross-entropy ignores, so every generated token's logprob comes
    out 0.0. For notebook 04 to show the bug next to ``generate``; never use it for real."""
    with torch.inference_mode():
        return llama._generate(prompt_tokens, max_gen_len, temperature, top_p, True, echo,
                               logprobs_before_write=True)


def _check_memory(args: ModelArgs, dtype: torch.dtype, device: torch.device) -> None:
    """Raise MemoryError *before* loading when weights + KV cache exceed the free memory."""
    from .devices import count_parameters, free_memory_bytes, kv_cache_bytes, weight_bytes

    shape = {k: getattr(args, k) for k in ("dim", "n_layers", "n_heads", "vocab_size", "n_kv_heads",
                                           "multiple_of", "ffn_dim_multiplier")}
    name = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")
    n = count_parameters(**shape)
    need = weight_bytes(n, name) + kv_cache_bytes(max_seq_len=args.max_seq_len,
                                                  max_batch_size=args.max_batch_size, dtype=name, **shape)
    free = free_memory_bytes(device)
    if free is not None and need > free:
        raise MemoryError(
            f"This model needs about {need / 1e9:.1f} GB on {device} ({n / 1e9:.2f}B parameters in "
            f"{str(dtype).replace('torch.', '')} plus the KV cache) but only {free / 1e9:.1f} GB is "
            "free. Use a smaller dtype (bf16/fp16), smaller max_seq_len/max_batch_size, another "
            "device, or check_memory=False to try anyway."
        )


def load_tiny(device: Any = None, max_seq_len: int = 256, max_batch_size: int = 8,
              dtype: Any = None, seed: int = 1) -> Llama:
    """The tiny Shakespeare Llama shipped in ``data/tiny-llama/`` (trained by
    ``scripts/train_tiny_llama.py``; context 256 tokens)."""
    from nnlib import DATA_DIR

    return Llama.build(DATA_DIR / "tiny-llama", max_seq_len=max_seq_len,
                       max_batch_size=max_batch_size, device=device, dtype=dtype, seed=seed)
