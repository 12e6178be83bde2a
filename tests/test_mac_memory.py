"""The seed's Mac: free memory without /proc/meminfo (``vm_stat``), MPS's own headroom, the memory
check of ``Llama.build`` working there, and MPS running out of memory explained as a MemoryError."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from nnlib.llama import load_tiny, memory
from nnlib.llama.model import Transformer

#: vm_stat's output on an Apple-silicon Mac (16 KiB pages), in its own format.
VM_STAT = """\
Mach Virtual Memory Statistics: (page size of 16384 bytes)
Pages free:                               12345.
Pages active:                            234567.
Pages inactive:                          200000.
Pages speculative:                         5000.
Pages throttled:                              0.
Pages wired down:                         90000.
Pages purgeable:                           1000.
"Translation faults":                 123456789.
Pages copy-on-write:                    1234567.
Pages stored in compressor:               50000.
Pages occupied by compressor:             20000.
Swapins:                                      0.
Swapouts:                                     0.
"""
#: (12345 free + 200000 inactive + 5000 speculative) pages * 16384 bytes, worked out by hand.
VM_STAT_AVAILABLE = 3_560_980_480


@pytest.fixture
def a_mac(monkeypatch):
    """No /proc/meminfo, sys.platform 'darwin', and ``vm_stat`` answering with ``VM_STAT``
    (a test may set ``calls["text"]`` to another answer)."""
    calls = {"text": VM_STAT, "args": []}

    def no_proc(path, *args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", path)

    def run(args, **kwargs):
        calls["args"].append(args)
        return subprocess.CompletedProcess(args, 0, stdout=calls["text"], stderr="")

    monkeypatch.setattr(memory, "open", no_proc, raising=False)
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(subprocess, "run", run)
    return calls


def test_vm_stat_counts_free_inactive_and_speculative_pages():
    assert memory.parse_vm_stat(VM_STAT) == VM_STAT_AVAILABLE
    assert memory.parse_vm_stat("Pages free: 10.\n") is None  # no page size: cannot tell


def test_on_a_mac_the_cpus_free_memory_comes_from_vm_stat(a_mac):
    assert memory.free_memory_bytes("cpu") == VM_STAT_AVAILABLE
    assert a_mac["args"] == [["vm_stat"]]


def test_without_vm_stat_free_memory_is_unknown_not_wrong(a_mac, monkeypatch):
    def missing(args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", args[0])

    monkeypatch.setattr(subprocess, "run", missing)
    assert memory.free_memory_bytes("cpu") is None


def test_mps_free_memory_is_the_smaller_of_the_macs_and_metals(a_mac, monkeypatch):
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 5 * 2**30, raising=False)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 2**30, raising=False)
    assert memory.free_memory_bytes("mps") == min(VM_STAT_AVAILABLE, 4 * 2**30)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 4 * 2**30 + 2**29, raising=False)
    assert memory.free_memory_bytes("mps") == 2**29   # Metal's headroom is now the smaller


def test_the_seeds_mac_gets_the_memory_check(a_mac):
    a_mac["text"] = VM_STAT.replace("12345.", "10.").replace("200000.", "20.").replace("5000.", "30.")
    with pytest.raises(MemoryError, match=r"only 0\.0 GB is free"):   # 60 pages = 0.98 MB
        load_tiny(device="cpu")


MPS_OOM = ("MPS backend out of memory (MPS allocated: 17.10 GB, other allocations: 1.23 GB, max allowed: "
           "18.13 GB). Tried to allocate 256.00 MB on private pool. Use PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0 "
           "to disable upper limit for memory allocations (may cause system failure).")


def test_mps_out_of_memory_becomes_a_memory_error_saying_what_to_do(monkeypatch):
    def out_of_memory(self, device=None, dtype=None):
        raise RuntimeError(MPS_OOM)

    monkeypatch.setattr(Transformer, "reset_buffers", out_of_memory)
    with pytest.raises(MemoryError) as info:
        load_tiny(device="cpu", max_seq_len=256, max_batch_size=8)
    message = str(info.value)
    assert "allocating the KV cache (max_batch_size=8, max_seq_len=256)" in message
    for advice in ("smaller max_seq_len or max_batch_size", "float16", "close other notebooks",
                   "PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0"):
        assert advice in message
    assert isinstance(info.value.__cause__, RuntimeError) and str(info.value.__cause__) == MPS_OOM


def test_moving_the_weights_is_covered_too_and_other_errors_pass_through():
    with pytest.raises(MemoryError, match="moving the weights") as info:
        with memory.explain_out_of_memory("mps", "moving the weights there in torch.float16"):
            raise RuntimeError(MPS_OOM)
    assert info.value.__cause__ is not None
    with pytest.raises(RuntimeError, match="Placeholder storage"):
        with memory.explain_out_of_memory("mps", "moving the weights"):
            raise RuntimeError("Placeholder storage has not been allocated on MPS device!")
