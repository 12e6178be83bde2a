"""How long a notebook took and how much memory it held at its peak: the line its last cell prints.

The README's run times and peak memory come from this line, so every notebook measures the same
way: wall-clock seconds since ``RunClock()`` was made (the notebook's first code cell), and the
process's peak resident memory as the operating system counts it. Not a profiler: one number each.
"""
from __future__ import annotations

import os
import sys
import time


def peak_memory_mib() -> float | None:
    """The process's peak resident set size in MiB, or None where the OS does not say (Windows).

    ``ru_maxrss`` is in KiB on Linux but in bytes on macOS; this is the one place that knows."""
    try:
        import resource  # Unix only: Windows has no such module
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity where the OS tells it (Linux; a container's
    or Binder's limit shows there), else ``os.cpu_count()``, which counts every logical CPU
    (hyper-threads too) of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class RunClock:
    """Started when made; ``report()`` is the closing line: seconds, the logical CPUs it could
    use (``usable_cpus``), peak memory."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def report(self, holding: str = "") -> str:
        """``holding`` says what was in memory at the peak (e.g. "both pipelines loaded")."""
        peak = peak_memory_mib()
        memory = "peak memory not measured on this system" if peak is None else f"peak memory {peak:.0f} MiB"
        if peak is not None and holding:
            memory += f" ({holding})"
        return f"whole notebook: {self.seconds():.1f} s on {usable_cpus()} logical CPUs, {memory}"
