"""Checkers for notebook 04 Step-through generation: each runs the learner's function on cases it builds
itself, compares with a reference computed here, prints one line of feedback and returns a
``Verdict`` (truthy when right)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .verdict import Verdict, as_tensor, attempt, report, tensor_answer

# The checkers build their own cases with torch and compare exactly (the top-p cases hold binary
# fractions, so even the equality case is exact). None of them changes torch's default generator.


def logprob_tolerance(dtype: Any) -> float:
    """How far two correct computations of the same logprob may differ when the model runs in
    ``dtype`` (a fresh pass without the cache and ``generate``'s cached steps add the same
    numbers in a different order): the series' one rule, ``nnlib.llama.compare.logprob_tolerance``
    (48 × max(eps, 2^-10), where eps is the dtype's rounding unit: 0.375 in bfloat16, 0.046875 in
    float16 and in float32 alike, because the floor 2^-10 is TF32's unit, which a GPU may use for
    float32's matrix products; measured gaps and the reasons are in that module). The mistakes
    the checkers name (a zero, a shift by one token, a raw logit) move logprobs by 1 or more."""
    from nnlib.llama.compare import logprob_tolerance as rule

    return rule(dtype)


def _top_k_reference(probs: Any, k: int) -> Any:
    import torch

    vals, idx = torch.topk(probs, k, dim=-1)
    out = torch.zeros_like(probs).scatter(-1, idx, vals)
    return out / out.sum(dim=-1, keepdim=True)


def check_top_k(top_k_probs: Callable[[Any, int], Any]) -> Verdict:
    """Exercise 04.1: ``top_k_probs(probs, k)`` keeps the ``k`` most likely tokens of each row of
    ``probs`` (B, V), zeroes the rest and renormalises each row to sum to 1."""
    import torch

    g = torch.Generator().manual_seed(41)
    cases = [(torch.softmax(torch.randn(3, 40, generator=g) * 2, -1), 5),
             (torch.softmax(torch.randn(2, 100, generator=g) * 3, -1), 1),
             (torch.softmax(torch.randn(1, 30, generator=g), -1), 30)]
    for probs, k in cases:
        attempted, got = attempt(top_k_probs, probs.clone(), k)
        if not attempted:
            return Verdict(False)
        want = _top_k_reference(probs, k)
        got, refused = tensor_answer(got, probs.shape, torch.float32)
        if refused is not None:
            return refused
        if got.shape != want.shape:
            return report(False, "", f"for probs of shape {tuple(probs.shape)} and k={k} "
                           f"expected the same shape back, got {tuple(got.shape)}")
        n_nonzero = (got > 0).sum(dim=-1)
        if bool((n_nonzero != k).any()):
            return report(False, "", f"with k={k} each row should keep exactly {k} tokens, "
                           f"yours keeps {n_nonzero.tolist()} (torch.topk gives values and ids)")
        kept_raw = torch.where(want > 0, probs, torch.zeros_like(probs))
        if torch.allclose(got, kept_raw, atol=1e-6) and k < probs.shape[-1]:
            return report(False, "", "the right tokens, but the rows no longer sum to 1: "
                           "divide by the kept mass (renormalise)")
        if not torch.allclose(got, want, atol=1e-5):
            return report(False, "", f"for k={k} some kept tokens are not the {k} most likely, "
                           "or the rows are scaled differently")
    return report(True, "top-k always keeps k tokens, however sure or unsure the model is; "
                   "top-p adapts the count to the distribution.", "")


def check_zero_temperature_limit(limit: Callable[[Any], Any]) -> Verdict:
    """Exercise 04.2: ``limit(logits)`` (V,) -> the distribution softmax(logits / T) tends to as
    T -> 0 from above, including when several logits tie for the maximum."""
    import torch

    g = torch.Generator().manual_seed(42)
    cases = [torch.randn(12, generator=g), torch.tensor([1.0, 3.0, -2.0, 3.0, 0.5]),
             torch.full((4,), 0.7), torch.tensor([-5.0, -1.0, -3.0])]
    for logits in cases:
        attempted, got = attempt(limit, logits.clone())
        if not attempted:
            return Verdict(False)
        is_max = logits == logits.max()
        want = is_max.float() / is_max.sum()
        answer = as_tensor(got, torch.float32)
        if answer is None:
            return report(False, "", f"return a tensor of {len(logits)} probabilities, got "
                           f"{type(got).__name__}")
        got = answer.reshape(-1)
        if got.shape != want.shape:
            return report(False, "", f"expected {len(logits)} probabilities, got {got.numel()}")
        if torch.allclose(got, torch.softmax(logits, -1), atol=1e-5) and not torch.allclose(got, want):
            return report(False, "", "that is softmax(logits), the distribution at T = 1. "
                           "Divide by a smaller and smaller T: what happens to the gaps?")
        first = torch.zeros_like(want)
        first[int(torch.argmax(logits))] = 1.0
        if int(is_max.sum()) > 1 and torch.allclose(got, first):
            return report(False, "", f"for {logits.tolist()} two or more logits tie for the "
                           "maximum; exp((z_i - z_max)/T) stays 1 for each of them, so no tie "
                           "wins (argmax picks the first one only by convention)")
        if not torch.allclose(got, want, atol=1e-5):
            return report(False, "", f"for {logits.tolist()} expected {want.tolist()}")
    return report(True, "as T -> 0 all mass goes to the maximum (shared equally by ties): "
                   "greedy decoding is the T = 0 end of sampling.", "")


def _top_p_drop_reference(probs_sort: Any, p: float) -> Any:
    import torch

    return torch.cumsum(probs_sort, dim=-1) - probs_sort > p


def check_top_p_mask(top_p_mask: Callable[[Any, float], Any]) -> Verdict:
    """Exercise 04.3: ``top_p_mask(probs_sort, p)`` -> bool tensor of the shape of
    ``probs_sort`` (B, V), sorted high to low: True where Meta's ``sample_top_p`` drops the token
    (``probs_sum - probs_sort > p``: the mass of the tokens ranked above it strictly exceeds p).
    The cases hold binary fractions, so the equality case (mass before == p) is exact."""
    import torch

    g = torch.Generator().manual_seed(43)
    random_rows = torch.sort(torch.softmax(torch.randn(3, 30, generator=g) * 2, -1), -1,
                             descending=True).values
    exact = torch.tensor([[0.5, 0.25, 0.125, 0.0625, 0.0625]])  # mass before: 0, .5, .75, .875, .9375
    cases = [(exact, 0.6), (exact, 0.75), (exact, 0.5), (random_rows, 0.9), (random_rows, 0.05), (exact, 1.0)]
    for probs_sort, p in cases:
        attempted, got = attempt(top_p_mask, probs_sort.clone(), p)
        if not attempted:
            return Verdict(False)
        want = _top_p_drop_reference(probs_sort, p)
        answer = as_tensor(got, None)
        if answer is None or tuple(answer.shape) != tuple(want.shape):
            shape = None if answer is None else tuple(answer.shape)
            return report(False, "", f"return one True/False per entry of probs_sort, shape "
                           f"{tuple(want.shape)}; got {type(got).__name__} of shape {shape}")
        got = answer.bool()
        if torch.equal(got, want):
            continue
        before = torch.cumsum(probs_sort, -1) - probs_sort
        if torch.equal(got, ~want):
            return report(False, "", "that is the kept set; the mask marks what Meta drops "
                           "(masked_fill puts 0.0 where it is True)")
        if torch.equal(got, before >= p) and bool((before == p).any()):
            return report(False, "", f"for {probs_sort[0].tolist()} and p = {p}: the mass before "
                           "one token is exactly p. Does Meta's comparison keep it or drop it?")
        if torch.equal(got, torch.cumsum(probs_sort, -1) > p):
            return report(False, "", f"with p = {p} your mask drops the token whose own "
                           "probability carries the running total across p. Meta keeps it: it "
                           "looks at the mass *before* each token")
        if bool(got[..., 0].any()):
            return report(False, "", "the most likely token must always be kept, however small "
                           "p is")
        return report(False, "", f"for {[round(x, 4) for x in probs_sort[0].tolist()[:6]]}"
                       f"... and p = {p} expected {want[0].int().tolist()[:6]}..., got "
                       f"{got[0].int().tolist()[:6]}...")
    return report(True, "a token is dropped only when the tokens above it already hold more "
                   "than p, so the nucleus always has at least one token and the one that crosses "
                   "p stays in.", "")


def _unshifted_prompt_logprobs(logits: Any, tokens: Any, pad_id: int) -> Any:
    """The off-by-one: row t of the logits scored against token t, itself (no shift)."""
    import torch.nn.functional as F

    return -F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none", ignore_index=pad_id)


def _prompt_logprobs_reference(logits: Any, tokens: Any, pad_id: int) -> Any:
    import torch
    import torch.nn.functional as F

    out = torch.zeros(tokens.shape, dtype=torch.float32)
    out[:, 1:] = -F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none",
                                  ignore_index=pad_id)
    return out


def check_prompt_logprobs(prompt_logprobs: Callable[[Any, Any, int], Any]) -> Verdict:
    """Exercise 04.4: ``prompt_logprobs(logits, tokens, pad_id)`` -> (B, T) float tensor: the
    logprob of each token of ``tokens`` (B, T) given the tokens before it, from ``logits``
    (B, T, V) of one forward pass over ``tokens``. Column 0 is 0.0 (nothing predicts the first
    token), and so is every position holding ``pad_id``: what ``generate(prompts, 0,
    logprobs=True, echo=True)`` returns. Cases are random logits, so the check is exact."""
    import torch

    g = torch.Generator().manual_seed(44)
    cases = []
    for (b, t, v), pad_id in (((2, 7, 11), -1), ((3, 5, 9), 0), ((1, 4, 6), -1)):
        logits = torch.randn(b, t, v, generator=g) * 3
        tokens = torch.randint(1, v, (b, t), generator=g)
        if b > 1:
            tokens[1:, t - 2:] = pad_id  # a shorter prompt, padded at the right as in Meta's grid
        cases.append((logits, tokens, pad_id))
    for logits, tokens, pad_id in cases:
        try:
            attempted, got = attempt(prompt_logprobs, logits.clone(), tokens.clone(), pad_id)
        except (IndexError, RuntimeError) as err:
            return report(False, "", f"it raised {type(err).__name__} with pad_id={pad_id} in "
                           "tokens: pad_id (-1 for SentencePiece) is no real token; let "
                           "cross_entropy skip it with ignore_index=pad_id")
        if not attempted:
            return Verdict(False)
        want = _prompt_logprobs_reference(logits, tokens, pad_id)
        got, refused = tensor_answer(got, tokens.shape, torch.float32)
        if refused is not None:
            return refused
        if got.shape != want.shape:
            return report(False, "", f"for tokens of shape {tuple(tokens.shape)} return one "
                           f"logprob per token, shape {tuple(tokens.shape)}; got {tuple(got.shape)}")
        if torch.allclose(got, _unshifted_prompt_logprobs(logits, tokens, pad_id), atol=1e-5):
            return report(False, "", "that is the off-by-one of Meta's no-generation branch: "
                           "row t of the logits predicts token t + 1, but you scored it against "
                           "token t, itself. Score logits[:, :-1] against tokens[:, 1:]")
        if torch.allclose(got[:, :-1], want[:, 1:], atol=1e-5):
            return report(False, "", "the right numbers, one column to the left: token t's "
                           "logprob belongs in column t, and column 0 is 0.0 (nothing predicts "
                           "the first token)")
        if bool((got > 1e-6).any()):
            return report(False, "", "a log-probability is never positive: use log_softmax "
                           "(or -cross_entropy), not the raw logits")
        pad = tokens == pad_id
        if bool(pad.any()) and not torch.allclose(got[pad], torch.zeros_like(got[pad])):
            return report(False, "", "positions holding pad_id must get 0.0: they are no "
                           "token (ignore_index=pad_id)")
        if not torch.allclose(got, want, atol=1e-5):
            return report(False, "", f"for tokens {tokens[0].tolist()} expected "
                           f"{[round(x, 3) for x in want[0].tolist()]}, got "
                           f"{[round(x, 3) for x in got[0].tolist()]}")
    return report(True, "each row of logits scores the token after it; nnlib's generate does "
                   "the same with max_gen_len=0 and echo=True.", "")


def _top_p_counts(logits: Any, top_p: float = 0.9) -> dict[float, int]:
    """How many tokens ``top_p`` keeps at T = 0.6 and T = 1.0 for one row of logits (V,)."""
    from nnlib.llama.sampling import Sampler, temperature_probs

    return {T: int(Sampler(kind="top-p", temperature=T, top_p=top_p)
                   .keep(temperature_probs(logits, T)).sum()) for T in (0.6, 1.0)}


PREDICTIONS = ("fewer", "the same", "more")


def check_top_p_prediction(top_p_prediction: Callable[[], Any], first_logits: Any) -> Verdict:
    """Exercise 04.0, a prediction (the seed's slider question): ``top_p_prediction()`` returns
    "fewer", "the same" or "more": at the position whose logits are ``first_logits`` (V,), does
    ``top_p = 0.9`` keep fewer tokens, the same number or more at T = 0.6 than at T = 1.0? The
    checker counts both (no model call) and prints them with the verdict."""
    attempted, got = attempt(top_p_prediction)
    if not attempted:
        return Verdict(False)
    if not isinstance(got, str) or got.strip().lower() not in PREDICTIONS:
        return report(False, "", f"return one of {', '.join(map(repr, PREDICTIONS))}, got {got!r}")
    counts = _top_p_counts(first_logits)
    low, high = counts[0.6], counts[1.0]
    truth = "fewer" if low < high else "the same" if low == high else "more"
    said = f"top_p = 0.9 keeps {low} tokens at T = 0.6 and {high} at T = 1.0"
    if got.strip().lower() == truth:
        why = ("a lower temperature piles the mass onto the top tokens, so 90 % is reached "
               "after fewer of them (never more: the cut comes after temperature)."
               if truth == "fewer" else
               "the top tokens already hold more than 0.9 at T = 1, and a lower temperature "
               "only adds to their mass, so the same ones pass 0.9 (never more: the cut comes "
               "after temperature).")
        return report(True, f"{said}: {why}", "")
    if got.strip().lower() == "more":
        return report(False, "", "the cut is made on the distribution temperature has already "
                      "sharpened: at T = 0.6 the top tokens hold more of the mass, so the running "
                      "total passes 0.9 sooner. Count again (Sampler(...).keep, as in §3's "
                      "counting cell).")
    return report(False, "", "temperature is applied first, then the cut, so the same top_p "
                  "can keep a different number of tokens at another temperature (sometimes the "
                  "same, never more at a lower T). Which way does T = 0.6 move it?")
