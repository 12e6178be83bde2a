"""Checkers for notebook 05 Inside one step: each runs the learner's function on cases it builds
itself, compares with a reference computed here (``Llama.generate`` for the loop), prints one line
of feedback and returns a ``Verdict`` (truthy when right).

The loop checker also watches *how* the learner's loop calls the model (it wraps
``llama.model.forward`` for the duration of the call, and puts it back), because the usual
mistakes of a KV-cache loop either change the tokens (a wrong ``start_pos``) or keep them and
only waste work (re-feeding what the cache holds): the second kind is invisible in the output.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .verdict import Verdict, attempt, report, tensor_answer

LOOP_PROMPTS = ("ROMEO:", "To be, or not to be", "JULIET:\nO Romeo")
LOOP_STEPS = 10


@dataclass
class ForwardCall:
    """One call the learner's loop made: where it started, the ids it fed (one row), and whether
    it used the cache."""

    start_pos: int
    ids: list[int]
    use_cache: bool

    @property
    def end(self) -> int:
        return self.start_pos + len(self.ids)


def _traced_run(fn: Callable[..., Any], llama: Any, prompt: list[int], n: int
                ) -> tuple[bool, Any, list[ForwardCall], str]:
    """Run ``fn(llama, prompt, n)`` with ``llama.model.forward`` wrapped to record each call.

    Returns (attempted, result, calls, error): ``error`` is the text of any exception other than
    ``NotImplementedError`` (a learner's bug is reported, never raised)."""
    model = llama.model
    calls: list[ForwardCall] = []
    original = model.forward

    def traced(tokens: Any, start_pos: int = 0, use_cache: bool = True) -> Any:
        if not hasattr(tokens, "dim") or tokens.dim() != 2:
            raise TypeError("llama.model.forward takes a (batch, seq) tensor of token ids, e.g. "
                            f"torch.tensor([ids], device=llama.device); got {type(tokens).__name__}"
                            + (f" of shape {tuple(tokens.shape)}" if hasattr(tokens, "shape") else ""))
        calls.append(ForwardCall(int(start_pos), [int(x) for x in tokens[0].tolist()], bool(use_cache)))
        return original(tokens, start_pos, use_cache=use_cache)

    model.forward = traced
    try:
        attempted, result = attempt(fn, llama, list(prompt), n)
        return attempted, result, calls, ""
    except Exception as err:  # noqa: BLE001 - the learner's bug becomes feedback
        return True, None, calls, f"{type(err).__name__}: {err}"
    finally:
        del model.forward  # back to the class's own method


def _tokens(n: int) -> str:
    """``n`` with "token" or "tokens", as English wants it."""
    return f"{n} token" if n == 1 else f"{n} tokens"


def _loop_mistake(calls: list[ForwardCall], sequence: list[int], n_prompt: int) -> str:
    """The first departure of ``calls`` from Meta's loop over ``sequence`` (prompt + generated):
    call 0 (prefill) feeds the prompt at 0; call k feeds the tokens from where call k-1 ended.
    Empty string when the calls are exactly that."""
    if not calls:
        return ("your function never called llama.model.forward: run the model yourself, "
                "forward(tokens[:, prev_pos:cur_pos], prev_pos)")
    expected_end = 0
    for k, c in enumerate(calls):
        step = "the prefill call" if k == 0 else f"decode step {k}"
        if not c.use_cache:
            return (f"{step} passed use_cache=False: the exercise is the cached loop, call "
                    "forward(new_tokens, prev_pos) with the cache (the default)")
        refed = c.ids == sequence[c.start_pos: c.end] and c.end > expected_end
        if c.start_pos < expected_end and refed:
            return (f"{step} re-fed {_tokens(len(c.ids))} from position {c.start_pos}, though the "
                    f"cache already held positions 0..{expected_end - 1}: every step redoes the "
                    "prefix. Feed only tokens[prev_pos:] and advance prev_pos after each call")
        if c.start_pos < expected_end:
            return (f"{step} wrote {_tokens(len(c.ids))} at start_pos={c.start_pos}, over positions "
                    f"the cache already held (0..{expected_end - 1}): the new token sits at "
                    f"position {expected_end}, so pass start_pos = prev_pos = {expected_end}")
        if c.start_pos > expected_end:
            gap = (f"slot {expected_end}" if c.start_pos == expected_end + 1
                   else f"slots {expected_end}..{c.start_pos - 1}")
            return (f"{step} passed start_pos={c.start_pos}, but the next free position is "
                    f"{expected_end}: RoPE turns the token by the wrong angle, and the token "
                    f"attends to cache {gap}, which your loop never wrote itself: it reads what an "
                    "earlier call left there (start_pos = the number of tokens before the ones "
                    "you feed)")
        if c.ids != sequence[c.start_pos: c.end]:
            return (f"{step} fed ids {c.ids[:6]} at start_pos={c.start_pos}, but the sequence there "
                    f"is {sequence[c.start_pos: c.end][:6]}: feed the tokens that sit at those "
                    "positions")
        if k == 0 and c.end != n_prompt:
            return (f"the prefill call fed {_tokens(len(c.ids))}; feed the whole prompt "
                    f"({_tokens(n_prompt)}) in the first call")
        expected_end = c.end
    return ""


def check_generation_loop(my_generate: Callable[[Any, list, int], Any], llama: Any) -> Verdict:
    """Exercise 05.1: ``my_generate(llama, prompt_tokens, max_gen_len)`` -> the ``max_gen_len``
    greedy new tokens after ``prompt_tokens`` (without the prompt), made with the KV cache: one
    prefill call at 0, then one call per new token at ``prev_pos``. Compared token by token with
    ``llama.generate([prompt_tokens], max_gen_len, temperature=0.0)``."""
    import torch

    tok = llama.tokenizer
    n = min(LOOP_STEPS, llama.model.params.max_seq_len // 2)
    for text in LOOP_PROMPTS:
        prompt = tok.encode(text, bos=True, eos=False)
        with torch.random.fork_rng(devices=[]):  # greedy draws nothing; keep the learner's RNG anyway
            (want,), _ = llama.generate([prompt], n, temperature=0.0)
        attempted, got, calls, error = _traced_run(my_generate, llama, prompt, n)
        if not attempted:
            return Verdict(False)
        if error:
            return report(False, "", f"for {text!r} your function raised {error}")
        try:
            got = [int(x) for x in (got.tolist() if hasattr(got, "tolist") else got)]
        except (TypeError, ValueError):
            return report(False, "", f"return a list of token ids, got {type(got).__name__}")
        if got[: len(prompt)] == prompt and len(got) == len(prompt) + n:
            return report(False, "", "you returned the prompt too: return only the new tokens")
        first_diff = next((j for j, (a, b) in enumerate(zip(got, want)) if a != b), None)
        sequence = prompt + got
        mistake = _loop_mistake(calls, sequence, len(prompt))
        if first_diff is not None:
            why = mistake or ("the calls look right, so look at the choice: the next token is the "
                              "argmax of the LAST row of logits, logits[0, -1]")
            return report(False, "", f"for {text!r} step {first_diff} differs: generate chose "
                          f"{tok.decode([want[first_diff]])!r} (id {want[first_diff]}), yours "
                          f"{tok.decode([got[first_diff]])!r} (id {got[first_diff]}). Likely: {why}")
        if len(got) < len(want):
            return report(False, "", f"for {text!r} you returned {_tokens(len(got))}, generate "
                          f"{len(want)}: make max_gen_len new tokens")
        if len(want) == n and len(got) != n:
            return report(False, "", f"for {text!r} you returned {_tokens(len(got))} for "
                          f"max_gen_len={n}")
        if mistake:
            return report(False, "", f"for {text!r} the tokens are right, but {mistake}")
    return report(True, "prefill once, then one token per call at prev_pos: the same tokens as "
                  "generate, and each step costs one column of work.", "")


def _position_ids_reference(mask: Any) -> Any:
    return mask.long().cumsum(-1) - 1


def check_position_ids(position_ids_from_mask: Callable[[Any], Any]) -> Verdict:
    """Exercise 05.2: ``position_ids_from_mask(attention_mask)`` (B, L) of 0/1, left-padded ->
    (B, L) position ids where each row's first real token is at 0 and counts up; pad positions
    may hold anything (the mask hides them)."""
    import torch

    cases = [torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]]),
             torch.tensor([[1, 1, 1]]),
             torch.tensor([[0, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1]])]
    for mask in cases:
        attempted, got = attempt(position_ids_from_mask, mask.clone())
        if not attempted:
            return Verdict(False)
        got, refused = tensor_answer(got, mask.shape)
        if refused is not None:
            return refused
        got = got.long()
        if got.shape != mask.shape:
            return report(False, "", f"for a mask of shape {tuple(mask.shape)} return the same "
                          f"shape, got {tuple(got.shape)}")
        want = _position_ids_reference(mask)
        real = mask.bool()
        if torch.equal(got[real], want[real]):
            continue
        rows = mask.tolist()
        arange = torch.arange(mask.shape[1]).expand_as(mask)
        if torch.equal(got[real], arange[real]):
            return report(False, "", f"for mask {rows} you counted from column 0, pads included: "
                          "in a left-padded row the first REAL token is position 0 (count the "
                          "mask's ones, cumsum)")
        if torch.equal(got[real], want[real] + 1):
            return report(False, "", f"for mask {rows} every position is one too high: the first "
                          "real token is position 0 (cumsum - 1)")
        return report(False, "", f"for mask {rows} expected {want.masked_fill(~real, 0).tolist()} "
                      "at the real tokens (pads: anything)")
    return report(True, "each row counts from its own first token, so a padded prompt gets the "
                  "positions it would have alone.", "")


def _cache_fill_reference(prompt_len: int, max_gen_len: int) -> int:
    return prompt_len + max_gen_len - 1


def check_cache_fill(cache_fill: Callable[[int, int], Any]) -> Verdict:
    """Exercise 05.0, a prediction: ``cache_fill(prompt_len, max_gen_len)`` is how many positions
    of each layer's cache ``generate`` has written after a greedy run of ``max_gen_len`` >= 1 new
    tokens (no EOS) on one prompt of ``prompt_len`` tokens: the prompt (prefill) and every new
    token that was fed back, which is all but the last one (it is chosen, never fed)."""
    cases = [(9, 4), (9, 1), (5, 10), (1, 3)]
    for prompt_len, n in cases:
        attempted, got = attempt(cache_fill, prompt_len, n)
        if not attempted:
            return Verdict(False)
        try:
            got = int(got)
        except (TypeError, ValueError):
            return report(False, "", f"return a whole number of positions, got {got!r}")
        want = _cache_fill_reference(prompt_len, n)
        if got == want:
            continue
        where = f"for a prompt of {_tokens(prompt_len)} and max_gen_len={n} you said {got}"
        if got == prompt_len + n:
            return report(False, "", f"{where}: one too many. The last new token is chosen from "
                          "the last call's logits but never fed to the model, so its key and value "
                          "are never written (section 1: 4 new tokens took 4 calls, not 5)")
        if got == n or got == n - 1:
            return report(False, "", f"{where}: the prefill writes every prompt position too")
        return report(False, "", f"{where}; expected {want}. Count the calls of section 1: what "
                      "does each one write?")
    return report(True, "prompt + new tokens - 1: the prefill writes the prompt, each decode step "
                  "one fed-back token, and the last token is never fed.", "")
