"""What every exercise checker shares: the ``Verdict`` it returns, and how it runs the learner's
function (a stub that still raises ``NotImplementedError`` is "not attempted yet", so an unsolved
exercise never breaks a notebook run) and reports.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Verdict:
    """What a checker returns: truthy when right. It prints nothing when it is a cell's last
    value, because the checker has already printed its feedback."""

    def __init__(self, ok: bool) -> None:
        self.ok = bool(ok)

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"Verdict({self.ok})"

    def _ipython_display_(self) -> None:
        pass


def attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Call the learner's function; (False, None) if it is still the stub."""
    try:
        return True, fn(*args, **kwargs)
    except NotImplementedError:
        print("Not attempted yet: replace `raise NotImplementedError` with your code and re-run.")
        return False, None


def report(ok: bool, right: str, wrong: str) -> Verdict:
    print(("Right! " + right) if ok else ("Not yet: " + wrong))
    return Verdict(ok)


def as_tensor(answer: Any, dtype: Any = None) -> Any:
    """The learner's answer as a torch tensor (a list or an array will do), or None when it is not
    array-like: the checker then says which shape it wanted, without a traceback from torch."""
    import torch

    try:
        return torch.as_tensor(answer, dtype=dtype)
    except (TypeError, ValueError, RuntimeError):
        return None


def tensor_answer(got: Any, shape: Any, dtype: Any = None) -> tuple[Any, Verdict | None]:
    """(the learner's answer as a tensor, None), or (None, the "Not yet" saying which shape was
    wanted) when the answer is not array-like: one wording for every checker that wants a tensor."""
    answer = as_tensor(got, dtype)
    if answer is None:
        return None, report(False, "", f"return a tensor of shape {tuple(shape)}, got {type(got).__name__}")
    return answer, None
