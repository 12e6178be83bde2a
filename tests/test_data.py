"""nnlib.data: the digits split and Nielsen's MNIST file format."""
from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from nnlib.data import load_digits, load_mnist, one_hot


def test_digits_layout_and_split():
    training, validation, test = load_digits()
    assert (len(training), len(validation), len(test)) == (1197, 300, 300)
    x, y = training[0]
    assert x.shape == (64, 1) and y.shape == (10, 1) and y.sum() == 1
    assert 0.0 <= min(x.min() for x, _ in training) and max(x.max() for x, _ in training) <= 1.0
    assert all(isinstance(label, int) and 0 <= label <= 9 for _, label in validation + test)


def test_digits_split_is_fixed():
    a, b = load_digits()[2], load_digits()[2]
    assert len(a) == len(b) == 300
    assert all(np.array_equal(x1, x2) and l1 == l2 for (x1, l1), (x2, l2) in zip(a, b, strict=True))


def test_digits_bad_split():
    with pytest.raises(ValueError, match="must leave training data"):
        load_digits(n_validation=1000, n_test=1000)


def test_one_hot():
    np.testing.assert_array_equal(one_hot(2, 4).ravel(), [0, 0, 1, 0])
    with pytest.raises(ValueError, match="outside"):
        one_hot(10)


def write_fake_mnist(path, sizes=(5, 3, 2)):
    """A file in Nielsen's format: gzip(pickle((train, valid, test))), each (float32 (n, 784), int labels)."""
    rng = np.random.default_rng(0)
    sets = tuple((rng.random((n, 784)).astype(np.float32), rng.integers(0, 10, n)) for n in sizes)
    with gzip.open(path, "wb") as f:
        pickle.dump(sets, f, protocol=2)
    return sets


def test_load_mnist_on_a_synthetic_file(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    sets = write_fake_mnist(path)
    training, validation, test = load_mnist(path)
    assert (len(training), len(validation), len(test)) == (5, 3, 2)
    x, y = training[1]
    assert x.shape == (784, 1) and y.shape == (10, 1)
    np.testing.assert_allclose(x.ravel(), sets[0][0][1])
    assert int(np.argmax(y)) == sets[0][1][1]
    assert [label for _, label in test] == list(sets[2][1])


def test_missing_mnist_says_what_and_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="mnist.pkl.gz.*Nielsen"):
        load_mnist(tmp_path / "nope.pkl.gz")


class Boom:
    def __reduce__(self):
        return (print, ("this ran code",))


def test_mnist_file_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(Boom(), f)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_mnist(path)
