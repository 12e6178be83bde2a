"""A state dict in Meta's names, whatever file it came from: the one table of weight shapes, the
one rule for tied embeddings, the checks every reader's result passes, and what a reader returns.

Each checkpoint format has its reader (``meta_format``, ``hf_format``, ``gguf``); each returns a
``Checkpoint`` and leaves the rest to ``loading``. What they share lives here, so that a fact
(a shape, the tie, a safe ``torch.load``) has one home.
"""
from __future__ import annotations

import math
import os
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import torch

from .files import DamagedFileError, damaged, read_json  # noqa: F401 - re-exported to readers
from .model import ModelArgs, ffn_hidden_dim, swiglu_base_width

PathLike = Union[str, "os.PathLike[str]"]
#: Keys in some Meta files that are not weights (Llama 2 stores its rope table).
IGNORED_META_KEYS = ("rope.freqs",)


@dataclass(frozen=True)
class Checkpoint:
    """What every format's reader returns, before any weight is read.

    ``params``: Meta ``params.json`` values (``vocab_size`` -1 or None: take it from the
    tokenizer); ``tied``: the output matrix is the embedding matrix (stored once);
    ``tokenizer()``: the tokenizer the checkpoint carries or sits next to; ``weights(args,
    dtype)``: the state dict in Meta's names on the CPU, checked against ``args`` (``dtype`` is
    a hint: a reader that must convert, as GGUF dequantizes, converts into it)."""

    layout: str
    params: dict[str, Any]
    tied: bool
    tokenizer: Callable[[], Any]
    weights: Callable[[ModelArgs, torch.dtype | None], dict[str, torch.Tensor]]


# ---- the shapes -------------------------------------------------------------------------------


def weight_shapes(args: ModelArgs) -> dict[str, tuple[int, ...]]:
    """The shape of every weight a ``Transformer(args)`` has, from ``params.json`` alone. The one
    table ``expected_shapes`` and ``memory.count_parameters`` derive from;
    ``tests/test_llama_checkpoint.py`` checks it against the model itself."""
    hd, hidden, dim = args.head_dim, ffn_hidden_dim(args), args.dim
    shapes: dict[str, tuple[int, ...]] = {
        "tok_embeddings.weight": (args.vocab_size, dim), "norm.weight": (dim,),
        "output.weight": (args.vocab_size, dim)}
    for i in range(args.n_layers):
        p = f"layers.{i}."
        shapes.update({
            p + "attention.wq.weight": (args.n_heads * hd, dim),
            p + "attention.wk.weight": (args.n_kv_heads * hd, dim),
            p + "attention.wv.weight": (args.n_kv_heads * hd, dim),
            p + "attention.wo.weight": (dim, args.n_heads * hd),
            p + "feed_forward.w1.weight": (hidden, dim),
            p + "feed_forward.w2.weight": (dim, hidden),
            p + "feed_forward.w3.weight": (hidden, dim),
            p + "attention_norm.weight": (dim,),
            p + "ffn_norm.weight": (dim,),
        })
    return shapes


def expected_shapes(args: ModelArgs) -> dict[str, torch.Size]:
    """``weight_shapes`` as ``torch.Size`` values, for comparing with tensors."""
    return {k: torch.Size(v) for k, v in weight_shapes(args).items()}


def parameter_count(args: ModelArgs, tied: bool = False) -> int:
    """Parameters of ``Transformer(args)``: the sum over ``weight_shapes``, the output matrix
    counted once more only when it is not the embedding matrix."""
    shapes = weight_shapes(args)
    n = sum(math.prod(s) for s in shapes.values())
    return n - math.prod(shapes["output.weight"]) if tied else n


def ffn_params_for(dim: int, hidden: int) -> dict[str, Any]:
    """``multiple_of``/``ffn_dim_multiplier`` that make Meta's formula give a stated hidden width
    (HF's ``intermediate_size``, GGUF's ``feed_forward_length``): rounding up to a multiple of
    ``hidden`` itself lands exactly on ``hidden``."""
    base = swiglu_base_width(dim)
    return {"multiple_of": hidden, "ffn_dim_multiplier": None if base <= hidden else hidden / base}


# ---- the tie ----------------------------------------------------------------------------------


def tie_output(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tied embeddings (Llama 3.2 1B/3B, SmolLM2): a file stores the embedding matrix once and no
    ``output.weight``; then both names point at the *same* tensor. In place; returns ``state``."""
    if "output.weight" not in state and "tok_embeddings.weight" in state:
        state["output.weight"] = state["tok_embeddings.weight"]
    return state


def is_tied(model: torch.nn.Module) -> bool:
    """Whether a ``Transformer``'s output matrix is its embedding matrix (one storage)."""
    return model.output.weight.data_ptr() == model.tok_embeddings.weight.data_ptr()


def check_state_dict(state: dict[str, torch.Tensor], args: ModelArgs) -> dict[str, torch.Tensor]:
    """The state dict with the tie applied, checked against ``args``: no unknown name, no wrong
    shape, nothing missing (each error says what to check). Returns ``state``."""
    want = expected_shapes(args)
    for key, t in state.items():
        if key not in want:
            raise ValueError(f"Checkpoint has a tensor {key!r} that a Llama with these params.json "
                             "values does not have: is params.json from the same model?")
        if t.shape != want[key]:
            raise ValueError(
                f"{key} is {tuple(t.shape)}, but the model's parameters imply {tuple(want[key])}. "
                "Check that params.json / config.json belongs to these weights.")
    tie_output(state)
    missing = [k for k in want if k not in state]
    if missing:
        raise ValueError(f"Checkpoint lacks {len(missing)} weights, e.g. {missing[:3]}: incomplete download?")
    return state


# ---- reading files safely ---------------------------------------------------------------------


def safe_torch_load(path: PathLike) -> dict[str, torch.Tensor]:
    """``torch.load`` that only accepts tensors and plain containers (``weights_only=True``),
    memory-mapped so a big shard is not read into memory before it is needed. A damaged file
    (empty, cut short, not a checkpoint) raises a ``DamagedFileError`` naming it, not torch's
    "failed finding central directory" or a bare ``EOFError``."""
    path = Path(path)
    check_torch_file(path)
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:  # files from torch < 1.6 cannot be memory-mapped
            if "mmap" not in str(err) and "zipfile" not in str(err):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message has the useful line (e.g. "unsupported GLOBAL posix.system") in the middle.
        lines = [ln for ln in str(err).splitlines() if "GLOBAL" in ln or "Unsupported" in ln]
        detail = (lines or [str(err).splitlines()[0] if str(err) else type(err).__name__])[0]
        raise ValueError(
            f"Refusing to load {path}: besides tensors it asks to build Python objects, and "
            "unpickling those could run arbitrary code (torch.load(weights_only=True) rejected it: "
            f"{detail.strip()[:200]}). Weights from Meta or Hugging Face never need that; "
            "get the file from a source you trust, or convert it to safetensors. (If it came from "
            "them, the file is damaged: download it again.)"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError,
            IndexError, TypeError, AttributeError) as err:
        # What torch raises on a damaged archive varies with the damage and the version.
        first = (str(err).splitlines() or [type(err).__name__])[0][:160]
        raise damaged(path, f"could not be read as a torch checkpoint ({type(err).__name__}: "
                            f"{first}): it is damaged or incomplete") from err
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict (a dict of tensors); got {type(obj).__name__}.")
    return obj


def check_torch_file(path: Path) -> None:
    """Tell an empty, truncated or foreign file from a torch checkpoint before torch reads it.
    ``torch.save`` writes a zip archive, whose table of contents (the central directory) is at
    the *end*: a download cut short keeps the start and loses that table. Files from torch < 1.6
    are a bare pickle (first byte 0x80), read as they are."""
    size = path.stat().st_size
    if size == 0:
        raise damaged(path, "is empty (0 bytes): the download or copy did not finish")
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):
        if not zipfile.is_zipfile(path):
            raise damaged(path, f"is truncated ({size:,} bytes): a torch checkpoint is a zip "
                                "archive, and this one lacks its end (the zip's table of contents)")
    elif not head.startswith(b"\x80"):
        raise damaged(path, f"is not a torch checkpoint: it starts with {head!r}, neither a zip "
                            "archive (b'PK') nor a pickle")

