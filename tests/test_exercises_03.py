"""Notebook 03's exercise checkers accept the reference solutions, reject the usual wrong ones
with the hint that fits, and report a stub as "not attempted yet"; and the notebook's NCCL cell
shows the seed's error text when this torch has no NCCL."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nnlib.exercises import loading_llama as ex

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "03_loading_llama.ipynb"


def stub(*_args):
    raise NotImplementedError


# ---- reference solutions, written independently of nnlib ----------------------------------


def kv_cache_bytes(params, max_seq_len, max_batch_size, bytes_per_value):
    n_kv = params.get("n_kv_heads") or params["n_heads"]
    head_dim = params["dim"] // params["n_heads"]
    return 2 * params["n_layers"] * max_batch_size * max_seq_len * n_kv * head_dim * bytes_per_value


def hidden_dim(p):
    hidden = int(2 * 4 * p["dim"] / 3)
    if p.get("ffn_dim_multiplier") is not None:
        hidden = int(p["ffn_dim_multiplier"] * hidden)
    m = p["multiple_of"]
    return m * -(-hidden // m)


def parameter_count(p, *, norms=True, output=True, gqa=True):
    d, layers = p["dim"], p["n_layers"]
    n_kv = (p.get("n_kv_heads") or p["n_heads"]) if gqa else p["n_heads"]
    kv_rows = n_kv * (d // p["n_heads"])
    per_layer = 2 * d * d + 2 * kv_rows * d + 3 * d * hidden_dim(p) + (2 * d if norms else 0)
    return layers * per_layer + p["vocab_size"] * d * (2 if output else 1) + (d if norms else 0)


def split_axis(name, embedding_axis=1):
    kind = name.split(".")[-2]
    if "norm" in kind:
        return None
    if kind in ("wq", "wk", "wv", "w1", "w3", "output"):
        return 0
    if kind in ("wo", "w2"):
        return 1
    return embedding_axis


def split(name, t, n):
    axis = split_axis(name)
    return [t.clone() for _ in range(n)] if axis is None else list(torch.chunk(t, n, dim=axis))


def merge(name, shards):
    axis = split_axis(name)
    return shards[0] if axis is None else torch.cat(shards, dim=axis)


def to_model_device(batch, model):
    device = next(model.parameters()).device
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


# ---- the checkers ---------------------------------------------------------------------------


def test_kv_cache_checker(capsys):
    assert ex.check_kv_cache_bytes(kv_cache_bytes)
    assert "Right!" in capsys.readouterr().out
    assert not ex.check_kv_cache_bytes(lambda p, s, b, n: kv_cache_bytes(p, s, b, n) // 2)
    assert "keys" in capsys.readouterr().out
    assert not ex.check_kv_cache_bytes(lambda p, s, b, n: kv_cache_bytes({**p, "n_kv_heads": None}, s, b, n))
    assert "grouped-query" in capsys.readouterr().out
    assert not ex.check_kv_cache_bytes(lambda p, s, b, n: kv_cache_bytes(p, s, b, 1))
    assert "bytes per value" in capsys.readouterr().out
    assert not ex.check_kv_cache_bytes(lambda p, s, b, n: p["n_kv_heads"])  # Llama 2 has none
    assert "Not yet" in capsys.readouterr().out
    assert not ex.check_kv_cache_bytes(stub)
    assert "Not attempted yet" in capsys.readouterr().out


def test_parameter_count_checker(capsys):
    assert ex.check_llama_parameter_count(parameter_count)
    assert "6.74 billion" in capsys.readouterr().out
    assert not ex.check_llama_parameter_count(lambda p: parameter_count(p, output=False))
    assert "output matrix" in capsys.readouterr().out
    assert not ex.check_llama_parameter_count(lambda p: parameter_count(p, norms=False))
    assert "RMSNorm" in capsys.readouterr().out
    assert not ex.check_llama_parameter_count(lambda p: parameter_count(p, gqa=False))
    assert "n_kv_heads" in capsys.readouterr().out
    assert not ex.check_llama_parameter_count(lambda p: "seven billion")
    assert "return a number" in capsys.readouterr().out
    assert not ex.check_llama_parameter_count(stub)
    assert "Not attempted yet" in capsys.readouterr().out


def test_mp_split_checker(capsys):
    assert ex.check_mp_split(split, merge)
    assert "Right!" in capsys.readouterr().out

    def everything_on_dim0(name, t, n):
        return list(torch.chunk(t, n, dim=0)) if t.dim() == 2 else [t] * n

    assert not ex.check_mp_split(everything_on_dim0, merge)
    assert "dim 1" in capsys.readouterr().out

    def norms_split(name, t, n):
        return list(torch.chunk(t, n, dim=0)) if t.dim() == 1 else split(name, t, n)

    assert not ex.check_mp_split(norms_split, merge)
    assert "norm" in capsys.readouterr().out
    assert not ex.check_mp_split(split, lambda name, shards: torch.cat(shards, dim=0))
    assert "concatenate on the same dim" in capsys.readouterr().out
    assert not ex.check_mp_split(stub, merge)
    assert "Not attempted yet" in capsys.readouterr().out
    assert not ex.check_mp_split(split, stub)


def test_to_model_device_checker(capsys):
    assert ex.check_to_model_device(to_model_device)
    assert "Right!" in capsys.readouterr().out
    assert not ex.check_to_model_device(lambda batch, model: batch)  # left on the CPU
    assert "meta" in capsys.readouterr().out
    only_ids = lambda batch, model: {**batch, "input_ids": batch["input_ids"].to(next(model.parameters()).device)}  # noqa: E731
    assert not ex.check_to_model_device(only_ids)
    assert "attention_mask" in capsys.readouterr().out
    assert not ex.check_to_model_device(stub)
    assert "Not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize("seq, batch, dtype", [(256, 4, "fp32"), (2048, 1, "bf16"), (8192, 32, "bf16")])
def test_kv_reference_matches_an_allocated_cache(seq, batch, dtype):
    """The checker's reference (nnlib's helper) equals the bytes a real cache of that shape takes."""
    from nnlib.llama.model import ModelArgs, Transformer

    shape = dict(ex._TINY_SHAPE)
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    with torch.device("meta"):
        model = Transformer(ModelArgs(**shape, max_seq_len=seq, max_batch_size=batch)).to(torch_dtype)
    allocated = sum(layer.attention.cache_k.nbytes + layer.attention.cache_v.nbytes for layer in model.layers)
    assert ex._kv_reference(shape, seq, batch, torch_dtype.itemsize) == allocated


# ---- the notebook's NCCL cell ---------------------------------------------------------------


def test_nccl_cell_shows_the_seeds_error_on_a_torch_without_nccl():
    import torch.distributed as dist

    if not NOTEBOOK.exists():
        pytest.skip("notebook 03 is not built yet")
    if dist.is_available() and dist.is_nccl_available():
        pytest.skip("this torch has NCCL: the committed outputs come from a CPU-only torch")
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    outputs = []
    for cell in cells:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and 'init_process_group("nccl")' in src and "torchrun_environment" in src:
            outputs.append("".join("".join(o.get("text", "")) for o in cell["outputs"]))
    assert outputs, "notebook 03 has no cell that calls init_process_group(\"nccl\") under torchrun's variables"
    assert any("RuntimeError: Distributed package doesn't have NCCL built in" in o for o in outputs)
