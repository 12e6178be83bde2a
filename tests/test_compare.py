"""``nnlib.llama.compare``: the series' one rule for "two runs of the same model agree".

Fast tests build logits by hand (a shift, a swap, a single rounding, a near tie, an end token).
The slow test plants the three bugs the old rule let through into SmolLM2 (in memory: weights,
rope tables) and runs nnlib in float32, bfloat16 and float16 against transformers in float32:
the model as it is must pass, every bug must fail, and the old rule is shown passing a bug.
"""
from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from nnlib.llama import load_tiny
from nnlib.llama.checkpoint import permute_for_hf
from nnlib.llama.compare import (
    compare_greedy,
    compare_logits,
    kl_limit,
    kl_per_position,
    logprob_tolerance,
    rounding_eps,
    tie_margin,
)
from nnlib.llama.model import precompute_rope

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
IDS = ["fp32", "bf16", "fp16"]
#: A few dozen tokens: a bug in positions grows with the distance between tokens.
LONG_PROMPT = ("The blue whale is the largest animal known to have ever lived. It can grow to about "
               "thirty metres in length and weigh as much as two hundred tonnes. Its heart alone is "
               "the size of a small car, and its calls can be heard hundreds of kilometres away.")


def logits(seed: int = 0, shape: tuple[int, ...] = (6, 500)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 4


# ---- logits -----------------------------------------------------------------------------------


def test_rounding_unit_is_the_dtypes_epsilon_but_never_finer_than_tf32():
    # bf16 keeps 8 significant bits, fp16 and TF32 11: eps 2^-7 and 2^-10.
    assert rounding_eps(torch.bfloat16) == 2.0 ** -7
    assert rounding_eps(torch.float16) == 2.0 ** -10
    assert rounding_eps(torch.float32) == 2.0 ** -10
    with pytest.raises(ValueError, match="floating-point"):
        rounding_eps(torch.int64)


def test_kl_per_position_is_torchs_kl_divergence():
    ref, test = logits(0), logits(1)
    expected = F.kl_div(F.log_softmax(test, -1), F.log_softmax(ref, -1), log_target=True,
                        reduction="none").sum(-1)
    torch.testing.assert_close(kl_per_position(ref, test).float(), expected, rtol=1e-4, atol=1e-6)


def test_a_shift_of_every_logit_changes_no_distribution_and_agrees():
    ref = logits()
    shifted = ref + 7.0  # softmax ignores a common offset: the same model, however large the gap
    check = compare_logits(ref, shifted, torch.bfloat16)
    assert check.ok and check.max_kl < 1e-12 and check.max_abs_diff == pytest.approx(7.0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_one_rounding_to_the_dtype_agrees(dtype):
    ref = logits(2, (8, 2048)) * 2
    assert compare_logits(ref, ref.to(dtype), dtype).ok


def test_swapping_the_two_likeliest_tokens_at_one_position_fails():
    ref = logits(3)
    test = ref.clone()
    top2 = ref[4].topk(2).indices
    ref[4, top2[0]] += 3.0  # a clear favourite at position 4
    test[4] = ref[4]
    test[4, top2] = ref[4, top2.flip(0)]
    check = compare_logits(ref, test, torch.bfloat16)
    assert not check.ok and check.at == 4


def test_non_finite_logits_fail_and_bad_shapes_raise():
    ref = logits()
    bad = ref.clone()
    bad[2, 7] = float("nan")
    assert not compare_logits(ref, bad, torch.float16).ok
    with pytest.raises(ValueError, match="shapes differ"):
        compare_logits(ref, ref[:, :-1], torch.float16)
    with pytest.raises(ValueError, match="vocabulary axis"):
        kl_per_position(torch.tensor(1.0), torch.tensor(1.0))


def test_limits_grow_with_the_dtypes_rounding():
    assert kl_limit(torch.float32) == kl_limit(torch.float16) < kl_limit(torch.bfloat16)
    assert logprob_tolerance(torch.float16) < logprob_tolerance(torch.bfloat16) < 1.0
    assert tie_margin(torch.bfloat16, 20.0) > tie_margin(torch.float16, 20.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_the_tiny_model_agrees_with_its_float32_run(dtype):
    ref_model = load_tiny(device="cpu", dtype=torch.float32, max_batch_size=1)
    test_model = load_tiny(device="cpu", dtype=dtype, max_batch_size=1)
    text = "ROMEO:\nBut soft, what light through yonder window breaks? It is the east, and Juliet is the sun."
    ids = torch.tensor([ref_model.tokenizer.encode(text, bos=True, eos=False)])
    with torch.inference_mode():
        ref = ref_model.model(ids, 0, use_cache=False)[0]
        test = test_model.model(ids, 0, use_cache=False)[0]
    check = compare_logits(ref, test, dtype)
    assert check.ok and check.n_positions == ids.shape[1], check


# ---- greedy paths -----------------------------------------------------------------------------

EOS, END_OF_TURN = 0, 1
STOPS = {EOS, END_OF_TURN}


def step_logits(n: int = 4, vocab: int = 8) -> torch.Tensor:
    """The reference's logits along its path [5, 5, 5, ...]: token 5 ahead of token 6 by 0.01
    at step 1 (a tie in bf16) and by 4 at every other step; the end tokens far behind, except
    EOS 0.01 behind at step 2."""
    rows = torch.zeros(n, vocab)
    rows[:, 5], rows[:, 6] = 10.0, 6.0
    rows[1, 6] = 9.99
    rows[2, EOS] = 9.99
    return rows


def test_the_same_tokens_agree():
    g = compare_greedy([5, 5, 5, 5], [5, 5, 5, 5], step_logits(), torch.bfloat16)
    assert g.ok and (g.n_same, g.n, g.at) == (4, 4, None)


def test_paths_may_part_at_a_near_tie_but_not_where_the_reference_was_sure():
    tie = compare_greedy([5, 5, 5, 5], [5, 6, 2, 3], step_logits(), torch.bfloat16)
    assert tie.ok and tie.at == 1 and tie.margin == pytest.approx(0.01, abs=1e-5)
    far = compare_greedy([5, 5, 5, 5], [5, 5, 5, 6], step_logits(), torch.bfloat16)
    assert not far.ok and far.at == 3 and far.margin == pytest.approx(4.0)
    assert far.n_same == 3


def test_a_gap_that_is_a_tie_in_bf16_is_not_one_in_float32():
    # 0.3 logits apart at step 1: under bf16's rounding of logits near 10, over float32's.
    rows = step_logits()
    rows[1, 6] = 9.7
    assert compare_greedy([5, 5], [5, 6], rows, torch.bfloat16).ok
    assert not compare_greedy([5, 5], [5, 6], rows, torch.float32).ok


def test_both_stopping_at_the_same_step_agree_whether_or_not_the_stop_token_is_kept():
    # transformers keeps the end token, nnlib's generate drops it: the same path.
    g = compare_greedy([5, 5, END_OF_TURN], [5, 5], step_logits(), torch.float16, stop_tokens=STOPS)
    assert g.ok and g.at is None
    g = compare_greedy([5, 5], [5, 5, EOS, 9, 9], step_logits(), torch.float16, stop_tokens=STOPS)
    assert g.ok and g.at is None  # tokens after a stop (padding) are not compared


def test_stopping_where_the_other_path_goes_on_is_a_parting_under_the_tie_rule():
    # At step 2 the reference scored EOS 0.01 below its choice: stopping there is a tie in bf16.
    near = compare_greedy([5, 5, 5, 5], [5, 5], step_logits(), torch.bfloat16, stop_tokens=STOPS)
    assert near.ok and near.at == 2 and near.margin == pytest.approx(0.01, abs=1e-5)
    # At step 1 the end tokens were 10 behind: a path that stops there is wrong.
    early = compare_greedy([5, 5, 5, 5], [5, EOS], step_logits(), torch.bfloat16, stop_tokens=STOPS)
    assert not early.ok and early.at == 1 and early.margin == pytest.approx(10.0)


def test_without_stop_tokens_paths_of_different_lengths_compare_their_common_length():
    g = compare_greedy([5, 5, 5, 5], [5, 5], step_logits(), torch.bfloat16)
    assert g.ok and (g.n_same, g.n) == (2, 2)


def test_missing_reference_rows_raise_with_the_fix():
    with pytest.raises(ValueError, match="only 2 rows"):
        compare_greedy([5, 5, 5], [5, 5, 6], step_logits()[:2], torch.bfloat16)
    with pytest.raises(ValueError, match=r"\(n, V\)"):
        compare_greedy([5, 6], [6, 5], [torch.zeros(2, 8)], torch.bfloat16)


def test_a_list_of_rows_as_transformers_scores_them_works_like_a_matrix():
    rows = step_logits()
    as_list = [r[None, :][0] for r in rows]
    from_list = compare_greedy([5, 5], [5, 6], as_list, torch.bfloat16)
    assert from_list == compare_greedy([5, 5], [5, 6], rows, torch.bfloat16)
    # what the matrix gives, by step_logits' numbers: the paths part at step 1, where token 5
    # led token 6 by 10 - 9.99 = 0.01, a tie in bf16
    assert from_list.ok and from_list.at == 1 and from_list.margin == pytest.approx(0.01, abs=1e-5)


# ---- planted bugs in SmolLM2 -------------------------------------------------------------------


@contextlib.contextmanager
def planted(llama, bug: str):
    """One bug in ``llama``'s model, in memory, undone afterwards:

    - ``ffn15``: layer 15's feed-forward output matrix zeroed (a weight not loaded);
    - ``rope_theta``: rotary tables built with 10000 (Llama 2's) instead of the model's 1e5;
    - ``qk_hf_order``: layer 0's wq/wk rows in Hugging Face's rotate-half order (a converter
      that skipped the un-permute)."""
    model, undo = llama.model, []
    with torch.no_grad():
        if bug == "ffn15":
            w = model.layers[15].feed_forward.w2.weight
            old = w.clone()
            w.zero_()
            undo.append(lambda: w.copy_(old))
        elif bug == "rope_theta":
            tables = model.rope_cos, model.rope_sin
            wrong = dataclasses.replace(model.params, rope_theta=10000.0)
            model.rope_cos, model.rope_sin = precompute_rope(wrong, tables[0].device)
            undo.append(lambda: setattr(model, "rope_cos", tables[0]))
            undo.append(lambda: setattr(model, "rope_sin", tables[1]))
        elif bug == "qk_hf_order":
            attn = model.layers[0].attention
            for linear, heads in ((attn.wq, attn.n_heads), (attn.wk, attn.n_kv_heads)):
                w, old = linear.weight, linear.weight.clone()
                w.copy_(permute_for_hf(old, heads))
                undo.append(lambda w=w, old=old: w.copy_(old))
        else:
            raise ValueError(f"unknown bug {bug!r}")
    try:
        yield llama
    finally:
        with torch.no_grad():
            for step in undo:
                step()


BUGS = ["ffn15", "rope_theta", "qk_hf_order"]


@pytest.fixture(scope="module")
def long_reference(hf_model, smol):
    """The long prompt's ids (1, S) and transformers' float32 logits at every position (S, V)."""
    ids = torch.tensor([smol.tokenizer.encode(LONG_PROMPT, bos=True, eos=False)])
    with torch.inference_mode():
        return ids, hf_model(ids).logits[0].float()


def old_rule_passes(reference: torch.Tensor, test: torch.Tensor, dtype: torch.dtype) -> bool:
    """The rule this module replaced: max |dlogit| at the last position within 32 eps of the
    largest reference logit there."""
    scale = reference[-1].abs().max().item()
    return (test[-1] - reference[-1]).abs().max().item() <= 32 * torch.finfo(dtype).eps * scale


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_smol_agrees_with_transformers_and_every_planted_bug_fails(smol, long_reference, dtype):
    from nnlib.llama import load_smol

    ids, reference = long_reference
    assert ids.shape[1] >= 40, "the prompt must be a few dozen tokens"
    llama = smol if dtype == torch.float32 else load_smol(device="cpu", dtype=dtype,
                                                          max_seq_len=128, max_batch_size=1)

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return llama.model(ids, 0, use_cache=False)[0].float()

    honest = compare_logits(reference, run(), dtype)
    assert honest.ok and honest.max_kl * 3 <= honest.limit, honest  # room for other kernels
    old_passed = []
    for bug in BUGS:
        with planted(llama, bug):
            test = run()
        check = compare_logits(reference, test, dtype)
        assert not check.ok and check.max_kl >= 2 * check.limit, (bug, check)
        if old_rule_passes(reference, test, dtype):
            old_passed.append(bug)
    if dtype == torch.bfloat16:  # why the rule changed: 32 eps of the largest logit is 4.7 logits
        assert old_passed, "the old rule caught every bug in bf16"
    after = compare_logits(reference, run(), dtype)  # the bugs were undone
    assert after.max_kl == pytest.approx(honest.max_kl)


class _LikeMps(torch.Tensor):
    """A tensor that behaves as one on a Mac's MPS does for this test's purpose: it has no float64
    (``.double()`` or ``.to(torch.float64)`` raises MPS's error) until it is moved to the CPU."""

    def double(self, *args, **kwargs):
        raise TypeError("Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't "
                        "support float64.")

    def to(self, *args, **kwargs):
        if torch.float64 in args or kwargs.get("dtype") is torch.float64:
            self.double()
        return super().to(*args, **kwargs)

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor).clone()


def test_logits_on_a_device_without_float64_are_moved_to_the_cpu_before_float64():
    ref = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    on_mps = (ref + 1e-3).as_subclass(_LikeMps)
    with pytest.raises(TypeError, match="float64"):
        on_mps.detach().double()  # what the old code did first, and MPS refuses
    check = compare_logits(ref, on_mps, torch.float16)
    assert check.ok and check.n_positions == 5
    assert compare_logits(on_mps, ref, torch.float16).ok  # the reference may be on the device too
    assert kl_per_position(on_mps, on_mps).abs().max() < 1e-12
    greedy = compare_greedy([1, 2], [1, 3], [on_mps[0], on_mps[1]], torch.float16)
    assert greedy.at == 1
