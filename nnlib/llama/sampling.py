"""Choosing the next token from a row of logits: temperature, nucleus (``sample_top_p``), top-k,
min-p, and the log-probabilities ``generate`` reports. Pure functions of tensors, no model.

Every draw is made on the CPU in float32 (``choose_next`` moves the probabilities there first),
so one seed gives the same token on CPU, CUDA and MPS *for the same probabilities* (each device's
default dtype, bfloat16 / float16 / float32, gives slightly different ones, and so may change the
text). ``generator`` arguments default to ``None``: torch's default CPU generator, the one
``torch.manual_seed`` seeds. Meta's code and transformers call ``torch.multinomial`` on the model's
device instead, so they draw from that device's generator (also seeded by ``torch.manual_seed``):
the same seed gives them other draws on a GPU than on the CPU.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def temperature_probs(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T) over the last axis, in float32; at T = 0 the limit: all mass on the
    argmax. ``logits`` (..., V) -> probabilities (..., V)."""
    logits = logits.float()
    if temperature > 0:
        return torch.softmax(logits / temperature, dim=-1)
    return F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).float()


def nucleus(probs: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(probabilities sorted high to low, their token ids, which of them the nucleus keeps).

    A token is kept when the mass of the tokens ranked above it is at most ``p`` (Meta's
    ``probs_sum - probs_sort > p`` drops the others); the most likely token is therefore always
    kept. Ties are ordered by id (stable sort), so the cut is deterministic. Shapes: (B, V) each."""
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    return sorted_probs, order, mass_before <= p


def ranked_head(x: torch.Tensor, k: int) -> torch.Tensor:
    """The ids of the ``k`` largest values of one row ``x`` (V,), ranked high to low with ties by
    id, exactly as a full stable sort ranks them, plus every further id tying the k-th value.
    Sorting a whole vocabulary costs milliseconds; this sorts only the few ids at or above the
    k-th largest value (found with ``topk``), taken in id order, so the stable sort leaves tied
    ids in id order."""
    ids = (x >= torch.topk(x, min(k, x.shape[-1])).values[-1]).nonzero()[:, 0]
    return ids[torch.sort(x[ids], descending=True, stable=True).indices]


def nucleus_mask(probs: torch.Tensor, p: float, head: int = 64) -> torch.Tensor:
    """``nucleus``'s kept set as a mask in vocabulary order, for one row ``probs`` (V,) -> (V,).

    Sorting the whole vocabulary (49,152 tokens for SmolLM2) costs milliseconds, while the kept
    set is usually a few dozen tokens. So rank only the ``head`` most likely (``ranked_head``,
    ties included). When those already hold more than ``p`` (with a margin for float rounding),
    every token after them has more than ``p`` before it and is dropped, so the cut within them
    is the whole answer; else sort everything. Exactly ``nucleus``'s set on the CPU (where
    ``draw`` works), whose running sums add in order, so the head's sums are the full row's."""
    top = ranked_head(probs, head)
    top_probs = probs[top]
    if len(top) < probs.shape[-1] and float(top_probs.sum()) <= p + 1e-4:
        _, order, keep = nucleus(probs[None], p)
        top, kept = order[0], keep[0]
    else:
        kept = torch.cumsum(top_probs, dim=-1) - top_probs <= p  # as in nucleus
    return torch.zeros_like(probs, dtype=torch.bool).scatter(-1, top[kept], True)


def sample_top_p(probs: torch.Tensor, p: float, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
    """Nucleus sampling, Meta's rule: sort high to low, keep each token whose *preceding* mass
    (the cumulative sum minus itself) is at most ``p``, renormalise the kept ones, draw one.

    The kept set is therefore the shortest most-likely-first prefix whose mass exceeds ``p`` (all
    tokens if none does); it always holds the most likely token. ``probs`` (B, V), rows summing to
    1 -> token ids (B, 1). ``generator=None`` draws from torch's default generator."""
    sorted_probs, order, keep = nucleus(probs, p)
    kept = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
    kept = kept / kept.sum(dim=-1, keepdim=True)
    rank = torch.multinomial(kept, num_samples=1, generator=generator)  # index into sorted order
    return torch.gather(order, -1, rank)


def top_k_keep(probs: torch.Tensor, k: int) -> torch.Tensor:
    """Which tokens top-k sampling keeps: the ``k`` most likely of each row (ties by id).
    ``probs`` (B, V) -> bool mask (B, V) in vocabulary order."""
    check_top_k(k)
    order = torch.sort(probs, dim=-1, descending=True, stable=True).indices[..., :k]
    return torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, True)


def min_p_keep(probs: torch.Tensor, min_p: float) -> torch.Tensor:
    """Which tokens min-p sampling keeps: those at least ``min_p`` times as likely as the most
    likely one, so the cut follows the model's confidence. (B, V) -> bool mask (B, V)."""
    check_min_p(min_p)
    return probs >= min_p * probs.max(dim=-1, keepdim=True).values


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Entropy of each distribution in bits (0 for a sure token, log2 V for a uniform one).
    (..., V) -> (...)."""
    p = probs.double()
    return -(torch.where(p > 0, p * torch.log2(p), torch.zeros_like(p))).sum(dim=-1)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """log_softmax(logits)[target] for each position (temperature 1), 0 where the target is
    ``pad_id``: the same numbers as Meta's ``-F.cross_entropy(..., ignore_index=pad_id)``.
    ``logits`` (B, S, V), ``targets`` (B, S) -> float32 (B, S) on the CPU."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(targets == pad_id, torch.zeros_like(picked), picked).cpu()


def choose_next(logits: torch.Tensor, temperature: float, top_p: float,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The decision Meta's loop makes for each row of ``logits`` (B, V): argmax at temperature 0,
    else ``sample_top_p(softmax(logits / temperature), top_p)``. Returns (ids (B,), probs (B, V)
    after temperature), on the CPU in float32, where the draw is made whatever the model's
    device, so a seed gives the same tokens on CPU, CUDA and MPS for the same probabilities (a
    device's default dtype changes the probabilities, and so may change the tokens)."""
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


def candidates(logits: torch.Tensor, n: int, chosen: int | None = None) -> list[int]:
    """The ``n`` token ids a picture of the next position shows: ranked by raw logit (ties by id),
    so temperature never reorders them; a ``chosen`` id from further down replaces the last one.
    ``logits`` (V,)."""
    order: list[int] = ranked_head(logits.float(), n)[:n].tolist()
    if chosen is not None and chosen not in order:
        order = order[:-1] + [int(chosen)]
    return order


def rank_of(logits: torch.Tensor, token: int) -> int:
    """1 for the most likely token, 2 for the next ...: how many logits are higher, plus one."""
    return int((logits > logits[token]).sum()) + 1


# ---- one draw you can see: a sampler rule and the inverse CDF ---------------------------------

SAMPLERS = ("top-p", "top-k", "min-p", "greedy")


@dataclass(frozen=True)
class Sampler:
    """A rule for the next token: temperature, then which tokens stay in the running.

    ``kind`` is one of ``SAMPLERS``: "top-p" (Meta's nucleus, ``top_p``), "top-k" (the ``top_k``
    most likely), "min-p" (at least ``min_p`` times the top probability) or "greedy" (the argmax;
    temperature 0 is greedy whatever the kind). Only the value of the chosen kind is used."""

    kind: str = "top-p"
    temperature: float = 0.6
    top_p: float = 0.9
    top_k: int = 40
    min_p: float = 0.05

    def __post_init__(self) -> None:
        if self.kind not in SAMPLERS:
            raise ValueError(f"sampler kind must be one of {SAMPLERS}, got {self.kind!r}.")
        check_settings(self.temperature, self.top_p)
        check_top_k(self.top_k)
        check_min_p(self.min_p)

    @property
    def greedy(self) -> bool:
        return self.kind == "greedy" or self.temperature == 0

    def keep(self, probs: torch.Tensor) -> torch.Tensor:
        """Which tokens this rule keeps: probabilities after temperature (V,) -> bool mask (V,)."""
        if self.greedy:
            return torch.zeros_like(probs, dtype=torch.bool).scatter(-1, probs.argmax(-1, keepdim=True), True)
        if self.kind == "top-k":
            return top_k_keep(probs[None], min(self.top_k, probs.shape[-1]))[0]
        if self.kind == "min-p":
            return min_p_keep(probs[None], self.min_p)[0]
        return nucleus_mask(probs, self.top_p)


@dataclass(frozen=True)
class Draw:
    """One next-token decision by inverse CDF, with everything a picture of it needs.

    ``probs`` (V,) after temperature (one-hot at the argmax when greedy); ``kept`` the ids the
    rule keeps, most likely first (ties by id), and ``kept_probs`` their probabilities
    renormalised to sum to 1: the distribution the draw uses. Laid end to end they cover [0, 1);
    ``token`` is the one whose stretch holds ``u``."""

    token: int
    u: float
    probs: torch.Tensor
    kept: torch.Tensor
    kept_probs: torch.Tensor

    @property
    def n_kept(self) -> int:
        return int(self.kept.numel())

    @property
    def token_prob(self) -> float:
        """The chosen token's renormalised probability: its chance under this rule; 0 when the
        rule cuts it (a token a person forced, or a finished generation's last token looked at
        under other settings)."""
        hit = (self.kept == self.token).nonzero()
        return float(self.kept_probs[hit[0, 0]]) if len(hit) else 0.0


def inverse_cdf_index(weights: torch.Tensor, u: float) -> int:
    """The index i whose stretch [c_(i-1), c_i) of the cumulative sum c of ``weights`` (K,), a
    distribution, holds u in [0, 1): P(i) = weights[i] when u is uniform. Rounding that leaves
    c_K a hair under u picks the last one with weight."""
    cum = torch.cumsum(weights.double(), dim=0)
    i = int(torch.searchsorted(cum, torch.tensor([float(u)], dtype=torch.float64), right=True)[0])
    if i >= len(weights):  # u beyond a total that rounding left just under 1
        i = int(weights.nonzero()[-1, 0])
    return i


def draw(logits: torch.Tensor, sampler: Sampler, u: float) -> Draw:
    """Decide the next token from one position's raw ``logits`` (V,) under ``sampler`` with the
    uniform number ``u`` in [0, 1): temperature, the rule's cut, renormalise, then the inverse CDF
    over the kept tokens most likely first. The same u under another temperature or rule falls in
    another token's stretch, which is why one seed gives other tokens at other settings. Same
    distribution as ``choose_next``'s ``torch.multinomial`` (an exponential race over all V
    tokens, no single u), but not the same token for the same seed."""
    if not 0 <= u < 1:
        raise ValueError(f"u must be in [0, 1), got {u!r}.")
    logits = logits.float().cpu()
    probs = temperature_probs(logits, 0.0 if sampler.greedy else sampler.temperature)
    keep = sampler.keep(probs)
    ids = keep.nonzero()[:, 0]
    # most likely first, ties by id (ids ascend already, and the sort is stable)
    kept = ids[torch.sort(probs[ids], descending=True, stable=True).indices]
    kept_probs = probs[kept] / probs[kept].sum()
    token = int(kept[inverse_cdf_index(kept_probs, u)])
    return Draw(token=token, u=float(u), probs=probs, kept=kept, kept_probs=kept_probs)


def check_settings(temperature: float, top_p: float) -> None:
    """A clear ValueError for a temperature or top_p that the sampler cannot use."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
            temperature != temperature or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0 (0 means greedy), got {temperature!r}.")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not (0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1] (the probability mass to keep), got {top_p!r}.")


__all__: Sequence[str] = [
    "temperature_probs", "nucleus", "ranked_head", "nucleus_mask", "sample_top_p", "top_k_keep", "min_p_keep",
    "entropy_bits", "token_logprobs", "choose_next", "next_token_distribution", "candidates", "rank_of",
    "check_settings", "SAMPLERS", "Sampler", "Draw", "inverse_cdf_index", "draw",
]


def check_top_k(k: int) -> None:
    """A ValueError unless ``k`` is an int >= 1: how many tokens top-k sampling keeps."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"top_k must be a whole number at least 1 (how many of the most likely "
                         f"tokens to keep; 1 is greedy), got {k!r}.")


def check_min_p(min_p: float) -> None:
    """A ValueError unless ``min_p`` is in [0, 1]: a fraction of the top probability."""
    if not 0 <= min_p <= 1:
        raise ValueError(f"min_p must be in [0, 1] (a fraction of the top probability), got {min_p!r}.")
