"""nnlib.llama.devices: device and dtype choice, the process-group backend (the fix for "Distributed
package doesn't have NCCL built in"), and the memory arithmetic behind notebook 03's table."""
from __future__ import annotations

import sys

import pytest
import torch

from conftest import SMALL_PARAMS
from nnlib.llama import ModelArgs, Transformer, devices, memory
from nnlib.llama.devices import (
    choose_device,
    choose_dtype,
    count_parameters,
    kv_cache_bytes,
    memory_table,
    model_memory,
    process_group_backend,
)
from nnlib.llama.linear import store_columnwise
from nnlib.llama.model import ffn_hidden_dim


def test_default_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: True)
    assert choose_device().type == "mps"
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    assert choose_device() == torch.device("cpu")


def test_cpu_is_always_usable():
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.backends.cuda.is_built(), reason="this torch has CUDA")
def test_cuda_without_cuda_build_says_why():
    with pytest.raises(ValueError, match="this torch was built without CUDA.*device='cpu'"):
        choose_device("cuda:0")


def test_cuda_built_but_no_gpu_says_why(monkeypatch):
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="sees no GPU"):
        choose_device("cuda")


def test_mps_not_available_says_why(monkeypatch):
    mps = torch.backends.mps
    monkeypatch.setattr(mps, "is_built", lambda: False)
    with pytest.raises(ValueError, match="built without MPS"):
        choose_device("mps")
    monkeypatch.setattr(mps, "is_built", lambda: True)
    monkeypatch.setattr(mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="Apple-silicon Mac"):
        choose_device("mps")


def test_unsupported_or_unknown_device():
    with pytest.raises(ValueError, match="not a device name"):
        choose_device("graphics-card")
    with pytest.raises(ValueError, match="not supported here"):
        choose_device("xpu")


def test_dtype_per_device(monkeypatch):
    assert choose_dtype(torch.device("cpu")) == torch.float32
    assert choose_dtype(torch.device("mps")) == torch.float16
    # CUDA: by compute capability (bf16 in hardware from sm 8.0), not by is_bf16_supported(),
    # which also says True where torch only emulates bf16 (a T4, V100). tests/test_device_profiles.py
    # runs whole machine profiles; here only the rule.
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (8, 0))   # A100
    assert choose_dtype(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (7, 5))   # T4
    assert choose_dtype(torch.device("cuda")) == torch.float16
    assert choose_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    assert choose_dtype(torch.device("cpu"), torch.float16) == torch.float16
    with pytest.raises(ValueError, match="Unknown dtype"):
        choose_dtype(torch.device("cpu"), "float8")


@pytest.mark.parametrize("cuda, nccl, want", [
    (True, True, "nccl"),
    (True, False, "gloo"),    # a CUDA torch without NCCL (Windows): the seed's error
    (False, True, "gloo"),
    (False, False, "gloo"),   # a Mac: no CUDA, no NCCL
])
def test_process_group_backend(monkeypatch, cuda, nccl, want):
    import torch.distributed as dist

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(dist, "is_nccl_available", lambda: nccl)
    device = "cuda" if cuda else "cpu"
    if cuda:  # the device checks need a real GPU; the backend choice only needs these answers
        monkeypatch.setattr(devices, "choose_device", lambda d=None: torch.device("cuda"))
    assert process_group_backend(torch.device(device)) == want
    assert process_group_backend() == want


def test_no_process_group_outside_torchrun(monkeypatch):
    import torch.distributed as dist

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert devices.init_process_group_if_needed("cpu") is False
    assert not (dist.is_available() and dist.is_initialized())


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")
def test_under_torchrun_on_a_cpu_the_group_uses_gloo(monkeypatch, tmp_path):
    import torch.distributed as dist

    if dist.is_initialized():
        pytest.skip("a process group already exists in this process")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29571")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    try:
        assert devices.init_process_group_if_needed("cpu") is True
        assert dist.get_backend() == "gloo"
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# ---- NNLIB_DEVICE / NNLIB_DTYPE overrides ------------------------------------------------------


def test_env_overrides_the_automatic_choice_and_an_argument_overrides_env(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    monkeypatch.setenv("NNLIB_DEVICE", "cpu")
    assert choose_device() == torch.device("cpu")
    monkeypatch.setenv("NNLIB_DTYPE", "bfloat16")
    assert choose_dtype(torch.device("cpu")) == torch.bfloat16  # env wins over auto (fp32)
    assert choose_dtype(torch.device("cpu"), "fp16") == torch.float16  # the argument wins
    monkeypatch.setenv("NNLIB_DTYPE", "")
    assert choose_dtype(torch.device("cpu")) == torch.float32  # empty means unset


def test_env_device_wins_over_auto_detection_and_loses_to_an_argument(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # auto would pick cuda
    monkeypatch.setenv("NNLIB_DEVICE", "cpu")
    assert choose_device() == torch.device("cpu")
    monkeypatch.setenv("NNLIB_DEVICE", "xpu")
    assert choose_device("cpu") == torch.device("cpu")  # an explicit argument ignores env


@pytest.mark.parametrize("var, value, call, listed", [
    ("NNLIB_DEVICE", "gpu0", lambda: choose_device(), "cpu, cuda, cuda:N, mps"),
    ("NNLIB_DEVICE", "xpu", lambda: choose_device(), "cpu, cuda, cuda:N, mps"),
    ("NNLIB_DTYPE", "fp8", lambda: choose_dtype(torch.device("cpu")), "bfloat16"),
])
def test_a_bad_env_value_is_named_with_the_valid_ones(monkeypatch, var, value, call, listed):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=f"{var}={value!r}") as err:
        call()
    assert listed in str(err.value)


# ---- memory arithmetic -----------------------------------------------------------------------

# Parameter counts Meta and Hugging Face publish for these checkpoints.
# Hugging Face's safetensors index totals / 2 bytes (Llama 2 70B: 137,953,296,384 bytes in fp16).
PUBLISHED = {"7B": 6_738_415_616, "13B": 13_015_864_320, "2-70B": 68_976_648_192,
             "8B": 8_030_261_248, "70B": 70_553_706_496}


@pytest.mark.parametrize("name", PUBLISHED)
def test_parameter_counts_match_the_published_ones(name):
    assert count_parameters(**devices.KNOWN_MODELS[name]) == PUBLISHED[name]


def test_tied_embeddings_count_once_llama_3_2_1b():
    """Llama 3.2 1B by hand: 16 layers of (wq, wo 2048x2048; wk, wv 512x2048; w1, w2, w3
    8192x2048; two norms) + one 128256x2048 embedding shared with the output + the final norm:
    1,235,814,400 (HF's model card says 1.24B; untied it would be 1.50B)."""
    per_layer = 2 * 2048 * 2048 + 2 * 512 * 2048 + 3 * 8192 * 2048 + 2 * 2048
    by_hand = 16 * per_layer + 128256 * 2048 + 2048
    assert by_hand == 1_235_814_400
    assert count_parameters(**devices.LLAMA_3_2_MODELS["3.2-1B"]) == by_hand
    assert model_memory("3.2-1B", "bf16")["weights"] == 2 * by_hand
    untied = {**devices.LLAMA_3_2_MODELS["3.2-1B"], "tied_embeddings": False}
    assert count_parameters(**untied) == by_hand + 128256 * 2048


def test_tied_count_matches_a_built_tied_model():
    from nnlib.llama import ModelArgs, Transformer

    shape = dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=300, multiple_of=32)
    model = Transformer(ModelArgs(**shape, max_seq_len=4, max_batch_size=1))
    model.output.weight = model.tok_embeddings.weight  # tied, as Llama 3.2 1B/3B
    assert count_parameters(**shape, tied_embeddings=True) == model.num_parameters()


def test_parameter_count_matches_a_built_model():
    from nnlib.llama import ModelArgs, Transformer

    shape = dict(dim=64, n_layers=3, n_heads=4, n_kv_heads=2, vocab_size=300, multiple_of=48,
                 ffn_dim_multiplier=1.3)
    model = Transformer(ModelArgs(**shape, max_seq_len=4, max_batch_size=1))
    assert count_parameters(**shape) == model.num_parameters()


def test_memory_for_a_7b_model():
    m = model_memory("7B", "bf16", max_seq_len=2048, max_batch_size=1)
    assert m["weights"] == 2 * PUBLISHED["7B"]                  # ~13.5 GB
    # keys and values: 2 x 32 layers x 2048 positions x 4096 wide x 2 bytes = 1 GiB
    assert m["kv_cache"] == 2 * 32 * 2048 * 4096 * 2
    assert m["total"] == m["weights"] + m["kv_cache"]
    assert model_memory("7B", "int4")["weights"] == PUBLISHED["7B"] // 2
    assert model_memory("7B", "fp32")["weights"] == 4 * PUBLISHED["7B"]


def test_grouped_query_attention_shrinks_the_cache():
    full = kv_cache_bytes(n_layers=32, dim=4096, n_heads=32, max_seq_len=2048, max_batch_size=1)
    gqa = kv_cache_bytes(n_layers=32, dim=4096, n_heads=32, n_kv_heads=8, max_seq_len=2048,
                         max_batch_size=1)
    assert full == 4 * gqa


def test_memory_table_rows():
    rows = memory_table()
    assert {r["model"] for r in rows} == {"7B", "13B", "2-70B", "8B", "70B"}
    assert {r["label"] for r in rows} >= {"Llama 2 70B", "Llama 3 70B"}
    assert {r["dtype"] for r in rows} == {"fp32", "bf16", "fp16", "int8", "int4"}
    by = {(r["model"], r["dtype"]): r for r in rows}
    assert by["70B", "bf16"]["weights_GB"] == pytest.approx(2 * 70.55, rel=1e-3)
    for r in rows:
        assert r["total_GB"] == pytest.approx(r["weights_GB"] + r["kv_cache_GB"])
    with pytest.raises(ValueError, match="Unknown model"):
        model_memory("405B")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="psutil's reading is compared on Linux")
def test_free_memory_on_the_cpu_is_what_psutil_reads():
    """On Linux the CPU's free memory is known (MemAvailable), never None: psutil, read here
    independently, must give about the same number (other processes move it a little)."""
    psutil = pytest.importorskip("psutil")
    free = devices.free_memory_bytes("cpu")
    reference = psutil.virtual_memory().available
    assert isinstance(free, int) and free > 0
    assert free == pytest.approx(reference, rel=0.05, abs=256 * 2**20)


@pytest.mark.slow
def test_metas_torchrun_command_works_with_nnlib_build(tmp_path):
    """The learner ran `torchrun --nproc_per_node 1 example_text_completion.py ...` and died in
    Meta's build with "Distributed package doesn't have NCCL built in". The same launch with
    nnlib's Llama.build starts a gloo group on this CPU-only torch and generates."""
    import subprocess
    import sys

    script = tmp_path / "example_text_completion.py"
    script.write_text(
        "import torch.distributed as dist\n"
        "from nnlib.llama import Llama\n"
        "from nnlib import DATA_DIR\n"
        "llama = Llama.build(DATA_DIR / 'tiny-llama', max_seq_len=64, max_batch_size=2)\n"
        "out = llama.text_completion(['ROMEO:'], temperature=0.0, max_gen_len=4)\n"
        "print('backend', dist.get_backend(), 'text', repr(out[0]['generation']))\n"
        "dist.destroy_process_group()\n"
    )
    import socket

    with socket.socket() as s:  # a free port for torchrun's rendezvous (port 0 makes it wait forever)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                             "--master_addr", "127.0.0.1", "--master_port", str(port), str(script)],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backend gloo" in result.stdout


# ---- notebook 03's memory helpers at real size, without allocating anything -------------------


def test_memory_helpers_on_a_llama_3_2_1b_shaped_model_built_on_meta():
    """Llama 3.2 1B's shape (vocabulary 128,256, tied output) built on the ``meta`` device: no
    memory is allocated, yet the module's own tensors give an independent count that the
    notebook's helpers must match: 1.24B parameters, not the untied 1.50B."""
    from nnlib.llama import ModelArgs, Transformer

    shape = devices.LLAMA_3_2_MODELS["3.2-1B"]
    args = ModelArgs.from_dict(shape, max_seq_len=8, max_batch_size=1)
    with torch.device("meta"):
        model = Transformer(args)
        model.output.weight = model.tok_embeddings.weight  # tied, as in the checkpoint
    assert all(p.is_meta for p in model.parameters())
    assert model.num_parameters() == count_parameters(**shape) == 1_235_814_400
    mem = model_memory(shape, "bf16", max_seq_len=8192, max_batch_size=1)
    assert mem["weights"] == 2 * model.num_parameters()              # about 2.5 GB, not 3.0 GB
    # one token: keys and values of every layer, n_kv_heads x head_dim values each, 2 bytes
    cache = model.layers[0].attention.cache_k
    per_token = 2 * len(model.layers) * cache.shape[2] * cache.shape[3] * 2
    assert devices.kv_cache_bytes_per_token(shape, "bf16") == per_token == 32 * 1024
    assert mem["kv_cache"] == 8192 * per_token


def test_storage_by_format_explains_bits_per_weight():
    gguf = pytest.importorskip("gguf")
    q41 = gguf.GGMLQuantizationType.Q4_1
    q80 = gguf.GGMLQuantizationType.Q8_0
    block41, bytes41 = gguf.GGML_QUANT_SIZES[q41]   # 32 weights: 16 bytes of 4-bit codes + scale + min
    block80, bytes80 = gguf.GGML_QUANT_SIZES[q80]   # 32 weights: 32 bytes + scale
    tensors = [("Q4_1", 64 * block41, 64 * bytes41), ("Q4_1", 32 * block41, 32 * bytes41),
               ("Q8_0", 10 * block80, 10 * bytes80), ("F32", 100, 400)]
    table = devices.storage_by_format(tensors)
    assert list(table) == ["Q4_1", "Q8_0", "F32", "all"]
    assert table["Q4_1"]["bits_per_weight"] == 5.0 and table["Q4_1"]["tensors"] == 2
    assert table["Q8_0"]["bits_per_weight"] == 8.5
    assert table["F32"]["bits_per_weight"] == 32.0
    total_bytes = 96 * bytes41 + 10 * bytes80 + 400
    assert table["all"]["bytes"] == total_bytes
    with pytest.raises(ValueError, match="No tensors"):
        devices.storage_by_format([])


# ---- memory speed: the bytes a decode step reads, and how fast memory delivers them ---------------


def hand_count_decode_bytes(args) -> int:
    """From the shapes alone: every layer's seven matrices and two norms, the final norm and the
    output matrix, in float32. The embedding table adds nothing: tied, it is the output matrix;
    untied, the lookup reads one row of it."""
    d, kv = args.dim, args.n_kv_heads * args.head_dim
    layer = 2 * d * d + 2 * d * kv + 3 * d * ffn_hidden_dim(args) + 2 * d
    return 4 * (args.n_layers * layer + d + args.vocab_size * d)


@pytest.mark.parametrize("tied", [False, True], ids=["own-table", "tied"])
@pytest.mark.parametrize("packed", [False, True], ids=["as-built", "packed"])
def test_decode_bytes_per_token_counts_each_weight_once(tied, packed):
    args = ModelArgs(**SMALL_PARAMS, max_seq_len=8, max_batch_size=1)
    model = Transformer(args)
    if tied:
        model.output.weight = model.tok_embeddings.weight
    if packed:
        store_columnwise(model)  # wq|wk|wv and w1|w3 become views of shared buffers
    assert devices.decode_bytes_per_token(model) == hand_count_decode_bytes(args)


def test_read_bandwidth_is_bytes_over_the_fastest_sum(monkeypatch):
    ticks = iter([0.0, 0.5, 10.0, 10.25, 20.0, 20.4])  # three sums: 0.5 s, 0.25 s, 0.4 s
    monkeypatch.setattr(memory.time, "perf_counter", lambda: next(ticks))
    assert devices.read_bandwidth("cpu", megabytes=2, repeat=3) == 2 * 2**20 / 0.25


@pytest.mark.parametrize("kwargs", [{"megabytes": 0}, {"megabytes": 1.5}, {"repeat": 0},
                                    {"megabytes": True}])
def test_read_bandwidth_rejects_sizes_it_cannot_use(kwargs):
    with pytest.raises(ValueError, match="whole number >= 1"):
        devices.read_bandwidth("cpu", **kwargs)
