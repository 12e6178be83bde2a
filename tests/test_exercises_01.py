"""The backprop exercise of notebook 01: a right answer passes, each typical mistake is named by
its equation (BP1-BP4, the batch sum), a stub is "not attempted yet". The answers here are
written from the equations, not from nnlib."""
from __future__ import annotations

import numpy as np
import pytest

from nnlib.exercises.sgd_from_scratch import check_backprop_matrix
from nnlib.exercises.verdict import Verdict


def sigma(z):
    return 1 / (1 + np.exp(-z))


def refused(verdict) -> bool:
    """A false ``Verdict``: what a checker returns for a wrong answer (None would not do)."""
    return isinstance(verdict, Verdict) and not verdict


def make_backprop(bp1=True, bp2_prime="right", bias_sum=True, bp4="right",
                  mean=False):
    """A matrix-form backprop with one mistake switched on."""
    def backprop(weights, biases, X, Y):
        activations, zs, a = [X], [], X
        for w, b in zip(weights, biases):
            z = w @ a + b
            a = sigma(z)
            zs.append(z)
            activations.append(a)
        L = len(weights)
        nabla_b, nabla_w = [None] * L, [None] * L
        delta = (activations[-1] - Y) * (sigma(zs[-1]) * (1 - sigma(zs[-1])) if bp1 else 1)
        for k in range(L - 1, -1, -1):
            if k < L - 1:
                back = weights[k + 1].T @ delta
                prime = {"right": sigma(zs[k]) * (1 - sigma(zs[k])), "sigma": sigma(zs[k]),
                         "none": 1.0}[bp2_prime]
                delta = back * prime
            nabla_b[k] = delta.sum(axis=1, keepdims=True) if bias_sum else delta
            a_prev = activations[k] if bp4 != "this layer" else activations[k + 1]
            nabla_w[k] = delta @ a_prev.T if bp4 != "transposed" else (delta @ a_prev.T).T
            if bp4 == "this layer":
                nabla_w[k] = delta @ activations[k].T * 1.5
            if mean:
                nabla_b[k], nabla_w[k] = nabla_b[k] / X.shape[1], nabla_w[k] / X.shape[1]
        return nabla_b, nabla_w
    return backprop


def test_right_answer_passes(capsys):
    verdict = check_backprop_matrix(make_backprop())
    assert isinstance(verdict, Verdict) and verdict
    assert capsys.readouterr().out.startswith("Right!")


@pytest.mark.parametrize("mistake, named", [
    (dict(bp1=False), "BP1"),
    (dict(bp2_prime="none"), "BP2"),
    (dict(bp2_prime="sigma"), "BP2"),
    (dict(bias_sum=False), "summed over the batch axis"),
    (dict(bp4="transposed"), "transposed"),
    (dict(bp4="this layer"), "BP4"),
    (dict(mean=True), "*mean*"),
])
def test_each_mistake_is_named(capsys, mistake, named):
    assert refused(check_backprop_matrix(make_backprop(**mistake)))
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and named in out, out


def test_bias_sum_pitfall_is_named_as_bp3(capsys):
    assert refused(check_backprop_matrix(make_backprop(bias_sum=False)))
    assert "BP3" in capsys.readouterr().out


def test_stub_is_not_attempted(capsys):
    def backprop_matrix(weights, biases, X, Y):
        raise NotImplementedError

    assert refused(check_backprop_matrix(backprop_matrix))
    assert "Not attempted yet" in capsys.readouterr().out


def test_wrong_shape_of_answer(capsys):
    assert refused(check_backprop_matrix(lambda w, b, X, Y: [np.zeros(1)]))
    assert "pair" in capsys.readouterr().out


def _diverges(xs, eta, average, steps=400):
    """Gradient descent on C(w) = sum_j 1/2 (w x_j - 1)^2 (or its mean), from w = 0, written here
    from scratch: does |w - w*| grow?"""
    w_star = np.sum(xs) / np.sum(xs ** 2)
    w = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            g = np.sum((w * xs - 1.0) * xs)
            w -= (eta / len(xs) if average else eta) * g
    return not abs(w - w_star) <= abs(w_star)  # nan (overflowed) counts as diverged


def _threshold_by_bisection(xs, average):
    """The stability limit found by running descent, not from a formula."""
    low, high = 1e-6, 100.0
    for _ in range(80):
        mid = (low + high) / 2
        low, high = (low, mid) if _diverges(xs, mid, average) else (mid, high)
    return (low + high) / 2


def test_stable_eta_checker_agrees_with_the_limit_found_by_running(capsys):
    from nnlib.exercises.sgd_from_scratch import check_largest_stable_eta

    assert check_largest_stable_eta(_threshold_by_bisection)
    out = capsys.readouterr().out
    assert out.startswith("Right!") and "0.95 x" in out


def test_sum_band_checker_accepts_the_band_found_by_hand(capsys):
    """eta_sum * sum_j g_j = (eta_sum * m) * mean_j g_j: for m = 256 the band (0.3, 30) of the
    mean becomes (0.3/256, 30/256) = (0.001171875, 0.1171875)."""
    from nnlib.exercises.sgd_from_scratch import check_sum_band

    by_hand = {((0.3, 30.0), 256): (0.001171875, 0.1171875), ((0.3, 30.0), 4): (0.075, 7.5),
               ((1.0, 10.0), 64): (0.015625, 0.15625), ((0.5, 2.0), 1): (0.5, 2.0)}
    assert check_sum_band(lambda band, m: by_hand[(tuple(band), m)])
    assert capsys.readouterr().out.startswith("Right!")


def test_stable_eta_checker_runs_descent_above_and_below_the_limit_of_the_data_it_runs_on(capsys):
    """The checker's "just below / just above" runs use the limit for the mini-batch they run on:
    above the right limit descent must diverge, below it converge. The limit 2 / sum(x**2) is
    computed here from that mini-batch's numbers, and the distances the checker prints are
    compared with a descent written here."""
    import re

    from nnlib.exercises.sgd_from_scratch import _stable_eta_cases, check_largest_stable_eta

    def by_hand(xs, average):
        c = sum(x * x for x in xs)  # C'' of the summed cost
        return 2 / (c / len(xs)) if average else 2 / c

    assert check_largest_stable_eta(by_hand)
    out = capsys.readouterr().out
    numbers = re.search(r"0\.95 x your limit \|w - w\*\| goes (\S+) -> (\S+), at 1\.05 x it goes (\S+) "
                        r"-> (\S+)\.", out)
    assert numbers, out
    start_below, end_below, start_above, end_above = (float(v) for v in numbers.groups())
    assert end_below < 0.01 * start_below  # converges
    assert end_above > 10 * start_above  # diverges

    _, xs, ys = _stable_eta_cases()
    limit = 2 / sum(x * x for x in xs)
    w_star = sum(x * y for x, y in zip(xs, ys)) / sum(x * x for x in xs)
    for factor, printed in ((0.95, end_below), (1.05, end_above)):
        w = 0.0
        for _ in range(60):
            w -= factor * limit * sum((w * x - y) * x for x, y in zip(xs, ys))
        assert np.isclose(abs(w - w_star), printed, rtol=0.06), (factor, abs(w - w_star), printed)
