"""``Linear`` and ``project``: the products ``model.py`` uses, with a speed-up for decoding on the
CPU.

Not part of the model's mathematics: y = x W^T, exactly ``nn.Linear`` without bias. Kept out of
``model.py`` so that file reads as the network alone. What it adds: generating a token multiplies
one row by every weight matrix, so on the CPU the time goes into streaming W from memory, and
torch's matrix-vector product reads it with one core. ``Llama.build`` stores the weights
column-major on the CPU (``store_columnwise``), and a product of a few rows is then split over
torch's threads. Matrices that read the same input (wq, wk, wv; w1, w3) are stored side by side,
so ``project`` reads them in one product instead of three or two: each product has a fixed cost
(starting the threads, warming up the memory stream), and SmolLM2's matrices are small.
``benchmarks/real_model.py`` measures what it buys, side by side.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: Layers that read the same input, per module class of ``model.py``: ``store_columnwise`` packs
#: each group into one buffer so that ``project`` reads them in one product.
SAME_INPUT: dict[str, tuple[tuple[str, ...], ...]] = {
    "Attention": (("wq", "wk", "wv"),),
    "FeedForward": (("w1", "w3"),),
}

# At most this many rows go through the split path: decoding feeds one row per sequence of the
# batch. A prefill (many rows) is a matrix-matrix product, which torch already spreads over its
# threads.
MAX_SPLIT_ROWS = 4


class Linear(nn.Linear):
    """``nn.Linear`` without bias, y = x W^T with W of shape (out, in), plus one speed-up for
    decoding on the CPU in float32 (why: this module's docstring).

    When W is stored column-major (each row of ``weight.T`` contiguous; ``Llama.build`` stores it
    so on the CPU, see ``store_columnwise``), the sum over ``in`` is cut into one slice per torch
    thread. The slices go through one batched product, which torch spreads over the threads, and
    the partial sums are added: the same result up to float rounding. Every other case (many
    rows, another device or dtype, the usual layout) is plain ``F.linear``.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return times_columns(x, self.weight.T)


def times_columns(x: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    """x @ wt for x (..., in) and wt (in, out): split over the threads when ``wt``'s rows are
    contiguous (W column-major, alone or packed beside others), x has at most ``MAX_SPLIT_ROWS``
    rows, on the CPU in float32; else ``F.linear``."""
    rows, n_in = x.numel() // x.shape[-1], x.shape[-1]
    slices = thread_slices(n_in)
    if rows > MAX_SPLIT_ROWS or slices == 1 or x.device.type != "cpu" or wt.dtype != torch.float32 \
            or wt.stride(-1) != 1:
        return F.linear(x, wt.T)
    xs = x.reshape(rows, slices, n_in // slices).transpose(0, 1)  # (slices, rows, in/slices)
    parts = wt.view(slices, n_in // slices, wt.shape[1])  # (slices, in/slices, out), a view
    return torch.bmm(xs, parts).sum(0).view(*x.shape[:-1], wt.shape[1])


def project(x: torch.Tensor, *linears: nn.Linear) -> tuple[torch.Tensor, ...]:
    """``tuple(linear(x) for linear in linears)``, for layers that read the same input. When
    ``store_columnwise`` stored their weights side by side, and no weight wants a gradient, one
    product reads them all and its output is cut into theirs (views, no copy)."""
    packed = packed_columns(linears)
    wants_grad = torch.is_grad_enabled() and any(lin.weight.requires_grad for lin in linears)
    if packed is None or wants_grad:
        # Through the packed product autograd would give the first weight its gradient and the
        # others none: with gradients wanted, one product per layer.
        return tuple(linear(x) for linear in linears)
    return times_columns(x, packed).split([linear.out_features for linear in linears], dim=-1)


def packed_columns(linears: Sequence[nn.Linear]) -> torch.Tensor | None:
    """The (in, sum of outs) matrix that the weights' transposes tile side by side in one buffer,
    as ``store_columnwise`` leaves them; None when they are stored any other way (built for
    another device or dtype, moved with ``.to``, or never packed)."""
    first = linears[0].weight  # (out_0, in), strides (1, total) when packed
    total = sum(linear.out_features for linear in linears)
    at, step = first.data_ptr(), first.element_size()
    for linear in linears:
        w = linear.weight
        if w.stride() != (1, total) or w.data_ptr() != at or w.shape[1] != first.shape[1] \
                or w.dtype != first.dtype:
            return None
        at += w.shape[0] * step
    return first.as_strided((first.shape[1], total), (total, 1))


def thread_slices(n_in: int) -> int:
    """The largest number of equal slices of ``n_in`` that is at most torch's thread count."""
    n = max(1, torch.get_num_threads())
    while n_in % n:
        n -= 1
    return n


def store_columnwise(model: nn.Module, same_input: dict[str, tuple[tuple[str, ...], ...]] = SAME_INPUT
                     ) -> None:
    """Re-store every ``Linear`` weight column-major, in place: the values, shape and names stay;
    only the memory order changes (``weight.T`` becomes contiguous), which ``Linear``'s CPU decode
    path needs. The groups ``same_input`` names for a module's class (``SAME_INPUT``: Attention's
    wq, wk, wv; FeedForward's w1, w3) share one buffer, their transposes side by side, for
    ``project``. A weight shared by two modules (tied embeddings) stays
    shared."""
    packed: list[nn.Parameter] = []  # new weights that share a buffer, already in place
    for module in model.modules():
        for names in same_input.get(type(module).__name__, ()):
            group = [module.get_submodule(name) for name in names]
            buffer = torch.cat([linear.weight.detach().T for linear in group], dim=1)
            start = 0
            for linear in group:
                view = buffer[:, start:start + linear.out_features].T
                linear.weight = nn.Parameter(view, requires_grad=linear.weight.requires_grad)
                packed.append(linear.weight)
                start += linear.out_features
    skip = {id(w) for w in packed}  # alive in the model, so no other weight has these ids
    # Keyed by the id of a weight that was alive when this loop began: two such weights never
    # share an id, even after one of them is freed.
    done: dict[int, nn.Parameter] = {}
    for module in model.modules():
        if isinstance(module, nn.Linear) and id(module.weight) not in skip:
            w = module.weight
            if id(w) not in done:
                done[id(w)] = nn.Parameter(w.detach().T.contiguous().T, requires_grad=w.requires_grad)
            module.weight = done[id(w)]
    for module in model.modules():  # an embedding tied to an output layer follows it
        if isinstance(module, nn.Embedding) and id(module.weight) in done:
            module.weight = done[id(module.weight)]
