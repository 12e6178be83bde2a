"""nnlib.llama.sampling: Meta's nucleus rule against a brute-force reference in exact fractions and
against Meta's own code, top-k, min-p, entropy and token logprobs against torch's independent
implementations, and the CPU draw that makes one seed give the same tokens on every device."""
from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from nnlib.llama.sampling import (
    candidates,
    choose_next,
    entropy_bits,
    min_p_keep,
    nucleus,
    nucleus_mask,
    sample_top_p,
    temperature_probs,
    token_logprobs,
    top_k_keep,
)

# ---- sample_top_p: Meta's nucleus rule -------------------------------------------------------


@st.composite
def dyadic_distributions(draw):
    """Probabilities that are multiples of 1/256 and a p that is one too: float32 sums are then
    exact, so the cut can be compared with exact arithmetic, equality cases included."""
    n = draw(st.integers(1, 12))
    cuts = sorted(draw(st.lists(st.integers(0, 256), min_size=n - 1, max_size=n - 1)))
    counts = [b - a for a, b in zip([0] + cuts, cuts + [256])]
    return counts, draw(st.integers(1, 256))


def reference_nucleus(counts: list[int], p_num: int) -> list[int]:
    """Brute force, in exact fractions: most likely first (ties by id), keep a token while the
    mass before it is at most p."""
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    p, kept, before = Fraction(p_num, 256), [], Fraction(0)
    for i in order:
        if before <= p:
            kept.append(i)
        before += Fraction(counts[i], 256)
    return kept


@settings(max_examples=200, deadline=None)
@given(dyadic_distributions())
def test_nucleus_matches_a_brute_force_reference(dist):
    counts, p_num = dist
    probs = torch.tensor([c / 256 for c in counts])
    sorted_probs, order, keep = nucleus(probs[None], p_num / 256)
    kept = order[0][keep[0]].tolist()
    assert kept == reference_nucleus(counts, p_num)
    assert kept, "the nucleus is never empty"
    assert kept[0] == max(range(len(counts)), key=lambda i: (counts[i], -i))
    # the shortest most-likely-first prefix whose mass exceeds p (or everything)
    mass = [Fraction(counts[i], 256) for i in kept]
    p = Fraction(p_num, 256)
    assert sum(mass[:-1]) <= p
    assert sum(mass) > p or len(kept) == len(counts)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(-6, 6), min_size=1, max_size=300), scale=st.floats(0.05, 3.0),
       p=st.floats(1e-6, 1.0), head=st.integers(1, 20))
def test_nucleus_mask_equals_the_full_sorts_cut(values, scale, p, head):
    """Ranking only the head (logits full of ties, peaked or flat, any p): the same kept set
    as nucleus's sort of the whole row, whether or not it had to fall back to that sort."""
    probs = torch.softmax(torch.tensor(values, dtype=torch.float32) * scale, dim=-1)
    _, order, keep = nucleus(probs[None], p)
    want = torch.zeros(len(values), dtype=torch.bool)
    want[order[0][keep[0]]] = True
    assert torch.equal(nucleus_mask(probs, p, head=head), want)


@settings(max_examples=100, deadline=None)
@given(logits=st.lists(st.floats(-8, 8), min_size=1, max_size=40),
       p=st.floats(1e-6, 1.0), seed=st.integers(0, 2**31 - 1))
def test_sample_top_p_never_leaves_the_nucleus(logits, p, seed):
    probs = torch.softmax(torch.tensor(logits), dim=-1)[None]
    _, order, keep = nucleus(probs, p)
    kept = set(order[0][keep[0]].tolist())
    assert int(probs.argmax()) in kept
    g = torch.Generator().manual_seed(seed)
    token = sample_top_p(probs, p, generator=g)
    assert token.shape == (1, 1) and int(token) in kept


@settings(max_examples=50, deadline=None)
@given(logits=st.lists(st.floats(-8, 8), min_size=2, max_size=40, unique=True),
       seed=st.integers(0, 2**31 - 1))
def test_tiny_p_gives_the_argmax(logits, seed):
    probs = torch.softmax(torch.tensor(logits), dim=-1)[None]
    g = torch.Generator().manual_seed(seed)
    assert int(sample_top_p(probs, 1e-9, generator=g)) == int(probs.argmax())


def meta_sample_top_p(probs, p, generator):
    """Meta's algorithm step by step, as the learner reads it (the test's own copy)."""
    probs_sort, probs_idx = torch.sort(probs, dim=-1, descending=True)
    probs_sum = torch.cumsum(probs_sort, dim=-1)
    mask = probs_sum - probs_sort > p
    probs_sort[mask] = 0.0
    probs_sort.div_(probs_sort.sum(dim=-1, keepdim=True))
    next_token = torch.multinomial(probs_sort, num_samples=1, generator=generator)
    return torch.gather(probs_idx, -1, next_token)


def test_sample_top_p_draws_exactly_what_metas_code_draws():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(8, 300, generator=g), dim=-1)
    for p in (0.05, 0.5, 0.9, 1.0):
        ours = sample_top_p(probs, p, generator=torch.Generator().manual_seed(7))
        meta = meta_sample_top_p(probs.clone(), p, generator=torch.Generator().manual_seed(7))
        assert torch.equal(ours, meta)


def test_sample_frequencies_follow_the_renormalised_nucleus():
    probs = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    p = 0.7  # mass before: 0, .4, .65, .8 -> keep the first three
    n = 20000
    g = torch.Generator().manual_seed(0)
    draws = sample_top_p(probs.expand(n, -1), p, generator=g).reshape(-1)
    freq = torch.bincount(draws, minlength=6).float() / n
    want = torch.tensor([0.4, 0.25, 0.15, 0, 0, 0]) / 0.8
    assert freq[3:].sum() == 0
    sigma = (want * (1 - want) / n).sqrt()
    assert ((freq - want).abs() <= 5 * sigma + 1e-9).all(), (freq, want)


def test_temperature_probs_worked_by_hand():
    """softmax(z / T) for z = (2, 1, 0), worked out by hand (e = 2.718282):
    T = 1:   (e^2, e^1, e^0) = (7.389056, 2.718282, 1),   sum 11.107338
             -> (0.665241, 0.244728, 0.090031);
    T = 0.5: z / T = (4, 2, 0): (54.598150, 7.389056, 1), sum 62.987206
             -> (0.866813, 0.117310, 0.015876)  (sharper);
    T = 2:   z / T = (1, 0.5, 0): (2.718282, 1.648721, 1), sum 5.367003
             -> (0.506480, 0.307196, 0.186324)  (flatter)."""
    logits = torch.tensor([2.0, 1.0, 0.0])
    for T, by_hand in [(1.0, [0.665241, 0.244728, 0.090031]), (0.5, [0.866813, 0.117310, 0.015876]),
                       (2.0, [0.506480, 0.307196, 0.186324])]:
        got = temperature_probs(logits, T)
        assert got.dtype == torch.float32 and got.shape == (3,)
        torch.testing.assert_close(got, torch.tensor(by_hand), atol=2e-6, rtol=0)
    assert temperature_probs(logits, 0).tolist() == [1.0, 0.0, 0.0]  # the T -> 0 limit
    # ties at T = 0: all mass on the first of the tied maxima (argmax), one row per batch row
    assert temperature_probs(torch.tensor([[0.0, 3.0, 3.0]]), 0).tolist() == [[0.0, 1.0, 0.0]]


def test_top_k_keeps_the_k_largest():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(4, 50, generator=g), -1)
    for k in (1, 5, 50):
        keep = top_k_keep(probs, k)
        assert keep.sum(-1).tolist() == [k] * 4
        want = torch.topk(probs, k).indices
        assert all(set(torch.nonzero(keep[r]).flatten().tolist()) == set(want[r].tolist())
                   for r in range(4))
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match=r"top_k must be a whole number at least 1 \(how many"):
            top_k_keep(probs, bad)


def test_min_p_keeps_tokens_near_the_top():
    probs = torch.tensor([[0.5, 0.3, 0.1, 0.06, 0.04]])
    assert min_p_keep(probs, 0.2).tolist() == [[True, True, True, False, False]]  # >= 0.1
    assert min_p_keep(probs, 0.0).all() and min_p_keep(probs, 1.0).sum() == 1
    with pytest.raises(ValueError, match="min_p"):
        min_p_keep(probs, 1.5)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=1, max_size=30))
def test_entropy_bits_matches_torch_distributions(logits):
    probs = torch.softmax(torch.tensor(logits, dtype=torch.float64), -1)
    want = torch.distributions.Categorical(probs=probs).entropy() / torch.log(torch.tensor(2.0,
                                                                                            dtype=torch.float64))
    assert float(entropy_bits(probs)) == pytest.approx(float(want), abs=1e-9)
    assert float(entropy_bits(F.one_hot(torch.tensor(0), 5).double())) == 0.0


def test_token_logprobs_are_metas_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 6, 40, generator=g)
    targets = torch.randint(0, 40, (2, 6), generator=g)
    targets[1, 4:] = -1  # pad_id: ignored
    want = -F.cross_entropy(logits.transpose(1, 2), targets, reduction="none", ignore_index=-1)
    torch.testing.assert_close(token_logprobs(logits, targets, pad_id=-1), want)


def test_choose_next_draws_on_the_cpu_from_the_default_generator():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]] * 3)
    torch.manual_seed(5)
    a, probs = choose_next(logits, 1.0, 0.9)
    torch.manual_seed(5)
    b, _ = choose_next(logits, 1.0, 0.9)
    assert torch.equal(a, b) and a.device.type == "cpu" and probs.dtype == torch.float32
    greedy, _ = choose_next(logits, 0.0, 0.9)
    assert greedy.tolist() == [0, 0, 0]


def test_candidates_rank_by_logit_and_show_a_chosen_tail_token():
    logits = torch.tensor([0.1, 3.0, 2.0, 3.0, -5.0])
    assert candidates(logits, 3) == [1, 3, 2]  # ties by id
    assert candidates(logits, 3, chosen=4) == [1, 3, 4]
    assert candidates(logits, 3, chosen=2) == [1, 3, 2]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=60), st.integers(1, 15))
def test_candidates_equal_a_full_stable_sort_even_with_ties(values, n):
    """``candidates`` avoids sorting the vocabulary; a full stable sort (ties by id) is the
    reference, on small integer logits full of ties."""
    logits = torch.tensor(values, dtype=torch.float32)
    want = torch.sort(logits, descending=True, stable=True).indices[:n].tolist()
    assert candidates(logits, n) == want
