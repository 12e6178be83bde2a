"""``scripts/device_check.py`` on the CPU: the no-accelerator path, the tolerance and greedy
comparisons, and a whole run with CPU bfloat16 standing in for the device."""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from nnlib.llama import load_tiny

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("device_check", ROOT / "scripts" / "device_check.py")
device_check = importlib.util.module_from_spec(_spec)
sys.modules["device_check"] = device_check  # dataclasses look their module up there
_spec.loader.exec_module(device_check)


def test_without_an_accelerator_it_says_so_and_passes(monkeypatch, capsys):
    monkeypatch.setattr(device_check, "find_accelerator", lambda: None)
    monkeypatch.setattr(device_check, "model_rows", lambda *a, **k: pytest.fail("loaded a model"))
    assert device_check.main([]) == 0
    assert "No CUDA or MPS device" in capsys.readouterr().out


def test_tolerance_is_k_eps_scale_sqrt_layers():
    # eps written out: bf16 keeps 8 significant bits (2^-7), fp16 11 (2^-10).
    assert device_check.logit_tolerance(torch.bfloat16, 16.0, 4) == pytest.approx(2.0 * 2**-7 * 16 * 2)
    assert device_check.logit_tolerance(torch.float16, 16.0, 4) == pytest.approx(2.0 * 2**-10 * 16 * 2)
    assert device_check.logit_tolerance(torch.float32, 0.5, 1) == pytest.approx(1e-4)  # floor, scale >= 1


def test_rounding_logits_to_half_precision_stays_inside_the_tolerance():
    # One rounding moves a value by at most eps/2 of its size: the tolerance must allow that much.
    logits = torch.randn(4, 2048, generator=torch.Generator().manual_seed(0)) * 8
    for dtype in (torch.bfloat16, torch.float16):
        assert device_check.compare_logits(logits, logits.to(dtype), dtype, n_layers=1).ok


@pytest.fixture(scope="module")
def tiny_fp32():
    return load_tiny(device="cpu", dtype="float32", max_batch_size=1)


@pytest.fixture(scope="module")
def tiny_bf16():
    return load_tiny(device="cpu", dtype="bfloat16", max_batch_size=1)


def test_bf16_logits_pass_and_a_perturbed_logit_fails(tiny_fp32, tiny_bf16):
    ids = torch.tensor([tiny_fp32.tokenizer.encode("ROMEO:", bos=True, eos=False)])
    with torch.inference_mode():
        ref = tiny_fp32.model.forward(ids, 0, use_cache=False)[0, -1]
        half = tiny_bf16.model.forward(ids, 0, use_cache=False)[0, -1]
    good = device_check.compare_logits(ref, half, torch.bfloat16, n_layers=6)
    assert good.ok and 0 < good.max_diff < good.tolerance
    broken = half.float().clone()
    broken[7] += 2 * good.tolerance
    bad = device_check.compare_logits(ref, broken, torch.bfloat16, n_layers=6)
    assert not bad.ok and bad.max_diff >= 2 * good.tolerance - good.max_diff
    nan = half.float().clone()
    nan[0] = math.nan
    assert not device_check.compare_logits(ref, nan, torch.bfloat16, n_layers=6).ok
    with pytest.raises(ValueError, match="shapes differ"):
        device_check.compare_logits(ref, half[:-1], torch.bfloat16, n_layers=6)


def test_greedy_paths_may_part_only_at_a_near_tie():
    logits = torch.zeros(3, 5)
    logits[:, 1] = 5.0           # the reference's choice at every step ...
    logits[1, 3] = 4.9           # ... at step 1 with token 3 a close second, at step 2 far ahead
    same = device_check.compare_greedy([1, 1, 1], [1, 1, 1], logits, tolerance=0.1)
    assert same.ok and (same.n_same, same.at) == (3, None)
    near = device_check.compare_greedy([1, 1, 1], [1, 3, 0], logits, tolerance=0.1)
    assert near.ok and near.at == 1
    assert near.margin == pytest.approx(0.1) and near.allowed == pytest.approx(0.2)
    far = device_check.compare_greedy([1, 1, 1], [1, 1, 0], logits, tolerance=0.1)
    assert not far.ok and far.at == 2 and far.margin == pytest.approx(5.0)


def test_greedy_path_is_what_generate_gives_at_temperature_zero(tiny_fp32):
    ids = tiny_fp32.tokenizer.encode("Q: What is the largest animal?\nA:", bos=True, eos=False)
    tokens, logits = device_check.greedy_path(tiny_fp32, ids, 20)
    expected, _ = tiny_fp32.generate([ids], 20, temperature=0.0)
    assert tokens[:len(expected[0])] == expected[0]  # generate stops at EOS; greedy_path does not
    assert logits.shape == (20, tiny_fp32.model.params.vocab_size)
    assert logits.argmax(dim=-1).tolist() == tokens


@pytest.mark.slow
def test_a_whole_run_with_cpu_bf16_standing_in_for_the_device(capsys):
    code = device_check.main(["--device", "cpu", "--dtype", "bfloat16", "--models", "tiny",
                              "--tokens", "8", "--skip-torchrun", "--skip-notebooks"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "tiny cpu bfloat16" in out and "last logits" in out and "All 4 checks passed" in out


@pytest.mark.slow
def test_a_model_that_is_wrong_on_the_device_fails_the_run(monkeypatch, capsys):
    def load_broken_on_device(device, dtype, **kwargs):
        llama = load_tiny(device=device, dtype=dtype, **kwargs)
        if dtype != torch.float32:  # only the "device" copy: scale the output layer
            with torch.no_grad():
                llama.model.output.weight.mul_(1.5)
        return llama

    monkeypatch.setattr(device_check, "shipped_models", lambda: [("tiny", load_broken_on_device, "")])
    code = device_check.main(["--device", "cpu", "--dtype", "bfloat16", "--tokens", "4",
                              "--skip-torchrun", "--skip-notebooks"])
    out = capsys.readouterr().out
    assert code == 1 and "FAIL" in out


def test_a_model_that_cannot_run_on_the_device_is_a_failed_row(monkeypatch, capsys):
    def load_fails_on_device(device, dtype, **kwargs):
        raise RuntimeError("Placeholder storage has not been allocated on MPS device!")

    monkeypatch.setattr(device_check, "shipped_models", lambda: [("tiny", load_fails_on_device, "")])
    code = device_check.main(["--device", "cpu", "--dtype", "float16", "--skip-torchrun",
                              "--skip-notebooks"])
    out = capsys.readouterr().out
    assert code == 1 and "RuntimeError: Placeholder storage" in out and "FAIL" in out
