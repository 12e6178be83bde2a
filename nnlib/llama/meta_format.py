"""Meta's checkpoint layout: ``params.json`` + ``consolidated.00.pth`` (one file), or
``consolidated.00.pth`` ... ``consolidated.NN.pth`` (model-parallel shards, e.g. 13B has 2, 70B has
8). Shards are merged here, on one device, instead of Meta's "Loading a checkpoint for MP=2 but
world size is 1". ``read_meta`` is the reader (a ``weights.Checkpoint``); ``save_meta`` writes
the layout. Loading is safe and lean: ``torch.load(weights_only=True, mmap=True)``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .files import naming
from .memory import is_llama_3_2_shape
from .model import ModelArgs
from .tokenizer import find_tokenizer_file, load_tokenizer
from .weights import (
    IGNORED_META_KEYS,
    Checkpoint,
    PathLike,
    check_state_dict,
    expected_shapes,
    read_json,
    safe_torch_load,
)

#: Split along the output features (dim 0) in Meta's model-parallel shards.
COLUMN_PARALLEL = ("wq", "wk", "wv", "w1", "w3", "output")
#: Split along the input features (dim 1).
ROW_PARALLEL = ("wo", "w2")
#: ``use_scaled_rope`` with no factor in params.json: Llama 3.2 1B/3B use 32, Llama 3.1 uses 8.
LLAMA_3_1_ROPE_FACTOR, LLAMA_3_2_ROPE_FACTOR = 8.0, 32.0


def shard_axis(key: str, embedding_axis: int | None = None) -> int | None:
    """The axis along which Meta's model-parallel shards split the weight ``key``: 0 for the
    column-parallel ones (``wq wk wv w1 w3 output``, split by output rows), 1 for the row-parallel
    ones (``wo w2``, split by input columns), None for what every shard holds whole (norms).
    ``tok_embeddings`` is split on dim 1 in Llama 2 and on dim 0 in Llama 3: ``embedding_axis``
    (None when the caller must work it out from the shapes)."""
    name = key.split(".")[-2] if key.count(".") else key
    if "norm" in name:
        return None
    if name in COLUMN_PARALLEL:
        return 0
    if name in ROW_PARALLEL:
        return 1
    return embedding_axis


def meta_shards(ckpt_dir: Path) -> list[Path]:
    """``consolidated.NN.pth`` files in order (any ``*.pth`` if none is named that way)."""
    files = sorted(ckpt_dir.glob("consolidated.*.pth")) or sorted(ckpt_dir.glob("*.pth"))
    return files



def read_meta(ckpt_dir: PathLike) -> Checkpoint:
    """The reader of a Meta-layout folder: ``params.json`` (with the rope factor it leaves out),
    tied when the shape is Llama 3.2 1B/3B's (Meta's file does not say), the tokenizer next to
    it, and the merged shards."""
    d = Path(ckpt_dir)
    params = meta_rope_defaults(read_json(d / "params.json"))
    return Checkpoint("meta", params, is_llama_3_2_shape(params),
                      tokenizer=lambda: load_tokenizer(find_tokenizer_file(d)),
                      weights=lambda args, dtype=None: load_meta(d, args))


def meta_rope_defaults(params: dict[str, Any]) -> dict[str, Any]:
    """Fill in the rope factor a Meta ``params.json`` leaves out. Llama 3.1 and 3.2 both say only
    ``use_scaled_rope: true``; Meta's code then uses 8 for 3.1 and 32 for 3.2 (as their Hugging
    Face ``config.json`` files state), so the factor is told by the shape: 32 for Llama 3.2
    1B/3B, else 8. A factor the file states (``rope_scaling_factor``) always wins."""
    stated = params.get("rope_scaling_factor", params.get("rope_scale_factor"))
    if not params.get("use_scaled_rope") or stated is not None:
        return params
    factor = LLAMA_3_2_ROPE_FACTOR if is_llama_3_2_shape(params) else LLAMA_3_1_ROPE_FACTOR
    return {**params, "rope_scale_factor": factor}


def merge_shards(shards: list[dict[str, torch.Tensor]], args: ModelArgs) -> dict[str, torch.Tensor]:
    """Join model-parallel shards into one state dict.

    Column-parallel weights (``wq wk wv w1 w3 output``) were split by output rows: join on dim 0.
    Row-parallel ones (``wo w2``) by input columns: join on dim 1. ``tok_embeddings`` is split on
    dim 1 in Llama 2 and on the vocabulary (dim 0) in Llama 3: the axis is read from the shard
    shapes against ``params.json``. Norms are whole in every shard: taken once.
    """
    want = expected_shapes(args)
    n = len(shards)
    merged: dict[str, torch.Tensor] = {}
    for key in shards[0]:
        if key in IGNORED_META_KEYS:
            continue
        if key not in want:
            raise ValueError(f"Checkpoint has a tensor {key!r} that a Llama with these params.json "
                             "values does not have: is params.json from the same model?")
        parts = []
        for i, shard in enumerate(shards):
            if key not in shard:
                raise ValueError(f"Shard {i} lacks {key!r}: the shards are not from one checkpoint.")
            parts.append(shard[key])
        if n == 1 or parts[0].dim() == 1:
            t = parts[0]
        else:
            t = torch.cat(parts, dim=_merge_axis(key, parts[0].shape, n, want[key]))
        if t.shape != want[key]:
            raise ValueError(
                f"Shard shapes do not fit params.json: {key} is {tuple(t.shape)} after joining {n} "
                f"shard(s) (each {tuple(parts[0].shape)}), but params.json implies {tuple(want[key])}. "
                "Check that params.json belongs to these weights and that no shard is missing."
            )
        merged[key] = t
    return check_state_dict(merged, args)  # the tie (Llama 3.2 stores it once), nothing missing


def _merge_axis(key: str, shard_shape: torch.Size, n: int, full: torch.Size) -> int:
    """``shard_axis``, with the embeddings' axis read from the shapes: whichever axis makes n
    shards fill the full shape."""
    axis = shard_axis(key)
    if axis is not None:
        return axis
    for axis in (0, 1):
        other = 1 - axis
        if shard_shape[axis] * n == full[axis] and shard_shape[other] == full[other]:
            return axis
    raise ValueError(f"Shard shapes do not fit params.json: {n} shards of {key} shaped "
                     f"{tuple(shard_shape)} cannot make {tuple(full)} along either axis.")


def load_meta(ckpt_dir: PathLike, args: ModelArgs) -> dict[str, torch.Tensor]:
    """The merged state dict of a Meta-layout folder (tensors memory-mapped on the CPU)."""
    files = meta_shards(Path(ckpt_dir))
    shards = [safe_torch_load(p) for p in files]
    with naming(files[0] if len(files) == 1 else Path(ckpt_dir)):
        return merge_shards(shards, args)


def save_meta(state_dict: dict[str, torch.Tensor], args: ModelArgs, out_dir: PathLike,
              n_shards: int = 1, embedding_axis: int = 1) -> Path:
    """Write ``params.json`` + ``consolidated.NN.pth`` in Meta's layout, split into ``n_shards``
    model-parallel shards the way Meta splits them (``embedding_axis`` 1 like Llama 2, 0 like
    Llama 3). The inverse of ``load_meta``; notebook 03 uses it to make a sharded folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, torch.Tensor]] = [{} for _ in range(n_shards)]
    for key, t in state_dict.items():
        axis = None if t.dim() == 1 or n_shards == 1 else shard_axis(key, embedding_axis)
        if axis is not None and t.shape[axis] % n_shards:
            raise ValueError(f"{key} {tuple(t.shape)} does not split into {n_shards} equal shards "
                             f"on dim {axis}.")
        pieces = [t] * n_shards if axis is None else list(torch.chunk(t, n_shards, dim=axis))
        for shard, piece in zip(shards, pieces):
            shard[key] = piece.clone()
    for i, shard in enumerate(shards):
        torch.save(shard, out / f"consolidated.{i:02d}.pth")
    write_params_json(args, out)
    return out


def write_params_json(args: ModelArgs, out_dir: PathLike) -> Path:
    """Write ``out_dir/params.json`` for ``args``, as Meta's downloads have it; returns its path."""
    path = Path(out_dir) / "params.json"
    path.write_text(json.dumps(meta_params(args), indent=2) + "\n")
    return path


def meta_params(args: ModelArgs) -> dict[str, Any]:
    """The ``params.json`` dict for ``args`` (cache sizes are chosen at build time, not stored)."""
    keys = ["dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "multiple_of",
            "ffn_dim_multiplier", "norm_eps", "rope_theta", "use_scaled_rope"]
    if args.use_scaled_rope:
        keys += ["rope_scale_factor", "rope_low_freq_factor", "rope_high_freq_factor",
                 "rope_original_max_len"]
    return {k: getattr(args, k) for k in keys}
