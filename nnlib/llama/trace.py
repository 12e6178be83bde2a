"""Watching a model work without changing what it computes: the instrumentation notebooks 03b, 04
and 05 use, kept here so a notebook cell reads as what it reveals.

    with trace_calls(llama) as trace:
        llama.generate(prompts, 6, temperature=0.0)
    trace.calls   # one ForwardCall per model.forward: start_pos (Meta's prev_pos), shape
    trace.grid    # Meta's `tokens` tensor as the loop left it, before each row is cut

    with record_calls(module) as calls:      # any nn.Module, transformers' included
        model.generate(...)
    calls[0].kwargs["position_ids"], calls[0].args, calls[0].output   # output: None if it raised

    with rope_angle_from(model, angle_pos=9, at=8):
        model.forward(one_token, 8)          # slot 8 of the cache, rotated as position 9

Each context puts everything back on exit, an error included. Nothing here copies weights or
changes a number the model computes; ``rope_angle_from`` changes one row of the rotary tables,
on purpose, for the calls inside it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import torch


@dataclass(frozen=True)
class ForwardCall:
    """One call of ``Transformer.forward``: ``start_pos`` (Meta's ``prev_pos``), the input's
    ``rows`` (batch) and ``positions`` (columns read), and whether it used the KV cache."""

    start_pos: int
    rows: int
    positions: int
    use_cache: bool

    @property
    def end_pos(self) -> int:
        """One past the last position read: Meta's ``cur_pos`` for this call."""
        return self.start_pos + self.positions

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.positions)


@dataclass
class Trace:
    """What ``trace_calls`` saw: ``calls`` in order; ``grid`` the (bsz, total_len) ``tokens``
    tensor of the last ``Llama.generate`` inside the block, after its loop and before its rows
    were cut (None when no ``generate`` ran, or when a bare ``Transformer`` was traced)."""

    calls: list[ForwardCall] = field(default_factory=list)
    grid: torch.Tensor | None = None

    @property
    def positions_read(self) -> int:
        """Every position every call read, added up: the work the calls did, in tokens."""
        return sum(c.positions for c in self.calls)


def _model_of(target: Any) -> torch.nn.Module:
    model = getattr(target, "model", target)
    if not callable(getattr(model, "forward", None)):
        raise TypeError(f"trace_calls needs a Llama or a Transformer; got {type(target).__name__}.")
    return model


@contextmanager
def trace_calls(target: Any) -> Iterator[Trace]:
    """Record every ``forward`` call of a ``Llama``'s model (or of a ``Transformer``) made inside
    the block; with a ``Llama``, also catch ``generate``'s token grid before it is cut. The
    model computes exactly what it would untraced."""
    model = _model_of(target)
    trace = Trace()
    own_forward = model.forward

    def forward(tokens: torch.Tensor, start_pos: int = 0, use_cache: bool = True) -> torch.Tensor:
        trace.calls.append(ForwardCall(int(start_pos), int(tokens.shape[0]), int(tokens.shape[1]),
                                       bool(use_cache)))
        return own_forward(tokens, start_pos, use_cache=use_cache)

    cut = getattr(target, "_cut", None) if target is not model else None
    model.forward = forward
    if cut is not None:
        def caught_cut(tokens: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            trace.grid = tokens.detach().clone().cpu()
            return cut(tokens, *args, **kwargs)

        target._cut = caught_cut
    try:
        yield trace
    finally:
        del model.forward  # the instance attribute: the class's own method shows again
        if cut is not None:
            del target._cut


@dataclass(frozen=True)
class ModuleCall:
    """One call of a module: its positional ``args``, keyword ``kwargs`` and ``output`` (None
    when the call raised: the inputs are recorded before the module runs, the output after)."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    output: Any = None


@contextmanager
def record_calls(module: torch.nn.Module) -> Iterator[list[ModuleCall]]:
    """Record the inputs and output of every call of ``module`` inside the block, for any
    ``nn.Module``: an attention layer, transformers' ``LlamaModel``. Hooks that only look: a
    forward pre-hook records the inputs as the module receives them, so a call that raises is
    recorded too (with ``output`` None), and a forward hook adds the output when it returns."""
    calls: list[ModuleCall] = []
    running: list[int] = []  # indices in ``calls`` of the calls not yet returned, innermost last

    def before(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        running.append(len(calls))
        calls.append(ModuleCall(tuple(args), dict(kwargs)))

    def after(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        i = running.pop()  # a call that raised never gets here; its index stays below, unused
        calls[i] = replace(calls[i], output=output)

    handles = [module.register_forward_pre_hook(before, with_kwargs=True),
               module.register_forward_hook(after, with_kwargs=True)]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def rope_angle_from(model: Any, angle_pos: int, at: int) -> Iterator[None]:
    """Inside the block, a token written at position ``at`` is rotated by RoPE's angle for
    position ``angle_pos``: row ``at`` of the model's cos/sin tables holds row ``angle_pos``'s
    values. The cache slot still follows ``start_pos``, so this separates the two things
    ``start_pos`` sets. The tables are restored on exit."""
    model = getattr(model, "model", model)
    n = model.rope_cos.shape[0]
    for name, pos in (("angle_pos", angle_pos), ("at", at)):
        if not 0 <= int(pos) < n:
            raise ValueError(f"{name} must be a position in 0..{n - 1} (max_seq_len rows); got {pos!r}.")
    cos, sin = model.rope_cos, model.rope_sin
    model.rope_cos, model.rope_sin = cos.clone(), sin.clone()
    model.rope_cos[int(at)], model.rope_sin[int(at)] = cos[int(angle_pos)], sin[int(angle_pos)]
    try:
        yield
    finally:
        model.rope_cos, model.rope_sin = cos, sin


__all__ = ["ForwardCall", "Trace", "trace_calls", "ModuleCall", "record_calls", "rope_angle_from"]
