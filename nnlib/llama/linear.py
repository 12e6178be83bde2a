"""``Linear``: the ``nn.Linear`` that ``model.py`` uses, with one speed-up for decoding on the CPU.

Not part of the model's mathematics: y = x W^T, exactly ``nn.Linear`` without bias. Kept out of
``model.py`` so that file reads as the network alone. What it adds: generating a token multiplies
one row by every weight matrix, so on the CPU the time goes into streaming W from memory, and
torch's matrix-vector product reads it with one core. ``Llama.build`` stores the weights
column-major on the CPU (``store_columnwise``), and a product of a few rows is then split over
torch's threads. ``benchmarks/real_model.py`` measures what it buys, side by side.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# At most this many rows go through the split path: decoding feeds one row per sequence of the
# batch. A prefill (many rows) is a matrix-matrix product, which torch already spreads over its
# threads.
MAX_SPLIT_ROWS = 4


class Linear(nn.Linear):
    """``nn.Linear`` without bias, y = x W^T with W of shape (out, in), plus one speed-up: decoding
    on the CPU in float32.

    Generating a token multiplies one row by every matrix, so the time goes into reading W from
    memory, and torch's CPU matrix-vector product reads it with one core. When W is stored
    column-major (``weight.T`` contiguous; ``Llama.build`` stores it so on the CPU, see
    ``store_columnwise``), the sum over ``in`` is cut into one slice per torch thread. The slices
    go through one batched product, which torch spreads over the threads, and the partial sums
    are added: the same result up to float rounding. Every other case (many rows, another device
    or dtype, the usual layout) is plain ``F.linear``.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        rows, n_in = x.numel() // x.shape[-1], x.shape[-1]
        slices = thread_slices(n_in)
        if rows > MAX_SPLIT_ROWS or slices == 1 or x.device.type != "cpu" or w.dtype != torch.float32 \
                or not w.T.is_contiguous():
            return F.linear(x, w)
        xs = x.reshape(rows, slices, n_in // slices).transpose(0, 1)  # (slices, rows, in/slices)
        wt = w.T.view(slices, n_in // slices, w.shape[0])  # (slices, in/slices, out), no copy
        return torch.bmm(xs, wt).sum(0).view(*x.shape[:-1], w.shape[0])


def thread_slices(n_in: int) -> int:
    """The largest number of equal slices of ``n_in`` that is at most torch's thread count."""
    n = max(1, torch.get_num_threads())
    while n_in % n:
        n -= 1
    return n


def store_columnwise(model: nn.Module) -> None:
    """Re-store every ``Linear`` weight column-major, in place: the values, shape and names stay;
    only the memory order changes (``weight.T`` becomes contiguous), which ``Linear``'s CPU decode
    path needs. A weight shared by two modules (tied embeddings) stays shared."""
    done: dict[int, nn.Parameter] = {}
    for module in model.modules():
        if isinstance(module, nn.Linear):
            w = module.weight
            if id(w) not in done:
                done[id(w)] = nn.Parameter(w.detach().T.contiguous().T, requires_grad=w.requires_grad)
            module.weight = done[id(w)]
    for module in model.modules():  # an embedding tied to an output layer follows it
        if isinstance(module, nn.Embedding) and id(module.weight) in done:
            module.weight = done[id(module.weight)]
