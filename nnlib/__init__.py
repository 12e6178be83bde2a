"""nnlib: the small support package for the notebook series "From SGD to Llama".

Modules, one per topic, each importable on its own (importing ``nnlib`` itself is cheap: it pulls
in neither torch nor spaCy):

- ``nnlib.data``      the digits (and MNIST, if you have it) in Nielsen's layout
- ``nnlib.sgd``       a network trained by mini-batch SGD in numpy, with Nielsen's names
- ``nnlib.nlp``       spaCy pipelines, found offline
- ``nnlib.llama``     a readable Llama in Meta's names: load, place on a device, generate
- ``nnlib.widgets``   notebook widgets; ``nnlib.plots`` shared plots; ``nnlib.exercises`` checkers;
                    ``nnlib.progress`` tqdm bars whose saved text is the finished bar
"""
from pathlib import Path

__version__ = "0.1.0"

#: The ``data/`` folder that ships with the series (the tiny Llama, small labelled sets).
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
