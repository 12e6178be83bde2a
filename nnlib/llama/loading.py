"""From a folder or file on disk to a ``Llama`` on one device: ``read_checkpoint`` composes the
format readers (``checkpoint.read`` picks one), ``build`` (what ``Llama.build`` calls) places the
weights, the memory check runs before any weight is read, and ``load_tiny`` / ``load_smol`` are
two calls of ``build``.

Every layout returns the same ``weights.Checkpoint`` (params, tied or not, its tokenizer, its
weights); here, once for all of them: the tokenizer is opened (``tokenizer_path`` wins), the
vocabulary checked, ``vocab_size`` filled in, the memory check run, then the weights read.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.overrides import TorchFunctionMode

from . import checkpoint, devices, memory
from .files import verify_checklist
from .linear import store_columnwise
from .model import ModelArgs, Transformer
from .tokenizer import BaseTokenizer, load_tokenizer

PathLike = str | Path


class Loaded(NamedTuple):
    """What ``build`` returns and ``Llama.build`` wraps: the model on its device, its
    tokenizer, the device, and the seconds loading took."""

    model: Transformer
    tokenizer: BaseTokenizer
    device: torch.device
    seconds: float

#: Called with the model's args and whether its embeddings are tied, after params.json /
#: config.json is read and before any weight is: the place for a memory check.
BeforeWeights = Callable[[ModelArgs, bool], None]


class _NoRandomInit(TorchFunctionMode):
    """Inside it, ``torch.nn.init`` functions (the random starting weights a layer draws when it
    is made) do nothing. ``build`` makes the model on the "meta" device, where a parameter has a
    shape and no memory, and the checkpoint's tensors replace every one of them: drawing random
    numbers for them is wasted, and on "meta" torch's first draw imports sympy (about a second
    and 36 MiB)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init":
            return kwargs["tensor"] if "tensor" in kwargs else args[0]
        return func(*args, **kwargs)


def empty_model(args: ModelArgs) -> Transformer:
    """``Transformer(args)`` with its parameters on "meta" (no memory, no random init): the shape
    of the network, ready for ``load_state_dict(..., assign=True)``. Its small rope tables are real
    (the model computes them on the CPU) and its KV cache is on "meta" until ``reset_buffers``."""
    with torch.device("meta"), _NoRandomInit():
        return Transformer(args)


def read_checkpoint(ckpt_dir: PathLike, tokenizer_path: PathLike | None = None, *,
                    max_seq_len: int = 512, max_batch_size: int = 4,
                    before_weights: BeforeWeights | None = None,
                    dtype: torch.dtype | None = None, verify_checksums: bool = True
                    ) -> tuple[ModelArgs, dict[str, torch.Tensor], BaseTokenizer]:
    """(ModelArgs, state dict in Meta's names on the CPU, the tokenizer) of a checkpoint folder
    or file, whatever its layout (``checkpoint.READERS``: Meta, Hugging Face, GGUF). The
    tokenizer is the one at ``tokenizer_path`` when given, else the checkpoint's own (Meta keeps
    it next to the model folders; a GGUF file carries it); it is checked against ``vocab_size``
    before any weight is read, and a Llama 2 ``params.json`` with ``vocab_size: -1`` takes the
    size from it. ``dtype`` is where a reader that converts (GGUF dequantizes) converts into.
    With ``verify_checksums``, Meta's md5 checklists are checked first (``verify_download``).

    **Adding a layout**: a reader returning a ``weights.Checkpoint``, one entry in
    ``checkpoint.READERS`` and one case in ``checkpoint.detect_layout``; nothing here changes.
    """
    ckpt = Path(ckpt_dir).expanduser()
    if verify_checksums:
        verify_download(ckpt, tokenizer_path)
    found = checkpoint.read(ckpt)
    tokenizer = open_tokenizer(tokenizer_path) if tokenizer_path is not None else found.tokenizer()
    params = found.params
    if params.get("vocab_size", -1) in (-1, None):  # Llama 2's params.json: from the tokenizer
        params = {**params, "vocab_size": tokenizer.n_words}
    args = ModelArgs.from_dict(params, max_seq_len=max_seq_len, max_batch_size=max_batch_size)
    check_vocabulary(tokenizer, args)
    if before_weights is not None:
        before_weights(args, found.tied)
    return args, found.weights(args, dtype), tokenizer


def verify_download(ckpt_dir: PathLike, tokenizer_path: PathLike | None = None) -> list[Path]:
    """Check the md5 sums Meta's download ships, where they are: ``checklist.chk`` in the model
    folder (``params.json``, every ``consolidated.*.pth``) and ``tokenizer_checklist.chk`` next
    to the tokenizer (``tokenizer_path``, else the folder's ``tokenizer.model``, else the one
    beside the folder, Llama 2's layout). Returns the
    files checked (none when there is no checklist: Hugging Face and GGUF files carry none).
    A mismatch is a ``files.DamagedFileError`` naming the file and Meta's own check command,
    raised before any weight is read: a flipped byte in tensor data would otherwise load
    silently and only change what the model says."""
    ckpt = Path(ckpt_dir).expanduser()
    folder = ckpt if ckpt.is_dir() else ckpt.parent
    checked: list[Path] = []
    if (folder / "checklist.chk").is_file():
        checked += verify_checklist(folder / "checklist.chk")
    if tokenizer_path:
        tokenizer = Path(tokenizer_path).expanduser()
    else:
        tokenizer = next((t for t in (folder / "tokenizer.model", folder.parent / "tokenizer.model")
                          if t.is_file()), folder / "tokenizer.model")
    if tokenizer.is_file() and (tokenizer.parent / "tokenizer_checklist.chk").is_file():
        checked += verify_checklist(tokenizer.parent / "tokenizer_checklist.chk", [tokenizer.name])
    return checked


def check_memory_fits(args: ModelArgs, dtype: torch.dtype, device: torch.device,
                      tied_embeddings: bool = False) -> None:
    """Raise MemoryError *before* loading when weights + KV cache exceed the free memory of
    ``device`` (nothing is checked where the free memory cannot be told)."""
    shape = {k: getattr(args, k) for k in ("dim", "n_layers", "n_heads", "vocab_size", "n_kv_heads",
                                           "multiple_of", "ffn_dim_multiplier")}
    name = memory.short_dtype_name(dtype)
    n = memory.count_parameters(**shape, tied_embeddings=tied_embeddings)
    need = memory.weight_bytes(n, name) + memory.kv_cache_bytes(
        max_seq_len=args.max_seq_len, max_batch_size=args.max_batch_size, dtype=name, **shape)
    free = memory.free_memory_bytes(device)
    if free is not None and need > free:
        raise MemoryError(
            f"This model needs about {need / 1e9:.1f} GB on {device} ({n / 1e9:.2f}B parameters in "
            f"{str(dtype).replace('torch.', '')} plus the KV cache) but only {free / 1e9:.1f} GB is "
            "free. Use a smaller dtype (bf16/fp16), smaller max_seq_len/max_batch_size, another "
            "device, or check_memory=False to try anyway."
        )


def build(ckpt_dir: PathLike, tokenizer_path: PathLike | None = None, max_seq_len: int = 512,
          max_batch_size: int = 4, device: Any = None, dtype: Any = None, seed: int = 1,
          model_parallel_size: int | None = None, check_memory: bool = True,
          verify_checksums: bool = True) -> Loaded:
    """``Llama.build``: load a checkpoint folder (see ``read_checkpoint``) onto one device.

    No torchrun, process group or CUDA needed. ``device=None`` picks cuda, mps, then cpu;
    ``dtype=None`` picks bf16 (or fp16) on CUDA, fp16 on MPS, fp32 on the CPU (``NNLIB_DEVICE`` /
    ``NNLIB_DTYPE`` override both). ``max_seq_len``/``max_batch_size`` size the KV cache.
    ``seed`` goes to ``torch.manual_seed``, as in Meta's ``build``: sampling then draws from
    torch's default generator. ``model_parallel_size`` is accepted for Meta's signature and
    ignored: all shards are merged onto ``device``. Raises FileNotFoundError/ValueError naming
    the fix for every bad input, and MemoryError before loading when the weights and cache will
    not fit (``check_memory=False`` skips it). Where Meta's ``checklist.chk`` /
    ``tokenizer_checklist.chk`` are present, the files' md5 sums are checked first
    (``verify_checksums=False`` skips that); a damaged file raises a ``ValueError`` naming it
    and what to do. On a Mac, MPS running out of memory while the
    weights or the cache are placed is re-raised as a MemoryError saying what to do.
    """
    t0 = time.perf_counter()
    dev = devices.choose_device(device)
    dt = devices.choose_dtype(dev, dtype)
    # Under torchrun (as in Meta's example command) a process group is expected: start it with
    # a backend this device has (gloo off-CUDA), never a hard-coded "nccl". Otherwise: nothing.
    devices.init_process_group_if_needed(dev)
    def memory_check(args: ModelArgs, tied: bool) -> None:
        check_memory_fits(args, dt, dev, tied_embeddings=tied)

    args, state, tokenizer = read_checkpoint(
        ckpt_dir, tokenizer_path, max_seq_len=max_seq_len, max_batch_size=max_batch_size,
        before_weights=memory_check if check_memory else None, dtype=dt,
        verify_checksums=verify_checksums)
    torch.manual_seed(seed)
    moved: dict[int, torch.Tensor] = {}  # tied embeddings: one tensor under two names, moved once
    with memory.explain_out_of_memory(dev, f"moving the weights there in {dt}"):
        for k, v in state.items():
            if id(v) not in moved:
                moved[id(v)] = v.to(device=dev, dtype=dt)
            state[k] = moved[id(v)]
    model = empty_model(args)
    model.load_state_dict(state, strict=True, assign=True)
    if state.get("output.weight") is state.get("tok_embeddings.weight"):
        # Tied embeddings: ``assign`` wraps each name in its own Parameter; make them one, so
        # ``parameters()`` (and every count or optimizer built on it) sees the tensor once.
        model.output.weight = model.tok_embeddings.weight
    state.clear()  # the model holds the weights now: let each old copy go as it is re-stored
    moved.clear()
    if dev.type == "cpu" and dt == torch.float32:
        store_columnwise(model)  # the layout linear.Linear decodes fastest from on the CPU
    with memory.explain_out_of_memory(
            dev, f"allocating the KV cache (max_batch_size={args.max_batch_size}, "
                 f"max_seq_len={args.max_seq_len})"):
        model.reset_buffers(dev, dt)
    model.eval()
    return Loaded(model, tokenizer, dev, time.perf_counter() - t0)


def open_tokenizer(tokenizer_path: PathLike) -> BaseTokenizer:
    """The tokenizer at ``tokenizer_path``; when there is none, an error that says what to pass."""
    path = Path(tokenizer_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"No tokenizer at {path}. Pass tokenizer_path= the tokenizer.model or tokenizer.json "
            "that came with the weights (Meta keeps it next to the model folders).")
    return load_tokenizer(path)


def check_vocabulary(tokenizer: BaseTokenizer, args: ModelArgs) -> None:
    """A ValueError naming the fix when the tokenizer is not this model's (another vocabulary)."""
    if tokenizer.n_words != args.vocab_size:
        where = getattr(tokenizer, "model_path", "the tokenizer")
        raise ValueError(
            f"The tokenizer has {tokenizer.n_words} tokens but the model's vocab_size is "
            f"{args.vocab_size}: {where} is not the tokenizer of this checkpoint. Pass "
            "tokenizer_path= the one that came with these weights (or leave it out to use the "
            "one the checkpoint carries).")
