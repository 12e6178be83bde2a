"""nnlib.llama.generation: Meta's generate() semantics, sample_top_p, the step-through API, and the
shipped tiny model's pinned greedy text. Every number is checked against a fresh forward pass."""
from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _llama_fixtures import one_torch_thread  # noqa: F401  (autouse fixture)
from _llama_fixtures import TINY_DIR, random_meta_dir
from nnlib.llama import (GenerationStep, Llama, generate_seed_order, load_tiny, nucleus, sample_top_p,
                         temperature_probs)



@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """A small random Llama with the real 2048-piece tokenizer; logits spread out (scale 5) so
    greedy choices are far from ties."""
    path = random_meta_dir(tmp_path_factory.mktemp("gen") / "m", logit_scale=5.0)
    return Llama.build(path, max_seq_len=48, max_batch_size=4, device="cpu", seed=1)


@pytest.fixture(scope="module")
def prompts(llama):
    enc = llama.tokenizer.encode
    return [enc("ROMEO:\n", True, False), enc("But soft, what light through yonder", True, False),
            enc("O", True, False)]


def full_logprobs(llama, ids: list[int]) -> torch.Tensor:
    """log_softmax of a fresh full pass (no cache): row j scores token j + 1."""
    with torch.no_grad():
        logits = llama.model.forward(torch.tensor([ids]), 0, use_cache=False)[0]
    return torch.log_softmax(logits.float(), dim=-1)


class StopAt:
    """The model's tokenizer with a chosen id playing EOS (random models rarely say EOS)."""

    def __init__(self, tokenizer, eos_id: int):
        self._tok, self.eos_id, self.stop_tokens = tokenizer, eos_id, [eos_id]

    def __getattr__(self, name):
        return getattr(self._tok, name)


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


def test_temperature_probs():
    logits = torch.tensor([2.0, 1.0, 0.0])
    torch.testing.assert_close(temperature_probs(logits, 1.0), torch.softmax(logits, -1))
    torch.testing.assert_close(temperature_probs(logits, 0.5), torch.softmax(logits / 0.5, -1))
    assert temperature_probs(logits, 0).tolist() == [1.0, 0.0, 0.0]  # the T -> 0 limit


# ---- generate: Meta's semantics --------------------------------------------------------------


def test_batched_greedy_equals_one_by_one(llama, prompts):
    batch, _ = llama.generate(prompts, max_gen_len=12, temperature=0)
    one = [llama.generate([p], max_gen_len=12, temperature=0)[0][0] for p in prompts]
    assert batch == one
    assert all(len(t) == 12 for t in batch)  # no EOS from this model: max_gen_len each


def test_kv_cache_and_no_cache_generate_the_same(llama, prompts):
    with_cache, lp1 = llama.generate(prompts, 10, temperature=0, logprobs=True)
    without, lp2 = llama.generate(prompts, 10, temperature=0, logprobs=True, use_cache=False)
    assert with_cache == without
    torch.testing.assert_close(torch.tensor(lp1), torch.tensor(lp2), atol=1e-4, rtol=0)


def test_logprobs_are_log_softmax_of_a_fresh_full_pass(llama, prompts):
    tokens, logprobs = llama.generate(prompts, 8, temperature=0.8, top_p=0.9, logprobs=True)
    for prompt, toks, lps in zip(prompts, tokens, logprobs):
        assert len(lps) == len(toks)
        full = full_logprobs(llama, prompt + toks)
        want = [float(full[len(prompt) + j - 1, t]) for j, t in enumerate(toks)]
        torch.testing.assert_close(torch.tensor(lps), torch.tensor(want), atol=1e-4, rtol=0)
        assert all(x < 0 for x in lps)  # not the seed's zeros


def test_echo_returns_prompt_and_completion_with_a_logprob_each(llama, prompts):
    plain, _ = llama.generate(prompts, 6, temperature=0)
    echoed, logprobs = llama.generate(prompts, 6, temperature=0, logprobs=True, echo=True)
    for prompt, gen, toks, lps in zip(prompts, plain, echoed, logprobs):
        assert toks == prompt + gen and len(lps) == len(toks)
        assert lps[0] == 0.0  # nothing predicts the first token (BOS)
        full = full_logprobs(llama, toks)
        want = [0.0] + [float(full[j - 1, t]) for j, t in enumerate(toks) if j > 0]
        torch.testing.assert_close(torch.tensor(lps), torch.tensor(want), atol=1e-4, rtol=0)


def test_echo_with_nothing_to_generate_scores_the_prompt(llama, prompts):
    toks, lps = llama.generate([prompts[1]], 0, logprobs=True, echo=True)
    full = full_logprobs(llama, prompts[1])
    want = [0.0] + [float(full[j - 1, t]) for j, t in enumerate(prompts[1]) if j > 0]
    assert toks == [prompts[1]]
    torch.testing.assert_close(torch.tensor(lps[0]), torch.tensor(want), atol=1e-4, rtol=0)
    assert llama.generate([prompts[1]], 0) == ([[]], None)


def test_the_seeds_logprob_order_gives_zeros(llama, prompts):
    right, right_lp = llama.generate(prompts, 5, temperature=0, logprobs=True, echo=True)
    seed_toks, seed_lp = generate_seed_order(llama, prompts, 5, temperature=0, echo=True)
    assert seed_toks == right
    for prompt, good, bad in zip(prompts, right_lp, seed_lp):
        assert bad[len(prompt):] == [0.0] * 5                  # every generated token: 0
        assert bad[:len(prompt)] == pytest.approx(good[:len(prompt)], abs=1e-5)  # prompt: right


def test_generation_stops_per_row_at_eos_which_is_not_returned(llama, prompts):
    greedy, _ = llama.generate(prompts, 12, temperature=0)
    eos = greedy[0][3]
    assert eos not in greedy[0][:3]
    stopping = Llama(llama.model, StopAt(llama.tokenizer, eos), llama.device)
    got, lps = stopping.generate(prompts, 12, temperature=0, logprobs=True)
    for row, full in zip(got, greedy):
        want = full[:full.index(eos)] if eos in full else full  # the other rows go on
        assert row == want
    assert got[0] == greedy[0][:3]
    assert [len(x) for x in lps] == [len(x) for x in got]


def test_generation_ends_early_when_every_row_has_said_eos(llama, prompts, monkeypatch):
    greedy, _ = llama.generate(prompts[:1], 12, temperature=0)
    stopping = Llama(llama.model, StopAt(llama.tokenizer, greedy[0][2]), llama.device)
    calls = []
    real = llama.model.forward
    monkeypatch.setattr(llama.model, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert stopping.generate(prompts[:1], 12, temperature=0)[0] == [greedy[0][:2]]
    assert len(calls) == 3  # prefill + two single-token steps, not 12


def test_a_prompt_may_contain_eos(llama, prompts):
    eos = llama.tokenizer.eos_id
    prompt = prompts[0] + [eos] + prompts[2][1:]
    toks, _ = llama.generate([prompt], 4, temperature=0)
    assert len(toks[0]) == 4  # the prompt's EOS does not end generation
    echoed, _ = llama.generate([prompt], 4, temperature=0, echo=True)
    assert echoed[0] == prompt + toks[0]


def test_sampling_is_reproducible_with_a_seed(llama, prompts, tmp_path):
    llama.set_seed(3)
    a, _ = llama.generate(prompts, 10, temperature=1.5, top_p=1.0)
    llama.set_seed(3)
    b, _ = llama.generate(prompts, 10, temperature=1.5, top_p=1.0)
    llama.set_seed(4)
    c, _ = llama.generate(prompts, 10, temperature=1.5, top_p=1.0)
    assert a == b and a != c


def test_text_completion_returns_metas_dicts(llama):
    out = llama.text_completion(["ROMEO:", "JULIET:"], temperature=0, max_gen_len=6)
    assert [set(d) for d in out] == [{"generation"}] * 2
    tokens, _ = llama.generate([llama.tokenizer.encode("ROMEO:", True, False)], 6, temperature=0)
    assert out[0]["generation"] == llama.tokenizer.decode(tokens[0])
    with_lp = llama.text_completion(["ROMEO:"], temperature=0, max_gen_len=6, logprobs=True)[0]
    assert set(with_lp) == {"generation", "tokens", "logprobs"}
    assert len(with_lp["tokens"]) == len(with_lp["logprobs"]) == 6
    assert with_lp["tokens"] == [llama.tokenizer.decode([t]) for t in tokens[0]]
    with pytest.raises(ValueError, match="list of strings"):
        llama.text_completion("ROMEO:")


@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=-0.1), "temperature must be a number >= 0"),
    (dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
    (dict(top_p=1.5), r"top_p must be in \(0, 1\]"),
    (dict(max_gen_len=-1), "max_gen_len must be an int >= 0"),
    (dict(prompt_tokens=[]), "give at least one prompt"),
    (dict(prompt_tokens=[[1, 5], []]), "Prompt 1 is empty"),
    (dict(prompt_tokens=[list(range(3, 52))]), "longer than max_seq_len=48"),
    (dict(prompt_tokens=[[1]] * 5), "5 prompts but max_batch_size=4"),
    (dict(prompt_tokens=[[1, 99999]]), "outside 0..2047"),
    (dict(prompt_tokens="ROMEO:"), "list of prompts"),
])
def test_bad_requests_say_what_and_why(llama, kwargs, message):
    call = {"prompt_tokens": [[1, 50, 60]], "max_gen_len": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        llama.generate(**call)


# ---- the step-through ------------------------------------------------------------------------


def test_steps_at_temperature_zero_are_greedy_generate(llama, prompts):
    steps = list(llama.steps(prompts[1], 10, temperature=0))
    greedy, _ = llama.generate([prompts[1]], 10, temperature=0)
    assert [s.token for s in steps] == greedy[0]
    assert all(isinstance(s, GenerationStep) for s in steps)
    assert [s.position for s in steps] == list(range(len(prompts[1]), len(prompts[1]) + 10))


def test_steps_draw_what_generate_draws_with_the_same_seed(llama, prompts):
    llama.set_seed(11)
    sampled, _ = llama.generate([prompts[0]], 10, temperature=0.9, top_p=0.8)
    steps = list(llama.steps(prompts[0], 10, temperature=0.9, top_p=0.8, seed=11))
    assert [s.token for s in steps] == sampled[0]
    # text pieces add up to the decoded completion
    assert "".join(s.piece for s in steps) == llama.tokenizer.decode(sampled[0])


def test_each_step_agrees_with_a_fresh_forward_pass(llama, prompts):
    T, p = 0.7, 0.6
    ids = list(prompts[1])
    for s in llama.steps(prompts[1], 6, temperature=T, top_p=p, seed=5, top_k=5):
        with torch.no_grad():
            logits = llama.model.forward(torch.tensor([ids]), 0, use_cache=False)[0, -1]
        torch.testing.assert_close(s.logits, logits, atol=1e-4, rtol=0)
        torch.testing.assert_close(s.probs, torch.softmax(s.logits / T, -1))
        assert s.logprob == pytest.approx(float(torch.log_softmax(s.logits, -1)[s.token]), abs=1e-6)
        _, order, keep = nucleus(s.probs[None], p)
        assert s.kept.tolist() == order[0][keep[0]].tolist()
        assert s.token in s.kept.tolist()
        assert s.cutoff == pytest.approx(float(s.probs[s.kept].min()))
        assert [t for t, _, _ in s.top] == torch.topk(s.probs, 5).indices.tolist()
        assert s.eos is (s.token == llama.tokenizer.eos_id)
        assert (s.temperature, s.top_p, s.position) == (T, p, len(ids))
        ids.append(s.token)


def test_steps_stop_after_eos(llama, prompts):
    greedy, _ = llama.generate([prompts[2]], 8, temperature=0)
    stopping = Llama(llama.model, StopAt(llama.tokenizer, greedy[0][1]), llama.device)
    steps = list(stopping.steps(prompts[2], 8, temperature=0))
    assert [s.eos for s in steps] == [False, True]  # the EOS step is yielded, then it stops


def test_steps_reject_bad_requests(llama):
    with pytest.raises(ValueError, match="temperature"):
        next(llama.steps("ROMEO:", 3, temperature=-1))
    with pytest.raises(ValueError, match="top_p"):
        next(llama.steps("ROMEO:", 3, top_p=0))


# ---- the shipped tiny model ------------------------------------------------------------------

TINY_WEIGHTS = TINY_DIR / "consolidated.00.pth"

# load_tiny() greedy continuation of "ROMEO:" (40 tokens), pinned from the shipped weights.
ROMEO_GREEDY = ("\nI am not well, my lord.\n\nROMEO:\nI am not well, my lord.\n\n"
                "ROMEO:\nI have been as well as I am,")


@pytest.mark.skipif(not TINY_WEIGHTS.exists(), reason="data/tiny-llama not trained yet")
def test_tiny_model_greedy_romeo_is_pinned():
    tiny = load_tiny(device="cpu")
    out = tiny.text_completion(["ROMEO:"], temperature=0, max_gen_len=40)[0]["generation"]
    assert out == ROMEO_GREEDY
    # speaker names and line breaks: a play, not a stream of words
    assert out.count("\n") >= 4 and "ROMEO:\n" in out


@pytest.mark.skipif(not TINY_WEIGHTS.exists(), reason="data/tiny-llama not trained yet")
def test_tiny_model_batched_greedy_equals_one_by_one():
    tiny = load_tiny(device="cpu")
    prompts = [tiny.tokenizer.encode(x, bos=True, eos=False) for x in
               ["ROMEO:", "JULIET:\nO Romeo, Romeo,", "KING HENRY:\nOnce more unto the breach"]]
    batch, _ = tiny.generate(prompts, 24, temperature=0)
    assert batch == [tiny.generate([p], 24, temperature=0)[0][0] for p in prompts]
