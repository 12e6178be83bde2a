"""Checkers for notebook 01 SGD from scratch: each runs the learner's function on cases it builds
itself, compares with a reference computed here, prints one line of feedback and returns a
``Verdict`` (truthy when right)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .verdict import Verdict, attempt, report


def check_sgd_update(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.2: ``fn(w, nabla_w, eta, m)`` returns the weights after one mini-batch step."""
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
    """Exercise 01.3: ``fn(sizes)`` returns how many weights and biases ``Network(sizes)`` has."""
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
    """Exercise 01.4: ``fn(a, y, z)`` is the output error delta^L for the cross-entropy cost."""
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
    """Exercise 01.1: ``fn(weights, biases, X, Y)`` returns ``(nabla_b, nabla_w)`` for the m
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
