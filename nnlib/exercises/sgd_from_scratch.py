"""Checkers for notebook 01 SGD from scratch: each runs the learner's function on cases it builds
itself, compares with a reference computed here, prints one line of feedback and returns a
``Verdict`` (truthy when right)."""
from __future__ import annotations

from typing import Any, Callable

from .verdict import Verdict, attempt, report


def check_sgd_update(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.1: ``fn(w, nabla_w, eta, m)`` returns the weights after one mini-batch step."""
    import numpy as np

    rng = np.random.default_rng(11)
    w, nw = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    ran, got = attempt(fn, w.copy(), nw.copy(), 0.5, 8)
    if not ran:
        return Verdict(False)
    want = w - (0.5 / 8) * nw
    if np.shape(got) != want.shape:
        return report(False, "", f"expected an array of shape {want.shape}, got {np.shape(got)}.")
    if np.allclose(got, w - 0.5 * nw):
        return report(False, "", "nabla_w is a *sum* over the mini-batch: divide by m.")
    if np.allclose(got, w + (0.5 / 8) * nw):
        return report(False, "", "step *against* the gradient: subtract it.")
    return report(np.allclose(got, want), "w - (eta/m) * nabla_w: a step of size eta down the "
                   "mean gradient.", "compare with the update line at the top of the notebook.")


def check_parameter_count(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.2: ``fn(sizes)`` returns how many weights and biases ``Network(sizes)`` has."""
    cases = [[784, 30, 10], [64, 30, 10], [2, 3, 1], [5, 5, 5, 5]]
    for sizes in cases:
        ran, got = attempt(fn, sizes)
        if not ran:
            return Verdict(False)
        want = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        if got != want:
            hint = ("the input layer has no biases" if got == want + sizes[0] else
                    "each layer l+1 has sizes[l+1] x sizes[l] weights and sizes[l+1] biases")
            return report(False, "", f"for {sizes} you said {got}; {hint}.")
    return report(True, "[784, 30, 10] has 23,860 numbers for SGD to tune.", "")


def check_cross_entropy_delta(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.3: ``fn(a, y, z)`` is the output error delta^L for the cross-entropy cost."""
    import numpy as np

    from nnlib.sgd import sigmoid, sigmoid_prime

    rng = np.random.default_rng(5)
    z = rng.standard_normal((10, 1)) * 2
    a = sigmoid(z)
    y = np.zeros((10, 1))
    y[3] = 1.0
    ran, got = attempt(fn, a, y, z)
    if not ran:
        return Verdict(False)
    if np.allclose(got, (a - y) * sigmoid_prime(z)):
        return report(False, "", "that is the quadratic cost's delta. For cross-entropy, "
                       "dC/da = (a - y) / (a (1 - a)); multiply by sigma'(z) and simplify.")
    return report(np.allclose(got, a - y), "delta = a - y: the sigma'(z) cancels, so a saturated "
                   "neuron that is wrong still learns fast.", "work out dC/da * sigma'(z) for "
                   "C = -[y ln a + (1 - y) ln(1 - a)].")


