"""A feed-forward network that learns by mini-batch stochastic gradient descent, in numpy.

What this module is: Michael Nielsen's ``network.py`` (chapter 1 of *Neural Networks and Deep
Learning*) rewritten so it can be read line for line next to his: the same names (``Network``,
``SGD``, ``update_mini_batch``, ``backprop``, ``evaluate``, ``cost_derivative``), the same sigmoid
units and quadratic cost, the same standard-normal initialisation. Two things are added: the whole
mini-batch as one matrix (``update_mini_batch_matrix``), which is how every real library does it,
and the same step done by ``torch.optim.SGD`` (``torch_step``) so the numbers can be compared.

What it is not: a general or fast library. There is no cross-entropy, regularisation, momentum or
GPU here; notebook 01 shows where each would go.

Shapes, as in Nielsen: a single input ``x`` is a column ``(sizes[0], 1)``; a mini-batch in matrix
form stacks examples as columns, ``X`` is ``(sizes[0], m)``. ``weights[l]`` is
``(sizes[l+1], sizes[l])`` so that ``weights[l] @ a`` maps layer ``l`` to layer ``l+1``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

Example = tuple[np.ndarray, np.ndarray]  # (x (n_in, 1), y one-hot (n_out, 1))
LabelledExample = tuple[np.ndarray, int]  # (x (n_in, 1), label)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, elementwise."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """Derivative of the sigmoid: sigma(z) * (1 - sigma(z))."""
    s = sigmoid(z)
    return s * (1 - s)


@dataclass
class History:
    """What ``Network.SGD`` measured after each epoch, ready to plot.

    ``accuracy`` is the fraction right on ``test_data`` (empty when no test data was given);
    ``cost`` is the mean quadratic cost on the training data.
    """

    epoch: list[int] = field(default_factory=list)
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

    def _rows(self, mini_batch: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
        """List of (x, y) -> X (m, n_in), Y (m, n_out): one example per *row*, so that picking a
        shuffled mini-batch copies contiguous memory."""
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

    def _stack(self, mini_batch: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
        """List of (x, y) -> X (n_in, m), Y (n_out, m): the examples as columns."""
        X, Y = self._rows(mini_batch)
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
        X, Y = self._stack(data)
        return float(0.5 * np.sum((self.feedforward(X) - Y) ** 2) / X.shape[1])

    # ---- learning -----------------------------------------------------------------------------

    def SGD(self, training_data: Sequence[Example], epochs: int, mini_batch_size: int,
            eta: float, test_data: Sequence[LabelledExample] | None = None,
            progress: bool = True) -> History:
        """Train for ``epochs`` passes over ``training_data`` in shuffled mini-batches.

        Nielsen's signature. Each mini-batch is applied with the matrix form (same numbers as the
        loop, see ``update_mini_batch_matrix``). Returns the per-epoch ``History``.
        """
        self._check_eta(eta)
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a whole number >= 0, got {epochs!r}.")
        if not isinstance(mini_batch_size, (int, np.integer)) or mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be a whole number >= 1, got {mini_batch_size!r}.")
        X, Y = self._rows(training_data)  # stack once; each mini-batch is then a few rows of these
        n = X.shape[0]
        history = History()
        bar = range(epochs)
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(bar, desc="epochs", unit="epoch")
        for j in bar:
            self._epoch(X, Y, mini_batch_size, eta)
            history.epoch.append(j + 1)
            history.cost.append(float(0.5 * np.sum((self.feedforward(X.T) - Y.T) ** 2) / n))
            if test_data:
                history.accuracy.append(self.evaluate(test_data) / len(test_data))
            if progress and history.accuracy:
                bar.set_postfix(accuracy=f"{history.accuracy[-1]:.3f}")
        return history

    def _epoch(self, X: np.ndarray, Y: np.ndarray, mini_batch_size: int, eta: float) -> None:
        """One pass over pre-stacked rows X (n, n_in), Y (n, n_out) in shuffled mini-batches."""
        order = self.rng.permutation(X.shape[0])
        for k in range(0, X.shape[0], mini_batch_size):
            rows = order[k:k + mini_batch_size]
            self._update_matrix(X[rows].T, Y[rows].T, eta)

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
        X, Y = self._stack(mini_batch)
        self._update_matrix(X, Y, eta)

    def _update_matrix(self, X: np.ndarray, Y: np.ndarray, eta: float) -> None:
        nabla_b, nabla_w = self.backprop_matrix(X, Y)
        step = eta / X.shape[1]
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
        """
        x = self._check_x(x)
        if x.shape[1] != 1:
            raise ValueError(f"backprop takes one example, shape ({self.sizes[0]}, 1); got "
                             f"{x.shape}. Use backprop_matrix for a whole mini-batch.")
        y = self._check_y(y, 1)
        return self.backprop_matrix(x, y)

    def backprop_matrix(self, X: np.ndarray, Y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Backprop for m examples at once (columns of X and Y); returns the gradients *summed*
        over the m examples, exactly what the loop in ``update_mini_batch`` accumulates."""
        activation = X
        activations = [X]  # a^0 .. a^L, each (n_l, m)
        for b, w in zip(self.biases, self.weights):
            activation = sigmoid(w @ activation + b)
            activations.append(activation)
        L = self.num_layers - 1
        nabla_b: list[np.ndarray] = [None] * L  # type: ignore[list-item]
        nabla_w: list[np.ndarray] = [None] * L  # type: ignore[list-item]
        # Departure from the math's notation: sigma'(z) is computed as a * (1 - a) from the
        # activation we already have, instead of Nielsen's sigmoid_prime(z); same number, no exp.
        a = activations[-1]
        delta = self.cost_derivative(a, Y) * a * (1 - a)
        # Python's negative indices count layers from the end: nabla_w[-l] is dC/dW^{L-l+1}.
        # The sum over the m examples happens inside the products: delta (n_l, m) @ a.T
        # (m, n_{l-1}) adds up the m outer products the loop would add one by one.
        nabla_b[-1] = delta.sum(axis=1, keepdims=True)
        nabla_w[-1] = delta @ activations[-2].T
        for l in range(2, self.num_layers):
            a = activations[-l]
            delta = (self.weights[-l + 1].T @ delta) * a * (1 - a)
            nabla_b[-l] = delta.sum(axis=1, keepdims=True)
            nabla_w[-l] = delta @ activations[-l - 1].T
        return nabla_b, nabla_w

    def cost_derivative(self, output_activations: np.ndarray, y: np.ndarray) -> np.ndarray:
        """dC/da for the quadratic cost C = 1/2 ||a - y||^2, i.e. ``a - y``."""
        return output_activations - y

    def copy(self) -> "Network":
        """A network with the same sizes and copies of the same weights (for side-by-side runs)."""
        twin = Network(self.sizes)
        twin.weights = [w.copy() for w in self.weights]
        twin.biases = [b.copy() for b in self.biases]
        return twin


def torch_step(net: Network, mini_batch: Sequence[Example], eta: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The same SGD step done by torch: autograd for the gradient, ``torch.optim.SGD`` for the
    update. Returns ``(weights, biases)`` after the step; ``net`` itself is not changed.

    The loss is the *mean* over the mini-batch of 1/2 ||a - y||^2: torch's optimiser uses the
    gradient as given, so the 1/m of Nielsen's update line lives in the loss here.
    """
    import torch

    X, Y = net._stack(mini_batch)
    weights = [torch.tensor(w, requires_grad=True) for w in net.weights]
    biases = [torch.tensor(b, requires_grad=True) for b in net.biases]
    opt = torch.optim.SGD(weights + biases, lr=eta)
    a = torch.tensor(X)
    for w, b in zip(weights, biases):
        a = torch.sigmoid(w @ a + b)
    loss = 0.5 * ((a - torch.tensor(Y)) ** 2).sum() / X.shape[1]
    opt.zero_grad()
    loss.backward()
    opt.step()
    return [w.detach().numpy() for w in weights], [b.detach().numpy() for b in biases]
