"""Checkers for notebook 01 SGD from scratch: each runs the learner's function on cases it builds
itself, compares with a reference computed here, prints one line of feedback and returns a
``Verdict`` (truthy when right)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .verdict import Verdict, attempt, report


def _descend(xs: Any, ys: Any, eta: float, average: bool, steps: int = 60) -> tuple[float, float]:
    """Gradient descent on one weight, C(w) = sum_j 1/2 (w x_j - y_j)^2 (times 1/m with
    ``average``), from w = 0: returns (|w - w*| at the start, at the end)."""
    import numpy as np

    w_star = float(np.dot(xs, ys) / np.dot(xs, xs))
    w = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            nabla_w = float(np.sum((w * xs - ys) * xs))  # summed over the mini-batch
            w -= (eta / len(xs) if average else eta) * nabla_w
    return abs(w_star), abs(w - w_star)


def _stable_eta_cases() -> tuple[list[Any], Any, Any]:
    """The mini-batches ``check_largest_stable_eta`` asks about (m = 1, 8, 64 inputs), and the
    8-point mini-batch ``(xs, ys)`` it then runs descent on, just below and just above the
    learner's limit for *that* mini-batch."""
    import numpy as np

    rng = np.random.default_rng(3)
    cases = [rng.uniform(0.5, 1.5, m) for m in (1, 8, 64)]
    xs = cases[1]
    ys = 2.0 * xs + rng.normal(0, 0.1, len(xs))
    return cases, xs, ys


def check_largest_stable_eta(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.1: ``fn(xs, average)`` is the limit on ``eta`` for gradient descent on one
    weight, cost C_j(w) = 1/2 (w x_j - y_j)^2 over the mini-batch ``xs``: descent converges for
    every ``eta`` below it and diverges above it (at the limit itself it oscillates forever, so
    it is a supremum, not a largest converging value). Asked with the mean of the m gradients
    (``average=True``) and with their sum. Derived, then checked by running descent on 8 points
    just below and just above the answer for those 8 points."""
    import numpy as np

    cases, descent_xs, descent_ys = _stable_eta_cases()
    answers_by_case = []
    for xs in cases:
        m = len(xs)
        mean_limit, sum_limit = 2 / np.mean(xs ** 2), 2 / np.sum(xs ** 2)
        answers = {}
        for average in (True, False):
            ran, got = attempt(fn, xs.copy(), average)
            if not ran:
                return Verdict(False)
            try:
                answers[average] = float(got)
            except (TypeError, ValueError):
                return report(False, "", f"return one number (an eta), got {got!r}.")
        if m > 1 and np.isclose(answers[False], answers[True]):
            return report(False, "", f"with m = {m} you give the sum and the mean the same limit. "
                          "The summed gradient is m times the mean one, so the same eta takes a "
                          "step m times longer: the sum's limit is m times smaller.")
        for average, limit in ((True, mean_limit), (False, sum_limit)):
            got = answers[average]
            name = "mean" if average else "sum"
            if np.isclose(got, limit):
                continue
            if np.isclose(got, limit / 2):
                return report(False, "", f"for the {name}, {got:.4g} is where one step lands exactly on "
                              "the minimum. Past it, w overshoots, yet still converges while each "
                              "overshoot is smaller than the last: w - w* is multiplied by "
                              "(1 - eta * curvature) each step, and that must stay above -1.")
            mean_x_sq = np.mean(xs) ** 2
            if np.isclose(got, 2 / mean_x_sq) or np.isclose(got, 2 / (m * mean_x_sq)):
                return report(False, "", "the curvature C''(w) is the mean (or sum) of x_j**2, "
                              "not the square of the mean x.")
            if m > 1 and (np.isclose(got, mean_limit * m) or np.isclose(got, sum_limit * m * m)):
                return report(False, "", f"for the {name} your limit is m times too large: the sum "
                              "of m gradients is m times their mean, so its limit is m times smaller.")
            return report(False, "", f"for xs of {m} numbers and the {name} you said {got:.4g}. "
                          "Write one step as w - w* -> (1 - eta * c)(w - w*), with c = C''(w), "
                          "and ask when |1 - eta * c| < 1.")
        answers_by_case.append(answers)
    limit = answers_by_case[1][False]  # the learner's summed limit for the 8 points run below
    below = _descend(descent_xs, descent_ys, 0.95 * limit, average=False)
    above = _descend(descent_xs, descent_ys, 1.05 * limit, average=False)
    return report(True, f"descent converges for every eta < 2 / mean(x**2) with the mean and every "
                  f"eta < 2 / sum(x**2) with the sum. Checked by running 60 summed steps on "
                  f"{len(descent_xs)} points: at 0.95 x your limit |w - w*| goes {below[0]:.2f} -> "
                  f"{below[1]:.1e}, at 1.05 x it goes {above[0]:.2f} -> {above[1]:.1e}.", "")


def check_sum_band(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.3: ``fn(mean_band, m)`` predicts, from the band ``(low, high)`` of learning
    rates that work with Nielsen's mean update, the band that works when the update *sums* the
    m gradients instead (``SGD(..., average=False)``)."""
    import numpy as np

    cases = [((0.3, 30.0), 256), ((0.3, 30.0), 4), ((1.0, 10.0), 64), ((0.5, 2.0), 1)]
    for band, m in cases:
        ran, got = attempt(fn, band, m)
        if not ran:
            return Verdict(False)
        try:
            low, high = (float(v) for v in got)
        except (TypeError, ValueError):
            return report(False, "", f"return a pair (low, high) of learning rates, got {got!r}.")
        want = (band[0] / m, band[1] / m)
        if np.allclose((low, high), want):
            continue
        if m > 1 and np.allclose((low, high), (band[0] * m, band[1] * m)):
            return report(False, "", "the sum of m gradients is m times their mean, so each step "
                          "is already m times longer: eta must be m times *smaller*, not larger.")
        if m > 1 and np.allclose((low, high), band):
            return report(False, "", f"with m = {m} the summed gradient is {m} times the mean one: "
                          "the same eta would step m times further.")
        if m > 1 and np.allclose((low, high), (band[0] / np.sqrt(m), band[1] / np.sqrt(m))):
            return report(False, "", "the sum is m times the mean exactly (not sqrt(m) times): "
                          "sum = m * mean, for any numbers.")
        return report(False, "", f"for the band {band} and m = {m} you said ({low:.4g}, "
                      f"{high:.4g}). Write the summed step eta_sum * sum as a mean step: "
                      "eta_sum * m * mean.")
    return report(True, "eta_sum = eta_mean / m: every band slides left by the factor m, so at "
                  "m = 256 the sum needs learning rates 256 times smaller. The next cell checks it "
                  "by training.", "")


def check_parameter_count(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.4: ``fn(sizes)`` returns how many weights and biases ``Network(sizes)`` has."""
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
    """Exercise 01.5: ``fn(a, y, z)`` is the output error delta^L for the cross-entropy cost."""
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


def _backprop_case() -> tuple[list, list, Any, Any]:
    """A [5, 4, 3, 2] network and a batch of m=6 examples as columns: small enough to read,
    three layers so that BP2 is used, m > 1 so that a missing batch sum shows."""
    import numpy as np

    from nnlib.data import one_hot
    from nnlib.sgd import Network

    net = Network([5, 4, 3, 2], seed=7)
    rng = np.random.default_rng(8)
    X = rng.random((5, 6))
    Y = np.hstack([one_hot(t, 2) for t in rng.integers(0, 2, 6)])
    return net.weights, net.biases, X, Y


def _autograd_gradients(weights: list, biases: list, X: Any, Y: Any) -> tuple[list, list]:
    """The independent reference: torch's autograd on C = sum_x 1/2 ||a(x) - y(x)||^2."""
    import torch

    ws = [torch.tensor(w, requires_grad=True) for w in weights]
    bs = [torch.tensor(b, requires_grad=True) for b in biases]
    a = torch.tensor(X)
    for w, b in zip(ws, bs):
        a = torch.sigmoid(w @ a + b)
    (0.5 * ((a - torch.tensor(Y)) ** 2).sum()).backward()
    return [b.grad.numpy() for b in bs], [w.grad.numpy() for w in ws]


def check_backprop_matrix(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.2: ``fn(weights, biases, X, Y)`` returns ``(nabla_b, nabla_w)`` for the m
    examples in the columns of X (n_in, m), Y (n_out, m), *summed* over the m examples.

    Compared layer by layer, from the output backwards, with nnlib's ``backprop_matrix`` and
    with torch's autograd; the first layer that differs names the equation (BP1-BP4) to fix.
    """
    import numpy as np

    from nnlib.sgd import Network

    weights, biases, X, Y = _backprop_case()
    m = X.shape[1]
    ran, got = attempt(fn, [w.copy() for w in weights], [b.copy() for b in biases], X.copy(), Y.copy())
    if not ran:
        return Verdict(False)
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return report(False, "", "return a pair (nabla_b, nabla_w), each a list with one array "
                      "per layer.")
    nabla_b, nabla_w = got
    if len(nabla_b) != len(biases) or len(nabla_w) != len(weights):
        return report(False, "", f"this network has {len(weights)} weight matrices: return "
                      f"{len(weights)} arrays in nabla_w and in nabla_b, got {len(nabla_w)} and "
                      f"{len(nabla_b)}.")
    net = Network([5, 4, 3, 2])
    net.weights, net.biases = weights, biases
    ref_b, ref_w = net.backprop_matrix(X, Y)
    auto_b, auto_w = _autograd_gradients(weights, biases, X, Y)
    for ours, theirs in zip(ref_b + ref_w, auto_b + auto_w):  # the two references must agree
        if not np.allclose(ours, theirs, rtol=1e-9, atol=1e-12):
            raise RuntimeError("nnlib's backprop_matrix and torch's autograd disagree: the "
                               "checker cannot judge your answer. Please report this.")
    L = len(weights)
    for k in range(L - 1, -1, -1):  # from the output layer back, as backprop runs
        layer = f"layer {k + 2} in Nielsen's numbering (nabla_w[{k}], nabla_b[{k}])"
        gb, gw = np.asarray(nabla_b[k], dtype=float), np.asarray(nabla_w[k], dtype=float)
        b_ok = gb.shape == ref_b[k].shape and np.allclose(gb, ref_b[k])
        w_ok = gw.shape == ref_w[k].shape and np.allclose(gw, ref_w[k])
        if b_ok and w_ok:
            continue
        if gb.shape == (ref_b[k].shape[0], m) and np.allclose(gb.sum(axis=1, keepdims=True), ref_b[k]):
            return report(False, "", f"BP3 at {layer}: nabla_b has shape {gb.shape}, one column "
                          "per example. The bias gradient must be summed over the batch axis: "
                          "delta.sum(axis=1, keepdims=True). (b - eta/m * nb would silently "
                          "broadcast b to (n, m).)")
        if (gw.shape == ref_w[k].shape and np.allclose(gw * m, ref_w[k])) or \
                (gb.shape == ref_b[k].shape and np.allclose(gb * m, ref_b[k])):
            return report(False, "", f"{layer} is the *mean* over the batch: return the sum, "
                          "as the loop would; the update divides by m.")
        if gw.shape == ref_w[k].shape[::-1] and np.allclose(gw.T, ref_w[k]):
            return report(False, "", f"BP4 at {layer}: nabla_w is transposed. It must have "
                          f"weights[{k}]'s shape {ref_w[k].shape}: delta @ a_prev.T.")
        if b_ok and not w_ok:
            return report(False, "", f"BP4 at {layer}: nabla_b is right, nabla_w is not. "
                          "nabla_w = delta @ a_prev.T, with a_prev the activations of the layer "
                          "*before* (the input X for the first weights).")
        if w_ok and not b_ok:
            return report(False, "", f"BP3 at {layer}: nabla_w is right, nabla_b is not. "
                          "nabla_b is delta summed over the batch: delta.sum(axis=1, keepdims=True).")
        if k == L - 1:
            return report(False, "", f"BP1 at the output {layer}: delta^L = (a^L - Y) * "
                          "sigma'(z^L); check the sign of a - Y and the sigma' factor.")
        return report(False, "", f"BP2 at {layer}: the output layer is right, this one is not. "
                      f"delta^l = (W^(l+1)).T @ delta^(l+1) * sigma'(z^l): use weights[{k + 1}] "
                      f"(the weights *after* this layer), transposed, and multiply by sigma'(z) "
                      f"of this layer.")
    return report(True, "every layer matches nnlib's backprop_matrix and torch's autograd: "
                  "BP1-BP4 on a whole batch, with the bias gradient summed over it.", "")
