"""Notebook widgets, one module per explorer (ipywidgets is imported only there).

- ``nnlib.widgets.learning_rate``  ``LearningRateExplorer`` (notebook 01)
- ``nnlib.widgets.sentence``       ``SentenceExplorer`` (notebook 02)
- ``nnlib.widgets.generation``     ``GenerationExplorer`` (notebook 04)

``from nnlib.widgets import GenerationExplorer`` still works: each name is looked up on first use,
so a notebook imports only the module of the explorer it uses: ``LearningRateExplorer`` and
``SentenceExplorer`` import neither torch nor spaCy (the pipelines are passed in), and only
``GenerationExplorer``'s module imports torch and nnlib.llama.
"""
from importlib import import_module
from typing import Any

_HOMES = {
    "LearningRateExplorer": "learning_rate",
    "GenerationExplorer": "generation",
    "SentenceExplorer": "sentence",
}

__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'nnlib.widgets' has no attribute {name!r}")
    return getattr(import_module(f".{_HOMES[name]}", __name__), name)
