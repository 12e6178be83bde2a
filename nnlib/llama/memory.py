"""How much memory a Llama needs and how fast it streams: the published shapes of Meta's models,
parameter and byte counts (from ``weights.weight_shapes``, the one shape table), the KV cache, the
free memory of a device, and the read bandwidth that bounds a decode step.

Split from ``devices`` (which picks the device and dtype): nothing here chooses anything.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from .model import ModelArgs
from .weights import is_tied, parameter_count

DeviceLike = str | torch.device | None

#: Bytes per parameter for the formats the notebooks compare (int4: two weights per byte).
BYTES_PER_PARAM = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "int8": 1.0, "int4": 0.5}

#: The published shapes of Meta's models (params.json) used by the memory table. Keys are short;
#: ``MODEL_LABELS`` names each one fully: "70B" is Llama 3 70B (vocabulary 128,256), whose
#: parameter count differs from Llama 2 70B's ("2-70B", vocabulary 32,000).
KNOWN_MODELS: dict[str, dict[str, Any]] = {
    "7B": dict(dim=4096, n_layers=32, n_heads=32, n_kv_heads=32, vocab_size=32000,
               multiple_of=256, ffn_dim_multiplier=None),                      # Llama 2 7B
    "13B": dict(dim=5120, n_layers=40, n_heads=40, n_kv_heads=40, vocab_size=32000,
                multiple_of=256, ffn_dim_multiplier=None),                     # Llama 2 13B
    "2-70B": dict(dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, vocab_size=32000,
                  multiple_of=4096, ffn_dim_multiplier=1.3),                   # Llama 2 70B
    "8B": dict(dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, vocab_size=128256,
               multiple_of=1024, ffn_dim_multiplier=1.3),                      # Llama 3 8B
    "70B": dict(dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, vocab_size=128256,
                multiple_of=4096, ffn_dim_multiplier=1.3),                     # Llama 3 70B
}
MODEL_LABELS = {"7B": "Llama 2 7B", "13B": "Llama 2 13B", "2-70B": "Llama 2 70B",
                "8B": "Llama 3 8B", "70B": "Llama 3 70B"}

#: Llama 3.2's small models: their output matrix *is* the embedding matrix (tied), which the
#: parameter count must count once. Meta's params.json does not say so; the shape does.
LLAMA_3_2_MODELS: dict[str, dict[str, Any]] = {
    "3.2-1B": dict(dim=2048, n_layers=16, n_heads=32, n_kv_heads=8, vocab_size=128256,
                   multiple_of=256, ffn_dim_multiplier=1.5, tied_embeddings=True),
    "3.2-3B": dict(dim=3072, n_layers=28, n_heads=24, n_kv_heads=8, vocab_size=128256,
                   multiple_of=256, ffn_dim_multiplier=1.0, tied_embeddings=True),
}

#: The short name (a key of BYTES_PER_PARAM) of each torch dtype a Llama runs in.
SHORT_DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def short_dtype_name(dtype: torch.dtype) -> str:
    """'fp32', 'bf16' or 'fp16' for a torch dtype: the names the memory arithmetic uses."""
    if dtype not in SHORT_DTYPE_NAMES:
        raise ValueError(f"{dtype} is not a dtype a Llama runs in here; use one of "
                         f"{[str(d) for d in SHORT_DTYPE_NAMES]}.")
    return SHORT_DTYPE_NAMES[dtype]


def format_of_bytes(bytes_per_value: float) -> str:
    """The first format in BYTES_PER_PARAM with this many bytes per value (2 -> 'bf16')."""
    for name, n in BYTES_PER_PARAM.items():
        if n == bytes_per_value:
            return name
    raise ValueError(f"No format stores a value in {bytes_per_value!r} bytes; "
                     f"use one of {sorted(set(BYTES_PER_PARAM.values()))}.")


def is_llama_3_2_shape(params: dict[str, Any]) -> bool:
    """Whether ``params`` (params.json values) have the shape of Llama 3.2 1B or 3B."""
    keys = ("dim", "n_layers", "n_heads", "n_kv_heads")
    return any(all(params.get(k) == shape[k] for k in keys) for shape in LLAMA_3_2_MODELS.values())


def count_parameters(dim: int, n_layers: int, n_heads: int, vocab_size: int,
                     n_kv_heads: int | None = None, multiple_of: int = 256,
                     ffn_dim_multiplier: float | None = None, tied_embeddings: bool = False,
                     **_: Any) -> int:
    """Parameters of a Llama with these ``params.json`` values. With ``tied_embeddings`` (Llama
    3.2 1B/3B) the output matrix is the embedding matrix and counts once."""
    args = ModelArgs(dim=dim, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads or n_heads,
                     vocab_size=vocab_size, multiple_of=multiple_of,
                     ffn_dim_multiplier=ffn_dim_multiplier, max_seq_len=1, max_batch_size=1)
    return parameter_count(args, tied_embeddings)  # the one shape table, summed


def weight_bytes(n_params: int, dtype: str = "bf16") -> int:
    """Bytes for the weights alone in ``dtype`` (fp32, bf16, fp16, int8, int4)."""
    if dtype not in BYTES_PER_PARAM:
        raise ValueError(f"Unknown dtype {dtype!r}; use one of {list(BYTES_PER_PARAM)}.")
    return int(n_params * BYTES_PER_PARAM[dtype])


def kv_cache_bytes(n_layers: int, dim: int, n_heads: int, max_seq_len: int, max_batch_size: int,
                   n_kv_heads: int | None = None, dtype: str = "bf16", **_: Any) -> int:
    """Bytes of the KV cache: keys and values, every layer, every position, every batch row:
    2 * n_layers * max_batch_size * max_seq_len * n_kv_heads * head_dim * bytes."""
    if dtype not in BYTES_PER_PARAM:
        raise ValueError(f"Unknown dtype {dtype!r}; use one of {list(BYTES_PER_PARAM)}.")
    n_kv = n_kv_heads or n_heads
    elems = 2 * n_layers * max_batch_size * max_seq_len * n_kv * (dim // n_heads)
    return int(elems * BYTES_PER_PARAM[dtype])


def kv_cache_bytes_per_token(shape: dict[str, Any], dtype: str = "bf16") -> int:
    """Bytes the KV cache grows by per token of one sequence: ``kv_cache_bytes`` with
    ``max_seq_len = max_batch_size = 1`` (the one formula, reused)."""
    return kv_cache_bytes(max_seq_len=1, max_batch_size=1, dtype=dtype, **shape)


def storage_by_format(tensors: Iterable[tuple[str, int, int]]) -> dict[str, dict[str, float]]:
    """How a (quantized) file stores its weights: ``tensors`` are ``(format, n_weights, n_bytes)``
    per tensor (a GGUF reader's ``tensor_type.name``, ``n_elements``, ``n_bytes``). Returns per
    format ``{"tensors", "weights", "bytes", "bits_per_weight"}``, plus ``"all"``: why a Q4_1
    file is not 4 bits per weight (each block of 32 weights also stores a scale and a minimum;
    some tensors keep more bits)."""
    out: dict[str, dict[str, float]] = {}
    for fmt, n, nbytes in tensors:
        for key in (str(fmt), "all"):
            row = out.setdefault(key, {"tensors": 0, "weights": 0, "bytes": 0})
            row["tensors"] += 1
            row["weights"] += int(n)
            row["bytes"] += int(nbytes)
    if not out:
        raise ValueError("No tensors given: pass (format, n_weights, n_bytes) for each tensor.")
    for row in out.values():
        row["bits_per_weight"] = 8 * row["bytes"] / row["weights"]
    return dict(sorted(out.items(), key=lambda kv: (kv[0] == "all", -kv[1]["weights"])))


def model_memory(model: str = "7B", dtype: str = "bf16", max_seq_len: int = 2048,
                 max_batch_size: int = 1, kv_dtype: str | None = None) -> dict[str, int]:
    """Memory for one of ``KNOWN_MODELS`` ('7B', '13B', '2-70B', '8B', '70B'), ``LLAMA_3_2_MODELS``
    ('3.2-1B', '3.2-3B') or a params dict (``tied_embeddings=True`` counts the output once):
    ``{"params", "weights", "kv_cache", "total"}`` in parameters / bytes. The KV cache is kept in
    ``kv_dtype`` (default: ``dtype``, but never below 16 bits, as quantised weights still cache
    activations in 16 bits)."""
    known = {**KNOWN_MODELS, **LLAMA_3_2_MODELS}
    if isinstance(model, str) and model not in known:
        raise ValueError(f"Unknown model {model!r}; use one of {list(known)} or a params dict.")
    shape = known[model] if isinstance(model, str) else model
    n = count_parameters(**shape)
    kv_dtype = kv_dtype or (dtype if dtype in ("fp32", "bf16", "fp16") else "bf16")
    w = weight_bytes(n, dtype)
    kv = kv_cache_bytes(max_seq_len=max_seq_len, max_batch_size=max_batch_size, dtype=kv_dtype, **shape)
    return {"params": n, "weights": w, "kv_cache": kv, "total": w + kv}


def memory_table(max_seq_len: int = 2048, max_batch_size: int = 1) -> list[dict[str, Any]]:
    """Rows of (model key, its full label, dtype, GB of weights, GB of KV cache, GB in total) for
    the notebook's table."""
    rows = []
    for name in KNOWN_MODELS:
        for dt in BYTES_PER_PARAM:
            m = model_memory(name, dt, max_seq_len, max_batch_size)
            rows.append({"model": name, "label": MODEL_LABELS[name], "dtype": dt,
                         "params_B": m["params"] / 1e9,
                         "weights_GB": m["weights"] / 1e9, "kv_cache_GB": m["kv_cache"] / 1e9,
                         "total_GB": m["total"] / 1e9})
    return rows


def free_memory_bytes(device: DeviceLike = "cpu") -> int | None:
    """Free memory on ``device`` in bytes, or None when it cannot be told.

    - cuda: what the driver says is free on that GPU;
    - cpu: Linux's ``MemAvailable``; on macOS, which has neither /proc/meminfo nor
      ``SC_AVPHYS_PAGES``, ``vm_stat``'s free + inactive + speculative pages (``macos_free_bytes``);
      elsewhere the free pages ``sysconf`` reports;
    - mps: the Mac's memory is shared by CPU and GPU, so the CPU's free memory, but no more than
      Metal's recommended working set minus what this process's Metal driver already holds
      (``torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()``), where torch
      has those calls.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free)
    if dev.type == "cpu":
        return host_free_bytes()
    if dev.type == "mps":
        host = host_free_bytes()
        metal = mps_headroom_bytes()
        known = [n for n in (host, metal) if n is not None]
        return min(known) if known else None
    return None


def host_free_bytes() -> int | None:
    """Free (available) main memory in bytes, or None where it cannot be told (see
    ``free_memory_bytes``)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    if sys.platform == "darwin":
        return macos_free_bytes()
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


#: ``vm_stat``'s page counts that a new allocation can take without swapping: free pages,
#: inactive ones (macOS reclaims them first) and speculative ones (read-ahead file pages).
VM_STAT_AVAILABLE = ("Pages free", "Pages inactive", "Pages speculative")


def parse_vm_stat(text: str) -> int | None:
    """Available bytes from the text ``vm_stat`` prints on macOS: the pages named in
    ``VM_STAT_AVAILABLE`` times the page size of its first line ("Mach Virtual Memory
    Statistics: (page size of 16384 bytes)"). None when the text does not have them."""
    size = re.search(r"page size of (\d+) bytes", text)
    counts = dict(re.findall(r"^([A-Za-z][^:\n]*):\s+(\d+)\.?\s*$", text, flags=re.MULTILINE))
    if size is None or not all(name in counts for name in VM_STAT_AVAILABLE):
        return None
    return int(size.group(1)) * sum(int(counts[name]) for name in VM_STAT_AVAILABLE)


def macos_free_bytes() -> int | None:
    """Available memory on macOS from ``vm_stat`` (part of every macOS; no extra package)."""
    try:
        out = subprocess.run(["vm_stat"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_vm_stat(out.stdout)


def mps_headroom_bytes() -> int | None:
    """What Metal still recommends this process may allocate: the recommended working set
    (about two thirds to three quarters of a Mac's memory) minus what its driver holds already.
    None where this torch has no such calls or MPS cannot answer."""
    mps = getattr(torch, "mps", None)
    try:
        return int(mps.recommended_max_memory()) - int(mps.driver_allocated_memory())
    except (AttributeError, RuntimeError):
        return None


#: What torch's MPS allocator says when an allocation does not fit.
MPS_OOM_MESSAGE = "MPS backend out of memory"


@contextlib.contextmanager
def explain_out_of_memory(device: DeviceLike, what: str) -> Iterator[None]:
    """Turn MPS's out-of-memory RuntimeError raised inside the block into a MemoryError that
    says what happened and what to do, chained to torch's error (``raise ... from``).

    Why: on a Mac the GPU shares memory with everything else, so the memory check made before
    loading can pass and the allocation still fail; torch's message then names allocator
    numbers, not the notebook's own knobs."""
    try:
        yield
    except RuntimeError as err:
        if MPS_OOM_MESSAGE not in str(err):
            raise
        raise MemoryError(
            f"{device} ran out of memory while {what}. The Mac's GPU (MPS) shares its memory with "
            "every other program, so the earlier check can pass and the allocation still fail. "
            "What to do: pass a smaller max_seq_len or max_batch_size (the KV cache grows with "
            "both), load in float16 instead of float32, close other notebooks and programs, or "
            "start Python with PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0 to lift torch's MPS limit (the "
            f"Mac may then swap or freeze). torch said: {str(err).splitlines()[0]}") from err


# ---- memory speed: what bounds a decode step -----------------------------------------------------


def synchronize(device: DeviceLike = "cpu") -> None:
    """Wait until ``device`` has finished the work queued on it. CUDA and MPS run torch's calls
    asynchronously, so without this a timer stops when the work is queued, not when it is done."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def decode_bytes_per_token(model: torch.nn.Module) -> int:
    """Bytes of weights one decode step of a ``Transformer`` reads: every parameter once (a tensor
    shared under two names counts once), except an embedding table of its own, of which the
    lookup reads one row (left out: a few KB). Tied to the output layer (SmolLM2, Llama 3.2), the
    table is read in full there."""
    unique = {(p.data_ptr(), p.numel()): p.numel() * p.element_size() for p in model.parameters()}
    table = model.tok_embeddings.weight
    if not is_tied(model):
        unique.pop((table.data_ptr(), table.numel()))
    return sum(unique.values())


def read_bandwidth(device: DeviceLike = "cpu", megabytes: int = 256, repeat: int = 5) -> float:
    """Bytes per second that ``torch.sum`` streams from ``device``'s memory: the fastest of
    ``repeat`` sums over a float32 buffer of ``megabytes`` MiB (by default far larger than a CPU's
    caches). A decode step reads every weight once per token, so it takes at least
    ``decode_bytes_per_token(model) / read_bandwidth(device)`` seconds."""
    if isinstance(megabytes, bool) or not isinstance(megabytes, int) or megabytes < 1:
        raise ValueError(f"megabytes must be a whole number >= 1, got {megabytes!r}.")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be a whole number >= 1, got {repeat!r}.")
    buf = torch.ones(megabytes * 2**20 // 4, device=device)
    buf.sum()  # the first touch maps the pages; not timed
    synchronize(device)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        buf.sum()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return buf.numel() * buf.element_size() / best
