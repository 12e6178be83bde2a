"""Checkers for the notebooks' exercises: say right or wrong, kindly, without giving the answer.

Each checker takes the learner's function (or value), runs it on cases it builds itself and
compares with a reference computed here. It prints one line of feedback and returns True/False.
A stub that still raises ``NotImplementedError`` is reported as "not attempted yet", so an
unsolved exercise never breaks a notebook run.
"""
from __future__ import annotations

from typing import Any, Callable


def _attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Call the learner's function; (False, None) if it is still the stub."""
    try:
        return True, fn(*args, **kwargs)
    except NotImplementedError:
        print("Not attempted yet: replace `raise NotImplementedError` with your code and re-run.")
        return False, None


def _report(ok: bool, right: str, wrong: str) -> bool:
    print(("Right! " + right) if ok else ("Not yet: " + wrong))
    return ok


# ---- 01 SGD from scratch -------------------------------------------------------------------


# ---- 02 spaCy pipelines --------------------------------------------------------------------


# ---- 03 Loading Llama ----------------------------------------------------------------------


# ---- 04 Step-through generation ------------------------------------------------------------
