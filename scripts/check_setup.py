"""Pre-flight for a workshop: can this laptop run the series? Send it to learners before the day.

    python scripts/check_setup.py        # Windows: py scripts/check_setup.py

It needs nothing installed (standard library only, no make) and changes nothing. It checks what
the install needs (Python version, a torch build for this machine, disk space) and what the
notebooks need to run (memory, cores); when the series is already installed in `.venv`, it also
runs `python -m nnlib.check_setup` there, which checks every notebook's packages, files and the
widgets' front end. Each problem is printed with its fix; the last line says ready or not.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from install import has_nvidia_gpu, stamp, torch_plan, venv_python  # noqa: E402

GB = 1e9
#: The install: about 2 GB of environment, and pip's downloads beside it while installing.
DISK_NEEDED_GB = 4.5
#: The heaviest notebook (03b) peaks at about 1.6 GB; JupyterLab and a browser need their share.
MEMORY_NEEDED_GB = 4.0


def required_python(root: Path = ROOT) -> tuple[int, int]:
    spec = tomllib.loads((root / "pyproject.toml").read_text())["project"]["requires-python"]
    major, minor = re.search(r">=\s*(\d+)\.(\d+)", spec).groups()
    return int(major), int(minor)


def total_memory_bytes() -> int | None:
    """This machine's memory, by the means each system offers; None when it cannot be told."""
    if sys.platform == "darwin":
        try:
            return int(subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True,
                                      text=True, check=True).stdout)
        except (OSError, ValueError, subprocess.CalledProcessError):
            return None
    if os.name == "nt":
        class Status(ctypes.Structure):
            _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong),
                        ("total", ctypes.c_ulonglong), ("available", ctypes.c_ulonglong),
                        ("page_total", ctypes.c_ulonglong), ("page_free", ctypes.c_ulonglong),
                        ("virtual_total", ctypes.c_ulonglong), ("virtual_free", ctypes.c_ulonglong),
                        ("extended", ctypes.c_ulonglong)]
        status = Status(length=ctypes.sizeof(Status))
        return status.total if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)) else None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def checks(version: tuple[int, int], system: str, machine: str, nvidia: bool, memory: int | None,
           disk_free: int, cores: int | None, needed: tuple[int, int]) -> list[tuple[bool, str]]:
    """(ok, line) per check, from the facts: pure, so each machine's verdict can be tested."""
    out = []
    py = f"{version[0]}.{version[1]}"
    out.append((version >= needed, f"Python {py}" + ("" if version >= needed else
               f": the series needs {needed[0]}.{needed[1]} or newer. Install it from python.org "
               "(or your package manager) and run this again with it.")))
    plan = torch_plan(system, machine, nvidia)
    out.append((plan.supported, f"torch for {system} {machine}: {plan.why}"))
    out.append((disk_free >= DISK_NEEDED_GB * GB, f"disk: {disk_free / GB:.1f} GB free here" + (
        "" if disk_free >= DISK_NEEDED_GB * GB else
        f"; the install needs about {DISK_NEEDED_GB:g} GB. Free some space first.")))
    if memory is None:
        out.append((True, "memory: cannot tell on this system; about 4 GB is enough"))
    else:
        ok = memory >= MEMORY_NEEDED_GB * GB
        out.append((ok, f"memory: {memory / GB:.1f} GB" + ("" if ok else
                   "; the heaviest notebook needs about 1.6 GB on top of the browser and "
                   "JupyterLab. Close other programs, run one notebook at a time, or use Colab.")))
    out.append((True, f"CPU cores: {cores or 'unknown'} (every notebook runs on one or two)"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    args = parser.parse_args(argv)
    results = checks(sys.version_info[:2], platform.system(), platform.machine(), has_nvidia_gpu(),
                     total_memory_bytes(), shutil.disk_usage(ROOT).free, os.cpu_count(),
                     required_python())
    for ok, line in results:
        print(("  ok    " if ok else "  FIX   ") + line)
    ready = all(ok for ok, _ in results)
    python = venv_python(args.venv)
    installed = python.exists() and any(stamp(args.venv, use).exists() for use in ("lab", "test"))
    if not installed:
        print("The series is not installed yet: `make lab` (or `python scripts/install.py lab`) "
              "installs it; run this again afterwards to check every notebook's needs.")
        print("Ready to install." if ready else "Not ready: fix the lines marked FIX first.")
        return 0 if ready else 1
    print(f"Installed in {args.venv}; checking every notebook's needs there:", flush=True)
    inner = subprocess.run([str(python), "-m", "nnlib.check_setup"], cwd=ROOT)
    return 0 if ready and inner.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
