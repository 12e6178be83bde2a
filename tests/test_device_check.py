"""``scripts/device_check.py`` on the CPU: the no-accelerator path, its greedy paths, and a whole
run with CPU bfloat16 standing in for the device (the agreement rules it applies are
``nnlib.llama.compare``'s, tested in ``test_compare.py``)."""
from __future__ import annotations

import importlib.util
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


@pytest.fixture(scope="module")
def tiny_fp32():
    return load_tiny(device="cpu", dtype="float32", max_batch_size=1)


@pytest.fixture(scope="module")
def tiny_bf16():
    return load_tiny(device="cpu", dtype="bfloat16", max_batch_size=1)


def test_the_script_uses_the_series_one_agreement_rule():
    # The rules live in nnlib.llama.compare (tested in test_compare.py); the script must not keep
    # its own copy that could drift from what the notebooks and tests use.
    from nnlib.llama import compare

    assert device_check.compare_logits is compare.compare_logits
    assert device_check.compare_greedy is compare.compare_greedy


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
    assert "tiny cpu bfloat16" in out and "logits, 3 prompts" in out and "All 4 checks passed" in out


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
