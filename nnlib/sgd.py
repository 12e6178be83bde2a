"""A feed-forward network that learns by mini-batch stochastic gradient descent, in numpy.

What this module is: Michael Nielsen's ``network.py`` (chapter 1 of *Neural Networks and Deep
Learning*) rewritten so it can be read line for line next to his: the same names (``Network``,
``SGD``, ``update_mini_batch``, ``backprop``, ``evaluate``, ``cost_derivative``), the same sigmoid
units and quadratic cost, the same standard-normal initialisation. Two things are added: the whole
mini-batch as one matrix (``update_mini_batch_matrix``), which is how every real library does it,
and the same step done by ``torch.optim.SGD`` (``torch_step``, ``torch_update``) so the numbers
can be compared, with the gradient torch's usual losses give (``torch_gradients``) next to ours.
``SGD(..., average=False)`` drops the 1/len(mini_batch); ``train_for_steps`` trains for a fixed
number of *updates* (not epochs), so runs with different mini-batch sizes compare fairly, and
``accuracy_grid`` runs the eta x m experiment of notebook 01 that shows what the division is for.

What it is not: a general or fast library. There is no cross-entropy cost, regularisation,
momentum or GPU here. Notebook 01's cross-entropy exercise shows the one line (BP1) that the
cross-entropy cost changes, and its closing section says where weight decay and momentum would
enter the update line; for a GPU, the series moves to torch (notebooks 03b to 05; notebook 03
stays on the CPU).

Shapes, as in Nielsen: a single input ``x`` is a column ``(sizes[0], 1)``; a mini-batch in matrix
form stacks examples as columns, ``X`` is ``(sizes[0], m)``. ``weights[l]`` is
``(sizes[l+1], sizes[l])`` so that ``weights[l] @ a`` maps layer ``l`` to layer ``l+1``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .progress import progress_bar

Example = tuple[np.ndarray, np.ndarray]  # (x (n_in, 1), y one-hot (n_out, 1))
LabelledExample = tuple[np.ndarray, int]  # (x (n_in, 1), label)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, elementwise. For z below about -709, exp(-z) overflows to inf and
    the result is 0.0, the right limit: the warning numpy would print says nothing useful."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """Derivative of the sigmoid: sigma(z) * (1 - sigma(z))."""
    s = sigmoid(z)
    return s * (1 - s)


@dataclass
class History:
    """What ``Network.SGD`` measured after each epoch, ready to plot.

    Entry 0 is measured *before* training (epoch 0, step 0), so a curve starts where the network
    did. ``step`` counts the updates made so far (one per mini-batch) and ``epoch`` the passes over
    the training data (a fraction in ``train_for_steps``, which stops mid-epoch). ``accuracy`` is
    the fraction right on the held-out data passed as ``test_data`` (empty when none was given);
    ``cost`` is the mean quadratic cost on the training data.
    """

    epoch: list[float] = field(default_factory=list)
    step: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)


class Network:
    """A fully connected network of sigmoid neurons with a quadratic cost.

    ``Network([64, 30, 10], seed=0)`` has 64 inputs, one hidden layer of 30 and 10 outputs.
    ``seed`` makes the initial weights and the shuffling in ``SGD`` repeatable.
    """

    def __init__(self, sizes: Sequence[int], seed: int | None = None) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(
                f"A network needs at least two layers (inputs and outputs), got sizes={sizes}. "
                "Pass e.g. Network([64, 30, 10])."
            )
        for i, n in enumerate(sizes):
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(
                    f"Layer {i} has size {n!r}; every layer needs a whole number of neurons >= 1 "
                    f"(sizes={sizes})."
                )
        self.num_layers = len(sizes)
        self.sizes = [int(n) for n in sizes]
        self.rng = np.random.default_rng(seed)
        # Nielsen draws every weight and bias from N(0, 1); the input layer has no biases.
        self.biases = [self.rng.standard_normal((y, 1)) for y in self.sizes[1:]]
        self.weights = [self.rng.standard_normal((y, x))
                        for x, y in zip(self.sizes[:-1], self.sizes[1:])]

    # ---- checking inputs ----------------------------------------------------------------------

    def _check_x(self, x: np.ndarray, what: str = "x") -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[0] != self.sizes[0]:
            expected = f"({self.sizes[0]}, 1) for one example or ({self.sizes[0]}, m) for m"
            raise ValueError(
                f"{what} has shape {x.shape}, but this network has {self.sizes[0]} inputs: "
                f"expected {expected}. Reshape a flat vector with x.reshape(-1, 1)."
            )
        return x

    def _check_y(self, y: np.ndarray, columns: int) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if y.shape != (self.sizes[-1], columns):
            raise ValueError(
                f"y has shape {y.shape}, expected ({self.sizes[-1]}, {columns}): a one-hot column "
                f"per example (see nnlib.data.one_hot)."
            )
        return y

    @staticmethod
    def _check_eta(eta: float) -> None:
        if not eta > 0:
            raise ValueError(f"eta (the learning rate) must be > 0, got {eta}. Try eta=3.0.")

    def stack_rows(self, mini_batch: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
        """List of (x, y) -> X (m, n_in), Y (m, n_out): one example per *row*, so that picking a
        shuffled mini-batch copies contiguous memory. ``SGD`` stacks its data once with this."""
        if len(mini_batch) == 0:
            raise ValueError("The mini-batch is empty: pass at least one (x, y) pair.")
        X = np.array([x for x, _ in mini_batch], dtype=float)
        Y = np.array([y for _, y in mini_batch], dtype=float)
        if X.ndim != 3 or X.shape[1:] != (self.sizes[0], 1):
            shapes = sorted({np.shape(x) for x, _ in mini_batch})
            raise ValueError(
                f"x has shape {shapes[0] if len(shapes) == 1 else shapes}, but this network has "
                f"{self.sizes[0]} inputs: expected ({self.sizes[0]}, 1) for each example. "
                "Reshape a flat vector with x.reshape(-1, 1).")
        if Y.ndim != 3 or Y.shape[1:] != (self.sizes[-1], 1):
            raise ValueError(
                f"y has shape {np.shape(mini_batch[0][1])}, expected ({self.sizes[-1]}, 1): a "
                "one-hot column per example (see nnlib.data.one_hot).")
        return X[:, :, 0], Y[:, :, 0]

    def stack(self, mini_batch: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
        """List of (x, y) -> X (n_in, m), Y (n_out, m): the examples as columns, the layout of
        ``backprop_matrix``."""
        X, Y = self.stack_rows(mini_batch)
        return X.T, Y.T

    # ---- the forward pass ---------------------------------------------------------------------

    def feedforward(self, a: np.ndarray) -> np.ndarray:
        """Output activations for input ``a`` of shape (n_in, 1), or (n_in, m) for m at once."""
        a = self._check_x(a, "a")
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(w @ a + b)  # b (n, 1) broadcasts over the m columns
        return a

    def evaluate(self, test_data: Sequence[LabelledExample]) -> int:
        """How many test inputs the network gets right (the output neuron with the highest
        activation is its answer)."""
        if len(test_data) == 0:
            return 0
        X = self._check_x(np.hstack([x for x, _ in test_data]), "the test inputs")
        labels = np.array([int(y) for _, y in test_data])
        return int(np.sum(np.argmax(self.feedforward(X), axis=0) == labels))

    def total_cost(self, data: Sequence[Example]) -> float:
        """Mean quadratic cost C = 1/n sum_x 1/2 ||a(x) - y(x)||^2 over ``data``."""
        X, Y = self.stack(data)
        return float(0.5 * np.sum((self.feedforward(X) - Y) ** 2) / X.shape[1])

    # ---- learning -----------------------------------------------------------------------------

    def SGD(self, training_data: Sequence[Example], epochs: int, mini_batch_size: int,
            eta: float, test_data: Sequence[LabelledExample] | None = None,
            progress: bool = True, average: bool = True) -> History:
        """Train for ``epochs`` passes over ``training_data`` in shuffled mini-batches.

        Nielsen's signature. ``test_data`` is whatever held-out set to measure after each epoch:
        pass the *validation* set while choosing ``eta``, the test set once at the end. Each
        mini-batch is applied with the matrix form (same numbers as the loop, see
        ``update_mini_batch_matrix``). ``average=False`` drops the 1/len(mini_batch) of the update
        (steps by the summed gradient), for the experiment in notebook 01. Returns the
        ``History``, epoch 0 (before any step) included.
        """
        self._check_eta(eta)
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a whole number >= 0, got {epochs!r}.")
        if not isinstance(mini_batch_size, (int, np.integer)) or mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be a whole number >= 1, got {mini_batch_size!r}.")
        X, Y = self.stack_rows(training_data)  # stack once; each mini-batch is a few rows of these
        history = History()
        steps_per_epoch = -(-len(X) // mini_batch_size)  # the last mini-batch may be shorter
        self._measure(history, X, Y, test_data, epoch=0, step=0)
        with progress_bar(epochs, "epochs", unit="epoch", enabled=progress) as bar:
            for j in range(epochs):
                self.train_epoch(X, Y, mini_batch_size, eta, average)
                self._measure(history, X, Y, test_data, epoch=j + 1, step=(j + 1) * steps_per_epoch)
                if history.accuracy:
                    bar.set_postfix(accuracy=f"{history.accuracy[-1]:.3f}", refresh=False)
                bar.update(1)
        return history

    def _measure(self, history: History, X: np.ndarray, Y: np.ndarray,
                 test_data: Sequence[LabelledExample] | None, epoch: float, step: int) -> None:
        """Append one measurement to ``history``: training cost on the rows X, Y, accuracy on
        ``test_data``."""
        history.epoch.append(epoch)
        history.step.append(step)
        history.cost.append(float(0.5 * np.sum((self.feedforward(X.T) - Y.T) ** 2) / len(X)))
        if test_data:
            history.accuracy.append(self.evaluate(test_data) / len(test_data))

    def _check_rows(self, X: np.ndarray, Y: np.ndarray, mini_batch_size: int, who: str) -> None:
        if np.ndim(X) != 2 or np.shape(X)[1] != self.sizes[0] or \
                np.shape(Y) != (np.shape(X)[0], self.sizes[-1]):
            raise ValueError(
                f"{who} takes rows: X (n, {self.sizes[0]}) and Y (n, {self.sizes[-1]}), got "
                f"{np.shape(X)} and {np.shape(Y)}. Stack a list of (x, y) pairs with stack_rows.")
        if not isinstance(mini_batch_size, (int, np.integer)) or mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be a whole number >= 1, got {mini_batch_size!r}.")
        if np.shape(X)[0] == 0:
            raise ValueError(f"{who} got no training rows: pass at least one (x, y) pair.")

    def mini_batch_rows(self, n: int, mini_batch_size: int):
        """Row indices of one mini-batch after another, without end: each epoch is a fresh
        shuffle of the n rows cut into mini-batches of ``mini_batch_size`` (the last one shorter
        when n is not a multiple). ``train_epoch`` takes one epoch of these, ``train_steps`` as
        many mini-batches as it is told, so both draw the same shuffles from ``self.rng``."""
        while True:
            order = self.rng.permutation(n)
            for k in range(0, n, mini_batch_size):
                yield order[k:k + mini_batch_size]

    def train_epoch(self, X: np.ndarray, Y: np.ndarray, mini_batch_size: int, eta: float,
                    average: bool = True) -> None:
        """One pass over pre-stacked rows X (n, n_in), Y (n, n_out) (see ``stack_rows``) in
        shuffled mini-batches: what ``SGD`` runs each epoch."""
        self._check_eta(eta)
        self._check_rows(X, Y, mini_batch_size, "train_epoch")
        batches = self.mini_batch_rows(X.shape[0], mini_batch_size)
        for _ in range(-(-X.shape[0] // mini_batch_size)):
            rows = next(batches)
            self._update_matrix(X[rows].T, Y[rows].T, eta, average)

    def train_steps(self, X: np.ndarray, Y: np.ndarray, steps: int, mini_batch_size: int, eta: float,
                    average: bool = True, batches: Any = None) -> int:
        """``steps`` updates on pre-stacked rows (see ``train_epoch``), crossing epoch boundaries
        as needed; ``batches`` continues an earlier call's ``mini_batch_rows``. Returns how many
        examples the steps used (``steps * m``, less where a shorter last mini-batch came up)."""
        self._check_eta(eta)
        self._check_rows(X, Y, mini_batch_size, "train_steps")
        batches = self.mini_batch_rows(X.shape[0], mini_batch_size) if batches is None else batches
        used = 0
        for _ in range(steps):
            rows = next(batches)
            self._update_matrix(X[rows].T, Y[rows].T, eta, average)
            used += len(rows)
        return used

    def update_mini_batch(self, mini_batch: Sequence[Example], eta: float) -> None:
        """One gradient-descent step from one mini-batch, one example at a time (Nielsen's loop).

        ``nabla_w`` ends up as the *sum* of the per-example gradients; dividing by
        ``len(mini_batch)`` turns it into the mean, so ``eta`` means the same step size whatever
        the mini-batch size.
        """
        self._check_eta(eta)
        if len(mini_batch) == 0:
            raise ValueError("The mini-batch is empty: pass at least one (x, y) pair.")
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        # The line from the seed: w <- w - (eta / m) * sum of the m gradients.
        self.weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def update_mini_batch_matrix(self, mini_batch: Sequence[Example], eta: float) -> None:
        """The same step as ``update_mini_batch``, with the m examples as the columns of one matrix.

        One matrix product per layer replaces m small ones; the numbers agree with the loop to
        rounding (about 1e-15).
        """
        self._check_eta(eta)
        X, Y = self.stack(mini_batch)
        self._update_matrix(X, Y, eta)

    def _update_matrix(self, X: np.ndarray, Y: np.ndarray, eta: float, average: bool = True) -> None:
        nabla_b, nabla_w = self.backprop_matrix(X, Y)
        step = eta / X.shape[1] if average else eta
        # Same update line, done in place: w - (eta/m)*nw would allocate two fresh (n, n_in)
        # arrays per step, which costs more than the arithmetic for small mini-batches.
        for w, nw, b, nb in zip(self.weights, nabla_w, self.biases, nabla_b):
            nw *= step
            w -= nw
            b -= step * nb

    def backprop(self, x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradient of the cost for one example: ``(nabla_b, nabla_w)``, shaped like
        ``(self.biases, self.weights)``.

        The four equations of backpropagation (Nielsen, chapter 2):
        delta^L = dC/da * sigma'(z^L);  delta^l = (W^{l+1}.T delta^{l+1}) * sigma'(z^l);
        dC/db^l = delta^l;  dC/dW^l = delta^l (a^{l-1}).T
        in Nielsen's numbering: layer 1 is the input, so ``self.weights[0]`` is his W^2 and
        ``self.weights[l - 2]`` is W^l.
        """
        x = self._check_x(x)
        if x.shape[1] != 1:
            raise ValueError(f"backprop takes one example, shape ({self.sizes[0]}, 1); got "
                             f"{x.shape}. Use backprop_matrix for a whole mini-batch.")
        y = self._check_y(y, 1)
        return self.backprop_matrix(x, y)

    def backprop_matrix(self, X: np.ndarray, Y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Backprop for m examples at once: X (n_in, m), Y (n_out, m), one example per column.
        Returns the gradients *summed* over the m examples, exactly what the loop in
        ``update_mini_batch`` accumulates. BP1, BP2 and BP4 read as for one example; BP3 alone
        changes: delta is (n_l, m), so the bias gradient is its sum over the batch axis."""
        activation = X
        # Nielsen's numbering: the input is layer 1 and the output layer L = self.num_layers, so
        # activations[k] is a^{k+1}: [a^1 = X, a^2, ..., a^L], each (n_l, m).
        activations = [X]
        for b, w in zip(self.biases, self.weights):
            activation = sigmoid(w @ activation + b)
            activations.append(activation)
        n_weights = self.num_layers - 1  # L - 1 weight matrices, W^2 .. W^L
        nabla_b: list[np.ndarray] = [None] * n_weights  # type: ignore[list-item]
        nabla_w: list[np.ndarray] = [None] * n_weights  # type: ignore[list-item]
        # Departure from the math's notation: sigma'(z) is computed as a * (1 - a) from the
        # activation we already have, instead of Nielsen's sigmoid_prime(z); same number, no exp.
        a = activations[-1]
        delta = self.cost_derivative(a, Y) * a * (1 - a)
        # Python's negative indices count layers from the end, as Nielsen's loop does: with
        # L = self.num_layers, activations[-l] is a^{L-l+1}, delta is delta^{L-l+1} and
        # nabla_w[-l] is dC/dW^{L-l+1} (l = 1: the output layer's W^L).
        # The sum over the m examples happens inside the products: delta (n_l, m) @ a.T
        # (m, n_{l-1}) adds up the m outer products the loop would add one by one.
        nabla_b[-1] = delta.sum(axis=1, keepdims=True)
        nabla_w[-1] = delta @ activations[-2].T
        for l in range(2, self.num_layers):  # noqa: E741 - Nielsen's l, counted from the output
            a = activations[-l]
            delta = (self.weights[-l + 1].T @ delta) * a * (1 - a)
            nabla_b[-l] = delta.sum(axis=1, keepdims=True)
            nabla_w[-l] = delta @ activations[-l - 1].T
        return nabla_b, nabla_w

    def cost_derivative(self, output_activations: np.ndarray, y: np.ndarray) -> np.ndarray:
        """dC/da for the quadratic cost C = 1/2 ||a - y||^2, i.e. ``a - y``."""
        return output_activations - y

    def copy(self) -> Network:
        """A network with the same sizes and copies of the same weights (for side-by-side runs)."""
        twin = Network(self.sizes)
        twin.weights = [w.copy() for w in self.weights]
        twin.biases = [b.copy() for b in self.biases]
        return twin


def accuracy_grid(training_data: Sequence[Example], held_out: Sequence[LabelledExample],
                  etas: Sequence[float], batch_sizes: Sequence[int], steps: int = 150,
                  average: bool = True, sizes: Sequence[int] = (64, 30, 10),
                  seed: int = 0) -> np.ndarray:
    """Accuracy on ``held_out`` after exactly ``steps`` SGD updates, for every (mini-batch size,
    eta) pair: an array (len(batch_sizes), len(etas)). Every run starts from the same weights.

    Each mini-batch size gets exactly ``steps`` updates (``train_for_steps``), so a bigger batch
    is not handicapped by taking fewer of them. With ``average=True``
    (Nielsen's update) the band of good ``eta`` should stay put as m grows; with
    ``average=False`` (step by the sum) it should slide left as 1/m. Pass the *validation* set:
    this is for choosing ``eta``.
    """
    X, Y = Network(sizes).stack_rows(training_data)  # stacked once for all the runs
    grid = np.zeros((len(batch_sizes), len(etas)))
    for i, m in enumerate(batch_sizes):
        for j, eta in enumerate(etas):
            net = Network(sizes, seed=seed)
            net.train_steps(X, Y, steps, int(m), float(eta), average)
            grid[i, j] = net.evaluate(held_out) / len(held_out)
    return grid


def train_for_steps(net: Network, training_data: Sequence[Example], steps: int, mini_batch_size: int,
                    eta: float, test_data: Sequence[LabelledExample] | None = None,
                    average: bool = True, measurements: int = 20) -> History:
    """Train ``net`` for exactly ``steps`` updates, measuring ``measurements`` times along the way
    (and at step 0); returns the ``History``, whose ``step`` is the x-axis to compare runs on.

    ``SGD`` counts epochs, and an epoch is n / m updates: 10 epochs of 600 examples are 600 steps
    with m = 10 but 10 steps with m = 600. Comparing mini-batch sizes or learning rates at a fixed
    number of steps asks "how far does each step get?", which is what ``eta`` and the 1/m are
    about. The mini-batches are the ones ``SGD`` would draw (``Network.mini_batch_rows``).
    """
    net._check_eta(eta)
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {steps!r}.")
    if not isinstance(measurements, (int, np.integer)) or measurements < 1:
        raise ValueError(f"measurements must be a whole number >= 1, got {measurements!r}.")
    X, Y = net.stack_rows(training_data)
    history = History()
    net._measure(history, X, Y, test_data, epoch=0.0, step=0)
    ends = sorted({int(round(steps * k / measurements)) for k in range(1, measurements + 1)} - {0})
    done = seen = 0
    batches = net.mini_batch_rows(len(X), mini_batch_size)
    for end in ends:
        seen += net.train_steps(X, Y, end - done, mini_batch_size, eta, average, batches)
        done = end
        net._measure(history, X, Y, test_data, epoch=seen / len(X), step=done)
    return history


def _torch_params(net: Network) -> tuple[list[Any], list[Any]]:
    import torch

    return ([torch.tensor(w, requires_grad=True) for w in net.weights],
            [torch.tensor(b, requires_grad=True) for b in net.biases])


def _torch_forward(weights: list[Any], biases: list[Any], X: Any) -> Any:
    """Output activations for X (n_in, m) (columns, as in ``Network.backprop_matrix``)."""
    import torch

    a = X
    for w, b in zip(weights, biases):
        a = torch.sigmoid(w @ a + b)
    return a


LOSSES = ("nielsen", "mse_mean", "mse_sum")


def torch_loss(a: Any, Y: Any, loss: str = "nielsen") -> Any:
    """A torch loss for outputs ``a`` and targets ``Y``, both (n_out, m).

    - ``"nielsen"``: the mean over the m examples of 1/2 ||a - y||^2. Its gradient is
      ``nabla / m``, so ``torch.optim.SGD(lr=eta)`` takes Nielsen's step.
    - ``"mse_mean"``: ``F.mse_loss(a, Y)``, which averages (a - y)^2 over all m * n_out numbers
      and has no 1/2: the gradient is ``2 nabla / (m n_out)``.
    - ``"mse_sum"``: ``F.mse_loss(a, Y, reduction="sum")``: no mean at all, gradient ``2 nabla``.
    """
    import torch.nn.functional as F

    if loss == "nielsen":
        return 0.5 * ((a - Y) ** 2).sum() / a.shape[1]
    if loss == "mse_mean":
        return F.mse_loss(a, Y)
    if loss == "mse_sum":
        return F.mse_loss(a, Y, reduction="sum")
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")


def torch_gradients(net: Network, mini_batch: Sequence[Example],
                    loss: str = "nielsen") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(grad_b, grad_w)`` that torch's autograd gives for ``loss`` (see ``torch_loss``) on this
    mini-batch, shaped like ``(net.biases, net.weights)``: what ``torch.optim.SGD`` multiplies by
    ``lr``. Compare with ``net.backprop_matrix``'s summed ``nabla``."""
    import torch

    X, Y = net.stack(mini_batch)
    weights, biases = _torch_params(net)
    torch_loss(_torch_forward(weights, biases, torch.tensor(X)), torch.tensor(Y), loss).backward()
    return [b.grad.numpy() for b in biases], [w.grad.numpy() for w in weights]


def torch_update(weights: list[Any], biases: list[Any], optimizer: Any, X: Any, Y: Any,
                 loss: str = "nielsen") -> None:
    """One optimiser step on tensors: forward X (n_in, m), ``loss`` against Y (n_out, m),
    backward, ``optimizer.step()``. The torch twin of ``update_mini_batch_matrix``."""
    optimizer.zero_grad()
    torch_loss(_torch_forward(weights, biases, X), Y, loss).backward()
    optimizer.step()


def torch_step(net: Network, mini_batch: Sequence[Example], eta: float
               ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The same SGD step done by torch: autograd for the gradient, ``torch.optim.SGD`` for the
    update. Returns ``(weights, biases)`` after the step; ``net`` itself is not changed.

    The loss is the *mean* over the mini-batch of 1/2 ||a - y||^2: torch's optimiser uses the
    gradient as given, so the 1/m of Nielsen's update line lives in the loss here.
    """
    import torch

    net._check_eta(eta)
    X, Y = net.stack(mini_batch)
    weights, biases = _torch_params(net)
    torch_update(weights, biases, torch.optim.SGD(weights + biases, lr=eta),
                 torch.tensor(X), torch.tensor(Y))
    return [w.detach().numpy() for w in weights], [b.detach().numpy() for b in biases]
