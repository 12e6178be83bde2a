"""``scripts/hf_generate.py``, the seed's transformers program: on a Hugging Face folder written by
``save_hf`` from the tiny Llama, transformers' greedy continuation is nnlib's, token by token."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nnlib.llama
from nnlib.llama import load_tiny, save_hf

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "hf_generate.py"
_spec = importlib.util.spec_from_file_location("hf_generate", SCRIPT)
hf_generate = importlib.util.module_from_spec(_spec)
sys.modules["hf_generate"] = hf_generate
_spec.loader.exec_module(hf_generate)

PROMPTS = [hf_generate.SEED_PROMPT, "ROMEO:", "To be, or not to be"]


@pytest.fixture(scope="module")
def tiny():
    return load_tiny(device="cpu", dtype="float32", max_batch_size=1)


@pytest.fixture(scope="module")
def hf_dir(tiny, tmp_path_factory):
    return save_hf(tiny, tmp_path_factory.mktemp("tiny-hf"))


@pytest.fixture(scope="module")
def hf_model(hf_dir):
    return hf_generate.load(str(hf_dir), device="cpu")


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_continuation_equals_nnlibs_token_by_token(tiny, hf_model, prompt):
    tokenizer, model = hf_model
    prompt_ids, new = hf_generate.greedy_continuation(tokenizer, model, prompt, max_new_tokens=32)
    expected_prompt = tiny.tokenizer.encode(prompt, bos=True, eos=False)
    assert prompt_ids == expected_prompt  # BOS included, as nnlib (and Meta) encode prompts
    expected, _ = tiny.generate([expected_prompt], 32, temperature=0.0)
    assert new == expected[0]


def test_the_model_is_loaded_in_the_devices_dtype(hf_model):
    _, model = hf_model
    assert model.dtype == torch.float32 and hf_generate.device_map_of(model) == {"": "cpu"}


@pytest.mark.parametrize("device, dtype, device_map", [
    ("cuda", torch.bfloat16, "auto"),   # one GPU or a split over several
    ("mps", torch.float16, "mps"),      # named: what accelerate 1.15's "auto" picks too
    ("cpu", torch.float32, "cpu"),
])
def test_placement_per_device(monkeypatch, device, dtype, device_map):
    # Pretend the device exists (this machine has none): only the mapping is under test here.
    monkeypatch.setattr(nnlib.llama, "choose_device", lambda d=None: torch.device(device))
    monkeypatch.setattr(nnlib.llama, "choose_dtype", lambda dev, dt=None: dtype)
    assert hf_generate.placement() == (torch.device(device), dtype, device_map)


def test_bad_folders_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        hf_generate.load(str(tmp_path / "open_llama_3b"))
    (tmp_path / "model.Q4_1.gguf").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="--gguf_file model.Q4_1.gguf"):
        hf_generate.load(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="model.Q4_1.gguf"):
        hf_generate.load(str(tmp_path), gguf_file="other.gguf")


@pytest.mark.slow
def test_the_command_prints_the_device_map_and_nnlibs_continuation(tiny, hf_dir):
    proc = subprocess.run([sys.executable, str(SCRIPT), str(hf_dir)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "NNLIB_DEVICE": "cpu"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ids = tiny.tokenizer.encode(hf_generate.SEED_PROMPT, bos=True, eos=False)
    expected = tiny.tokenizer.decode(tiny.generate([ids], 32, temperature=0.0)[0][0])
    assert "device map: {'': 'cpu'}" in proc.stdout
    assert f"{hf_generate.SEED_PROMPT}\n> {expected}\n" in proc.stdout
    assert "Expected all tensors to be on the same device" not in proc.stderr
    assert "attention_mask" not in proc.stderr and "pad_token_id" not in proc.stderr  # no warnings
