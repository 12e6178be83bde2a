"""Which reader a checkpoint needs, and nothing else: ``detect_layout`` tells the layout from
the files, ``read`` hands the path to that format's reader (``READERS``), the one dispatch.

Three layouts on disk, one result (a ``weights.Checkpoint``): Meta's (``meta_format``), Hugging
Face's (``hf_format``), llama.cpp's GGUF (``gguf``). The names notebooks import from here
(``save_meta``, ``save_hf``, ``permute_for_hf`` ...) are re-exported from their readers.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .gguf import read_gguf
from .hf_format import (  # noqa: F401 - re-exported: notebooks import them from here
    hf_config_to_params,
    hf_to_meta,
    hf_weight_files,
    meta_to_hf,
    permute_for_hf,
    read_hf,
    read_hf_weights,
    save_hf,
    sentencepiece_adds_dummy_prefix,
    unpermute_from_hf,
)
from .meta_format import (  # noqa: F401 - re-exported
    COLUMN_PARALLEL,
    ROW_PARALLEL,
    load_meta,
    merge_shards,
    meta_params,
    meta_rope_defaults,
    meta_shards,
    read_meta,
    save_meta,
    shard_axis,
    write_params_json,
)
from .model import ModelArgs
from .weights import (  # noqa: F401 - re-exported
    Checkpoint,
    PathLike,
    expected_shapes,
    ffn_params_for,
    read_json,
    safe_torch_load,
)

#: layout name -> its reader. A new format is a reader returning a ``Checkpoint``, one entry
#: here and one case in ``detect_layout``.
READERS: dict[str, Callable[[Path], Checkpoint]] = {"meta": read_meta, "hf": read_hf, "gguf": read_gguf}


def detect_layout(ckpt_dir: PathLike) -> str:
    """'meta', 'hf' or 'gguf' (a .gguf file, or a folder whose only weights are .gguf files), or
    a FileNotFoundError naming what is missing."""
    d = Path(ckpt_dir)
    if not d.exists():
        raise FileNotFoundError(f"Checkpoint directory {d} does not exist. Pass ckpt_dir= the folder "
                                "holding params.json + consolidated.*.pth (Meta) or config.json + "
                                "*.safetensors (Hugging Face), or a .gguf file.")
    if d.is_file() and d.suffix.lower() == ".gguf":
        return "gguf"
    if not d.is_dir():
        raise FileNotFoundError(f"{d} is a file; ckpt_dir must be the folder that contains it.")
    if (d / "params.json").is_file():
        if not meta_shards(d):
            raise FileNotFoundError(f"{d} has params.json but no weight files (consolidated.00.pth "
                                    "...): the download is incomplete, or the .pth files are elsewhere.")
        return "meta"
    if (d / "config.json").is_file():
        if not hf_weight_files(d):
            raise FileNotFoundError(f"{d} has config.json but no weight files (*.safetensors or "
                                    "pytorch_model*.bin): download the weights too.")
        return "hf"
    if any(d.glob("*.gguf")):
        return "gguf"
    if meta_shards(d) or hf_weight_files(d):
        raise FileNotFoundError(f"{d} has weight files but no params.json (Meta layout) or config.json "
                                "(Hugging Face layout): copy the one that came with the weights here.")
    raise FileNotFoundError(f"{d} has no params.json/config.json and no weight files "
                            "(consolidated.*.pth, *.safetensors): is this the right folder?")


def read(ckpt_dir: PathLike) -> Checkpoint:
    """The ``Checkpoint`` of a folder or file, whatever its layout (nothing heavy is read yet)."""
    path = Path(ckpt_dir).expanduser()
    return READERS[detect_layout(path)](path)


def read_params(ckpt_dir: PathLike) -> tuple[str, dict[str, Any]]:
    """('meta', 'hf' or 'gguf', the Meta ``params.json`` values) of a checkpoint folder or file."""
    found = read(ckpt_dir)
    return found.layout, found.params


def ties_embeddings(layout: str, ckpt_dir: PathLike, params: dict[str, Any] | None = None) -> bool:
    """Whether the checkpoint's output matrix is its embedding matrix (Llama 3.2 1B/3B, SmolLM2),
    known before any weight is read: the reader's ``tied`` (``layout``/``params`` are accepted
    for the old signature; the files decide)."""
    return read(ckpt_dir).tied


def load_state_dict(ckpt_dir: PathLike, args: ModelArgs, layout: str | None = None,
                    dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """One state dict in Meta's names, checked against ``args``, whatever the layout."""
    return read(ckpt_dir).weights(args, dtype)
