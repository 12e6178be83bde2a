"""Handwritten digits in the layout Nielsen's ``network.py`` expects.

- ``load_digits()``: scikit-learn's bundled 8x8 digits (1,797 images, on disk with scikit-learn,
  no download), split with a fixed seed. Small enough to train on in seconds.
- ``load_mnist(path)``: Nielsen's own ``mnist.pkl.gz`` (28x28, 70,000 images) for a learner who
  has downloaded it; the same layout with 784 inputs.

The layout: training data is a list of ``(x, y)`` with ``x`` a column ``(n_in, 1)`` of floats in
[0, 1] and ``y`` a one-hot column ``(10, 1)``; validation and test data are lists of
``(x, label)`` with an ``int`` label, because ``Network.evaluate`` only needs the answer.
"""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

Split = tuple[list, list, list]


def one_hot(label: int, n: int = 10) -> np.ndarray:
    """A ``(n, 1)`` column with a 1.0 at ``label``: the target output for that digit."""
    if not 0 <= int(label) < n:
        raise ValueError(f"label {label} is outside 0..{n - 1}")
    e = np.zeros((n, 1))
    e[int(label)] = 1.0
    return e


def _to_layout(X: np.ndarray, y: np.ndarray, train: bool) -> list:
    cols = [x.reshape(-1, 1).astype(np.float64) for x in X]
    if train:
        return [(x, one_hot(t)) for x, t in zip(cols, y)]
    return [(x, int(t)) for x, t in zip(cols, y)]


def load_digits(n_validation: int = 300, n_test: int = 300, seed: int = 0) -> Split:
    """``(training, validation, test)`` from scikit-learn's 8x8 digits, pixels scaled to [0, 1].

    The split is a seeded permutation, so every learner (and every test) sees the same sets:
    1,197 / 300 / 300 images by default.
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    X = bunch.data / 16.0  # pixels are 0..16 in this set
    y = bunch.target
    if n_validation < 0 or n_test < 0 or n_validation + n_test >= len(X):
        raise ValueError(f"n_validation + n_test must leave training data: there are {len(X)} "
                         f"images, asked for {n_validation} + {n_test}.")
    order = np.random.default_rng(seed).permutation(len(X))
    X, y = X[order], y[order]
    n_train = len(X) - n_validation - n_test
    val_end = n_train + n_validation
    return (_to_layout(X[:n_train], y[:n_train], True),
            _to_layout(X[n_train:val_end], y[n_train:val_end], False),
            _to_layout(X[val_end:], y[val_end:], False))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle arrays and nothing else: a pickle can run any code, and this file came from the
    internet. Only the classes numpy needs to rebuild an array are allowed."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # how protocol-2 pickles store an array's raw bytes; harmless
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's own signature
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from the MNIST file: it should hold numpy arrays "
            "only. Is this really Nielsen's mnist.pkl.gz?")


def load_mnist(path: str | Path = "mnist.pkl.gz") -> Split:
    """``(training, validation, test)`` from Nielsen's ``mnist.pkl.gz`` (50,000 / 10,000 / 10,000).

    The file is a gzipped pickle of three ``(images (n, 784) float32, labels (n,) int)`` pairs,
    written by Python 2, hence ``encoding="latin1"``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No MNIST file at {path}. It is 'mnist.pkl.gz' (17 MB) from the data/ folder of "
            "Michael Nielsen's repository 'neural-networks-and-deep-learning' on GitHub; download "
            "it once and pass its path. Until then, load_digits() gives a small offline stand-in.")
    with gzip.open(path, "rb") as f:
        sets = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    if not (isinstance(sets, tuple) and len(sets) == 3):
        raise ValueError(f"{path} does not hold (training, validation, test) as Nielsen's file does.")
    (tx, ty), (vx, vy), (sx, sy) = sets
    return _to_layout(tx, ty, True), _to_layout(vx, vy, False), _to_layout(sx, sy, False)
