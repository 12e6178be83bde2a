"""The closing line every notebook prints: peak memory against the kernel's own count, Windows."""
import builtins
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from nnlib.run_report import RunClock, peak_memory_mib


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_peak_memory_matches_the_kernels_high_water_mark():
    block = np.ones(64 * 2**20 // 8)  # 64 MiB touched, so the peak is well above Python's own
    status = Path("/proc/self/status").read_text()
    vm_hwm_kib = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))
    assert peak_memory_mib() == pytest.approx(vm_hwm_kib / 1024, rel=0.02)
    assert peak_memory_mib() > 64
    del block


def test_report_without_resource_module_says_so(monkeypatch):
    real_import = builtins.__import__

    def no_resource(name, *args, **kwargs):
        if name == "resource":
            raise ImportError("No module named 'resource'")  # as on Windows
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "resource", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_resource)
    assert peak_memory_mib() is None
    line = RunClock().report("both pipelines loaded")
    assert line.endswith("peak memory not measured on this system")


def test_report_names_what_was_held():
    line = RunClock().report("both pipelines loaded")
    assert re.fullmatch(r"whole notebook: \d+\.\d s on \d+ logical CPUs, peak memory \d+ MiB "
                        r"\(both pipelines loaded\)", line), line


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_getaffinity"), reason="Linux only")
def test_usable_cpus_follows_the_affinity_a_container_sets():
    import os

    from nnlib.run_report import usable_cpus

    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})  # as a one-CPU container would
        assert usable_cpus() == 1
    finally:
        os.sched_setaffinity(0, before)
    assert usable_cpus() == len(before)
