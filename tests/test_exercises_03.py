"""Notebook 03 beyond its solutions (tests/test_exercise_solutions.py runs those): the KV-cache
checker's reference equals a really allocated cache, and the notebook's NCCL cell shows the
seed's error text when this torch has no NCCL."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nnlib.exercises import loading_llama as ex

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "03_loading_llama.ipynb"


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


#: Meta's first line of ``build`` under the variables ``torchrun --nproc_per_node 1`` sets, run in
#: a fresh interpreter (a process group, or a half-made one, must not outlive the call).
NCCL_CALL = """
import os, socket, warnings
import torch.distributed as dist
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1",
                  MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dist.init_process_group("nccl")
    print("no error")
except RuntimeError as err:
    print(f"RuntimeError: {err}")
"""


def test_nccl_cell_shows_what_the_call_really_raises_on_a_torch_without_nccl():
    """The committed output of notebook 03's NCCL cell is the message ``init_process_group("nccl")``
    raises here under torchrun's variables (made by the call, not quoted), and it is the seed's."""
    import subprocess
    import sys

    import torch.distributed as dist

    if not NOTEBOOK.exists():
        pytest.skip("notebook 03 is not built yet")
    if dist.is_available() and dist.is_nccl_available():
        pytest.skip("this torch has NCCL: the committed outputs come from a CPU-only torch")
    raised = subprocess.run([sys.executable, "-c", NCCL_CALL], capture_output=True, text=True,
                            timeout=120, check=True).stdout.strip()
    assert raised.startswith("RuntimeError: ") and "NCCL" in raised, raised
    assert raised == "RuntimeError: Distributed package doesn't have NCCL built in"  # as in the seed's log
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"
             and 'init_process_group("nccl")' in "".join(c["source"])
             and "torchrun_environment" in "".join(c["source"])]
    assert cells, 'notebook 03 has no cell calling init_process_group("nccl") under torchrun\'s variables'
    shown = ["".join("".join(o.get("text", "")) for o in c["outputs"]) for c in cells]
    assert any(text.splitlines()[:1] == [raised] for text in shown), (raised, shown)


def _outputs_of_cells_containing(notebook: Path, needle: str) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    return ["".join("".join(o.get("text", "")) for o in cell["outputs"])
            for cell in cells if cell["cell_type"] == "code" and needle in "".join(cell["source"])]


def test_would_gloo_fix_it_shows_metas_next_failing_lines_for_real():
    """The committed outputs (a CPU-only torch) hold the messages a learner searches for, produced
    by Meta's own calls, not quoted: the same calls raise them here."""
    if torch.backends.cuda.is_built():
        pytest.skip("this torch has CUDA: the committed outputs come from a CPU-only torch")
    cell_code = "torch.set_default_tensor_type(torch.cuda.HalfTensor)"
    outputs = "\n".join(_outputs_of_cells_containing(NOTEBOOK, cell_code))
    with pytest.raises(AttributeError) as set_device:
        torch.cuda.set_device(0)
    with pytest.raises(TypeError) as tensor_type:
        torch.set_default_tensor_type(torch.cuda.HalfTensor)
    assert f"AttributeError: {set_device.value}" in outputs and "_cuda_setDevice" in outputs
    assert f"TypeError: {tensor_type.value}" in outputs
    assert torch.get_default_dtype() == torch.float32


# ---- Exercise 1 and 2: a params.json without n_kv_heads --------------------------------------


def _kv_forgetting_llama2(params, max_seq_len, max_batch_size, bytes_per_value):
    head_dim = params["dim"] // params["n_heads"]
    return (2 * params["n_layers"] * max_batch_size * max_seq_len * params["n_kv_heads"] * head_dim
            * bytes_per_value)


def _count_forgetting_llama2(params):
    from nnlib.llama.devices import count_parameters

    return count_parameters(**{**params, "n_kv_heads": params["n_kv_heads"]})  # right, but for Llama 2


@pytest.mark.parametrize("checker, answer", [(ex.check_kv_cache_bytes, _kv_forgetting_llama2),
                                             (ex.check_llama_parameter_count, _count_forgetting_llama2)])
def test_a_missing_n_kv_heads_is_named_not_a_traceback(checker, answer, capsys):
    """Llama 2 7B's params.json has no n_kv_heads: ``params["n_kv_heads"]`` raises KeyError, and
    the checker says what that means instead of letting the traceback through."""
    verdict = checker(answer)
    said = capsys.readouterr().out
    assert not verdict
    assert said.startswith("Not yet: ") and "n_kv_heads" in said and "KeyError" in said
    assert "params.get('n_kv_heads') or params['n_heads']" in said


def test_another_missing_key_lists_the_keys_there(capsys):
    assert not ex.check_kv_cache_bytes(lambda params, *rest: params["head_dim"])
    said = capsys.readouterr().out
    assert "params['head_dim'] raised KeyError" in said and "'n_heads'" in said


# ---- claims of §4 and §5, checked against nnlib ------------------------------------------------


def test_max_seq_len_sizes_the_rope_tables_and_caps_forward():
    """§4: max_seq_len sizes the rope tables (one row per position) and forward raises past it."""
    from nnlib.llama import load_tiny

    llama = load_tiny(device="cpu", max_seq_len=32, max_batch_size=1)
    assert llama.model.rope_cos.shape[0] == 32
    with pytest.raises(ValueError, match="do not fit max_seq_len=32"):
        llama.model.forward(torch.zeros(1, 33, dtype=torch.long), 0)


def test_a_16_gb_macs_gpu_refuses_llama_2_7b_in_fp16(monkeypatch):
    """§5: on a 16 GB Mac, Metal recommends two thirds of the memory for the GPU, and nnlib's
    check on MPS (the smaller of that and the Mac's free memory) refuses Llama 2 7B in fp16."""
    from nnlib.llama import loading, memory
    from nnlib.llama.model import ModelArgs

    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 16 * 2**30 * 2 // 3, raising=False)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 0, raising=False)
    monkeypatch.setattr(memory, "host_free_bytes", lambda: 16 * 2**30)  # even with nothing else running
    args = ModelArgs(**memory.KNOWN_MODELS["7B"], max_seq_len=128, max_batch_size=4)
    with pytest.raises(MemoryError, match=r"needs about 13\.7 GB on mps .* only 11\.5 GB is free"):
        loading.check_memory_fits(args, torch.float16, torch.device("mps"))
