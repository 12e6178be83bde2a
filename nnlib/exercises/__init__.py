"""Exercise checkers, one module per notebook, all returning a ``Verdict``.

- ``nnlib.exercises.sgd_from_scratch``         notebook 01
- ``nnlib.exercises.spacy_pipelines``          notebook 02
- ``nnlib.exercises.loading_llama``            notebook 03
- ``nnlib.exercises.step_through_generation``  notebook 04
- ``nnlib.exercises.inside_a_step``            notebook 05

Importing this package is cheap: each module imports numpy, torch or spaCy inside its checkers.
"""
from .verdict import Verdict

__all__ = ["Verdict"]
