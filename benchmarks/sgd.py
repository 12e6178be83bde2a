"""One epoch of SGD three ways, side by side in one run: Nielsen's per-example loop, the matrix
form, and torch (autograd + torch.optim.SGD) on the CPU.

Network [784, 30, 10], 50,000 synthetic MNIST-shaped examples, mini-batch 10, eta 3.0.
Goals: the matrix form >= 7x the loop, and within 1.5x of torch. Public nnlib API only: the
matrix epoch is ``Network.train_epoch`` (what ``Network.SGD`` runs each epoch) and the torch step
is ``nnlib.sgd.torch_update`` (what ``torch_step`` runs), so what is timed is what is taught.

    .venv/bin/python benchmarks/sgd.py [--n 50000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nnlib.data import one_hot
from nnlib.sgd import Network, torch_update


def synthetic(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    X = rng.random((n, 784))
    y = rng.integers(0, 10, n)
    return [(x.reshape(-1, 1), one_hot(t)) for x, t in zip(X, y)]


def epoch_loop(net: Network, data: list, m: int, eta: float) -> None:
    for k in range(0, len(data), m):
        net.update_mini_batch(data[k:k + m], eta)


def epoch_torch(params: tuple, tensors: tuple, m: int, eta: float) -> None:
    ws, bs = params
    X, Y = tensors  # rows, as Network.stack_rows gives them
    opt = torch.optim.SGD(ws + bs, lr=eta)
    order = torch.randperm(X.shape[0])
    for k in range(0, X.shape[0], m):
        rows = order[k:k + m]
        torch_update(ws, bs, opt, X[rows].T, Y[rows].T)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="training examples")
    parser.add_argument("--batch", type=int, default=10, help="mini-batch size")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = synthetic(args.n)
    base = Network([784, 30, 10], seed=0)
    # Stacking the examples into one array is paid once per SGD call, not per epoch: time it apart.
    start = time.perf_counter()
    rows = base.stack_rows(data)
    stack_time = time.perf_counter() - start
    tensors = tuple(torch.tensor(a) for a in rows)
    params = ([torch.tensor(w, requires_grad=True) for w in base.weights],
              [torch.tensor(b, requires_grad=True) for b in base.biases])
    times = {"loop": timed(epoch_loop, base.copy(), data, args.batch, 3.0),
             "matrix": timed(base.copy().train_epoch, *rows, args.batch, 3.0),
             "torch": timed(epoch_torch, params, tensors, args.batch, 3.0)}
    print(f"one epoch, [784, 30, 10], {args.n} examples, mini-batch {args.batch}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"  (stacking the data once for the matrix form: {stack_time:.2f} s, not in the epoch times)")
    for name, t in times.items():
        print(f"  {name:7s} {t:8.2f} s")
    print(f"matrix vs loop : {times['loop'] / times['matrix']:.1f}x faster   (goal >= 7x)")
    print(f"matrix vs torch: {times['matrix'] / times['torch']:.2f}x torch's time (goal <= 1.5x)")


if __name__ == "__main__":
    main()
