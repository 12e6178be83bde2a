"""Do two runs of the same model agree? One rule for logits, one for logprobs, one for greedy paths.

The series runs one model several ways: nnlib against transformers on the same GGUF file
(notebooks 03b, ``tests/test_llama_gguf.py``), on a GPU in half precision against the CPU in
float32 (``scripts/device_check.py``), with the KV cache against without it (notebook 04). The
runs never round in the same places, so their numbers differ; this module decides whether a
difference is rounding or a bug. Each rule is written in the *rounding unit* of the dtype the
test run computed in, ``rounding_eps(dtype)``: the machine epsilon, but never below 2^-10 (a
"float32" run on a GPU multiplies in TF32, which keeps fp16's 10 fraction bits, if the user
turns TF32 on: torch leaves it off, and neither nnlib nor transformers' loading and generation
turn it on).

**Logits: the largest per-position KL divergence** (``compare_logits``). At every position of a
sequence, ``KL(softmax(reference) || softmax(test))`` in nats; the runs agree when the largest is
at most ``KL_LIMIT * rounding_eps(dtype)**2``. Why this statistic: a logit offset shared by the
whole vocabulary changes nothing (softmax ignores it), the tokens the model finds likely weigh
most, and rounding (small, independent errors in every logit) moves the KL by the square of its
size, while a bug moves the distributions themselves. Why every position of a few dozen tokens:
a bug in positions (rotary tables, the q/k row order) gives a KL of zero at position 0 and a
non-zero one at every later position, by an amount that varies with the position; at one
position it can hide.

Measured on 2026-12-02 on a CPU (torch 2.13, transformers 5.24, CPU float32/bfloat16/float16
kernels; ``compare_logits``, every position): the reference is transformers' float32 model of
SmolLM2-135M-Instruct's GGUF file, the test nnlib's model of the same file (transformers, not
nnlib's own float32 run: an independent implementation; nnlib's float32 run matches it within
6e-5 logits). Prompts: the seed's question (11 tokens), a paragraph about the blue whale (53
tokens), a ChatML question (46 tokens). Rounding: the largest over the three prompts; a
planted bug: the smallest over the two long ones (on the 11-token prompt the layer-0 q/k bug
reaches only 0.047 in bfloat16, 1.5x the limit: compare a few dozen tokens).

==========================================  ===========  ===========  ===========
largest per-position KL (nats)               float32      bfloat16     float16
==========================================  ===========  ===========  ===========
limit: 500 * rounding_eps(dtype) ** 2        4.8e-4       3.05e-2      4.8e-4
SmolLM2 (30 layers), nnlib as it is          8.2e-11      1.02e-2      1.41e-4
layer 15's FFN output (w2) zeroed            0.72         0.67         0.73
``rope_theta`` 10000 (the model's: 1e5)      0.20         0.25         0.20
layer 0's wq/wk rows left in HF's order      0.100        0.113        0.102
tiny model (6 layers) vs its float32 run     0            4.1e-4       7.0e-6
==========================================  ===========  ===========  ===========

Rounding stays 3.0x (bfloat16), 3.4x (float16) and far (float32) below the limit, room for
other kernels (cuBLAS, Metal); every planted bug is 3.7x (bfloat16) to 200x above it. bfloat16
cannot do better: its rounding moves the distributions by a tenth of what the subtlest bug
does. The limit is per dtype, sized for the 30-layer model: on the 6-layer tiny model (35
tokens) the layer-0 q/k bug reaches only 0.019 in bfloat16 (0.019 in float16 and float32 too,
caught there) and passes; its own rounding is 75x lower still.

The old rule, max |dlogit| within 32 eps of the largest logit, let bugs through in bfloat16:
as notebook 03b applied it to the seed's prompt (limit 7.4 logits) all three (max |dlogit| 4.0,
2.8 and 1.8), and at the last position of the 53-token prompt (limit 4.7) the FFN and q/k bugs
(3.5 and 1.5).

**Logprobs** (``logprob_tolerance``): notebook 04 compares the log-probability ``generate``
reports for each chosen token with a fresh pass's, one number per step, not two distributions,
so no KL can be formed. A logprob moves by the rounding itself (first order, not squared): the
rule is ``LOGPROB_EPS * rounding_eps(dtype)``. Measured (cached against uncached, 16 greedy
tokens after each of three prompts, CPU, same date): SmolLM2 2.0e-5 in float32, 9.8e-3 (10 eps)
in float16, 0.139 (18 eps) in bfloat16; the tiny model 3.2e-6, 7.0e-3 and 5.3e-2. 48 eps is
2.7x the worst of these, and a third of the smallest mistake it must catch.

**Greedy paths** (``compare_greedy``): the same tokens, or they part at a step where the
reference's logit for its own choice and for the test's choice were closer than rounding can
tell apart: ``tie_margin(dtype, scale) = TIE_EPS * rounding_eps(dtype) * scale``, ``scale`` the
largest |logit| of that step. Each logit of the top five moved by at most 5 eps x scale in the
measurement above (8.3 over the whole vocabulary), so two of them can swap order when their gap
is under about 10; 16 leaves room. Stopping: a path that ends at a stop token (EOS, ChatML's
``<|im_end|>``) chose it at that step, and one that goes on there chose something else: the
paths part there, under the same tie rule (the stop token's side scored by the best of the stop
tokens). nnlib's ``generate`` drops the stop token it ends on and transformers keeps it; both
read the same. Without ``stop_tokens`` a shorter path is taken as cut by its token budget, and
only the common length is compared.
"""
from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import torch

#: The coarsest rounding a run in a dtype may see: float32 matmuls on a GPU run in TF32 if the
#: user turns it on (torch leaves it off; nnlib never turns it on).
TF32_EPS = 2.0 ** -10
#: The largest per-position KL (nats) allowed, in units of rounding_eps(dtype) ** 2.
KL_LIMIT = 500.0
#: The largest |logprob difference| allowed, in units of rounding_eps(dtype).
LOGPROB_EPS = 48.0
#: The gap (in units of rounding_eps(dtype) * the step's largest |logit|) under which two
#: logits may swap order: each may be off by up to half of it.
TIE_EPS = 16.0


def rounding_eps(dtype: torch.dtype) -> float:
    """The rounding unit of a run computed in ``dtype``: ``torch.finfo(dtype).eps`` (2^-7 for
    bfloat16, 2^-10 for float16), but never finer than TF32's 2^-10, which a float32 run on a
    GPU uses for its matrix products once the user turns TF32 on (off by default)."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype such as torch.bfloat16; "
                         f"got {dtype!r}.")
    return max(torch.finfo(dtype).eps, TF32_EPS)


def kl_limit(dtype: torch.dtype) -> float:
    """The largest per-position KL (nats) between a reference's and a ``dtype`` run's
    distributions that rounding explains: ``KL_LIMIT * rounding_eps(dtype) ** 2`` (0.0305 in
    bfloat16, 4.8e-4 in float16 and float32). See the module docstring for the measurements."""
    return KL_LIMIT * rounding_eps(dtype) ** 2


def logprob_tolerance(dtype: torch.dtype) -> float:
    """The largest |difference| between two correct computations of the same token's logprob in
    ``dtype``: ``LOGPROB_EPS * rounding_eps(dtype)``, i.e. 48 × max(eps, 2^-10) (0.375 in
    bfloat16; 0.046875 in float16 and in float32 alike, because the 2^-10 floor, TF32's unit,
    covers a GPU's float32 matrix products should the user turn TF32 on). The mistakes it must
    catch (a shift by one position, a stale cache, a raw logit taken for a logprob) move logprobs
    by 1 or more."""
    return LOGPROB_EPS * rounding_eps(dtype)


def tie_margin(dtype: torch.dtype, scale: float) -> float:
    """The logit gap under which ``dtype``'s rounding may swap the order of two logits of a step
    whose largest |logit| is ``scale``: ``TIE_EPS * rounding_eps(dtype) * max(scale, 1)``."""
    return TIE_EPS * rounding_eps(dtype) * max(float(scale), 1.0)


def _cpu_float64(t: torch.Tensor) -> torch.Tensor:
    """``t`` as float64 on the CPU: moved to the CPU first, in its own dtype (MPS has none wider
    than float32), and only there made float64. The order matters: MPS has no float64 ("Cannot
    convert a MPS Tensor to float64 dtype"), so ``.double()`` before ``.cpu()`` fails on a Mac."""
    return t.detach().cpu().double()


def kl_per_position(reference: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
    """``KL(softmax(reference) || softmax(test))`` in nats at each position: logits (..., V)
    each, the same shape; returns (...). Computed in float64 on the CPU; non-finite test logits
    give ``inf`` (always a failure)."""
    if reference.shape != test.shape:
        raise ValueError(f"Logit shapes differ: reference {tuple(reference.shape)}, test "
                         f"{tuple(test.shape)}; compare the same positions of the same tokens.")
    if reference.dim() == 0 or reference.shape[-1] < 2:
        raise ValueError(f"Logits need a vocabulary axis last, (..., V) with V >= 2; got shape "
                         f"{tuple(reference.shape)}.")
    ref = torch.log_softmax(_cpu_float64(reference), dim=-1)
    tst = _cpu_float64(test)
    finite = torch.isfinite(tst).all(dim=-1)
    tst = torch.log_softmax(torch.where(torch.isfinite(tst), tst, torch.zeros_like(tst)), dim=-1)
    kl = (ref.exp() * (ref - tst)).sum(dim=-1).clamp_min(0.0)
    return torch.where(finite, kl, torch.full_like(kl, math.inf))


@dataclass(frozen=True)
class LogitComparison:
    """``max_kl`` = the largest per-position KL (nats), at position ``at`` (of ``n_positions``
    flattened positions); ``limit`` = ``kl_limit(dtype)``; ``max_abs_diff`` = max |test -
    reference| over all logits, for reading only (the verdict does not use it)."""

    max_kl: float
    at: int
    n_positions: int
    limit: float
    max_abs_diff: float

    @property
    def ok(self) -> bool:
        return self.max_kl <= self.limit


def compare_logits(reference: torch.Tensor, test: torch.Tensor, dtype: torch.dtype) -> LogitComparison:
    """Do the logits of two runs of the same model agree? ``reference`` and ``test`` are (..., V)
    logits of the same tokens, every position you have (a few dozen tokens: see the module
    docstring); ``dtype`` is what the test run computed in. Agree: the largest per-position KL
    is within ``kl_limit(dtype)``."""
    kl = kl_per_position(reference, test).reshape(-1)
    at = int(kl.argmax())
    diff = (test.detach().cpu().float() - reference.detach().cpu().float()).abs()
    max_abs = float(diff.max()) if bool(torch.isfinite(diff).all()) else math.inf
    return LogitComparison(float(kl[at]), at, kl.numel(), kl_limit(dtype), max_abs)


@dataclass(frozen=True)
class GreedyComparison:
    """``n_same`` leading tokens agree out of ``n`` compared; at the first difference (``at``,
    None when there is none) the reference scored its own choice ``margin`` logits above the
    test's (a path's end, when it stopped there, scored as its best stop token), accepted up to
    ``allowed`` (``tie_margin`` of that step)."""

    n_same: int
    n: int
    at: int | None = None
    margin: float | None = None
    allowed: float | None = None

    @property
    def ok(self) -> bool:
        return self.at is None or (self.margin is not None and self.margin <= self.allowed)


def _cut_after_stop(tokens: Sequence[int], stop_tokens: Collection[int]) -> list[int]:
    out = []
    for t in tokens:
        out.append(int(t))
        if int(t) in stop_tokens:
            break
    return out


def _score(row: torch.Tensor, token: int | None, stops: set[int]) -> float:
    """The reference's logit for ``token`` in ``row`` (V,); a path's end (None, its stop token
    dropped) counts as the best-scored stop token."""
    return float(row[sorted(stops)].max()) if token is None else float(row[token])


def compare_greedy(reference_tokens: Sequence[int], test_tokens: Sequence[int],
                   reference_logits: torch.Tensor | Sequence[torch.Tensor], dtype: torch.dtype,
                   stop_tokens: Collection[int] = ()) -> GreedyComparison:
    """Do two greedy paths after the same prompt agree, up to a tie? The same tokens, or they
    part at a step where the reference's logits for its choice and the test's were within
    ``tie_margin(dtype, the step's largest |logit|)``: a tie the test's dtype cannot break.

    ``reference_logits``: the reference's logits at each step of its own path, (n, V) or a list
    of (V,) (transformers' ``output_scores``), at least one row per step compared (including the
    step where a path stopped, if the paths part there). ``stop_tokens``: the ids that end a
    path (``tokenizer.stop_tokens``); a path ends at its first stop token, or without it where it
    was dropped (nnlib's ``generate`` does). Paths that stop at the same step agree; one that
    stops where the other goes on parts from it there (see the module docstring). Without
    ``stop_tokens``, only the common length is compared. After the first difference the prefixes
    differ and nothing more is comparable."""
    stops = {int(s) for s in stop_tokens}
    ref, tst = _cut_after_stop(reference_tokens, stops), _cut_after_stop(test_tokens, stops)
    n = max(len(ref), len(tst)) if stops else min(len(ref), len(tst))
    for i in range(n):
        a = ref[i] if i < len(ref) else None  # None: this path ended here (stopped)
        b = tst[i] if i < len(tst) else None
        if a == b or (a is None and b in stops) or (b is None and a in stops):
            if a in stops or b in stops:     # both stopped at this step
                return GreedyComparison(i + 1, i + 1)
            continue
        if i >= len(reference_logits):
            raise ValueError(f"The paths part at step {i}, but reference_logits has only "
                             f"{len(reference_logits)} rows; pass the reference's logits for every "
                             "step it took, including the one where it stopped.")
        row = reference_logits[i].detach().cpu().float()
        if row.dim() != 1:
            raise ValueError(f"reference_logits row {i} has shape {tuple(row.shape)}; pass (n, V) "
                             "logits, one row per step, or a list of (V,) rows.")
        margin = _score(row, a, stops) - _score(row, b, stops)
        return GreedyComparison(i, n, at=i, margin=margin,
                                allowed=tie_margin(dtype, float(row.abs().max())))
    return GreedyComparison(n, n)
