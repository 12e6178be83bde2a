"""From a folder on disk to a ``Llama`` on one device: ``build`` (what ``Llama.build`` calls), the
memory check made before any weight is read, and ``load_tiny`` for the shipped tiny model.

Every layout goes through one function, ``read_checkpoint``: it tells the layout apart
(``checkpoint.detect_layout``) and returns the model's ``ModelArgs``, one state dict in Meta's
names and the tokenizer file it found (a GGUF file hands over the tokenizer it carries). ``build``
knows nothing about layouts; a new one is one more branch in ``read_checkpoint``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import checkpoint, devices
from .linear import store_columnwise
from .model import ModelArgs, Transformer
from .tokenizer import BaseTokenizer, find_tokenizer_file, load_tokenizer

if TYPE_CHECKING:  # generation imports this module; the class is only named in annotations here
    from .generation import Llama

PathLike = str | Path
#: Called with the model's args and whether its embeddings are tied, after params.json /
#: config.json is read and before any weight is: the place for a memory check.
BeforeWeights = Callable[[ModelArgs, bool], None]


def read_checkpoint(ckpt_dir: PathLike, tokenizer_path: PathLike | None = None, *,
                    max_seq_len: int = 512, max_batch_size: int = 4,
                    before_weights: BeforeWeights | None = None,
                    dtype: torch.dtype | None = None
                    ) -> tuple[ModelArgs, dict[str, torch.Tensor], Path | BaseTokenizer | None]:
    """(ModelArgs, state dict in Meta's names on the CPU, the tokenizer) of a checkpoint folder,
    whatever its layout. The tokenizer is loaded and checked against ``vocab_size`` before any
    weight is read (a GGUF layout given a ``tokenizer_path`` returns that path instead).

    The layout comes from ``checkpoint.detect_layout`` and is dispatched here and nowhere else:

    - ``"meta"``: ``params.json`` + ``consolidated.NN.pth`` (shards merged);
    - ``"hf"``: ``config.json`` + ``*.safetensors`` (names and q/k rows converted);
    - ``"gguf"``: one ``.gguf`` file (``nnlib.llama.gguf``): tensors dequantized into ``dtype``
      one at a time, and, unless ``tokenizer_path`` is given, the tokenizer object the file
      carries instead of a path (read once, with the weights).

    **Adding a layout** (the hook): teach ``detect_layout`` its name and add one branch below
    that returns the same triple: args (with ``max_seq_len``/``max_batch_size`` and a real
    ``vocab_size``), the state dict in Meta's names (``checkpoint.merge_shards([sd], args)``
    checks names and shapes), and the file ``load_tokenizer`` should open (``tokenizer_path``
    when given). Call ``before_weights(args, tied)`` before reading any weight.

    ``tokenizer_path`` overrides where the tokenizer is looked for (Meta keeps it next to the
    model folders); a Llama 2 ``params.json`` with ``vocab_size: -1`` takes the size from it.
    """
    ckpt = Path(ckpt_dir).expanduser()
    layout = checkpoint.detect_layout(ckpt)
    if layout in ("meta", "hf"):
        _, params = checkpoint.read_params(ckpt)
        tokenizer = open_tokenizer(tokenizer_path, ckpt)
        if params.get("vocab_size", -1) in (-1, None):  # Llama 2's params.json: from the tokenizer
            params = {**params, "vocab_size": tokenizer.n_words}
        args = ModelArgs.from_dict(params, max_seq_len=max_seq_len, max_batch_size=max_batch_size)
        check_vocabulary(tokenizer, args)
        if before_weights is not None:
            before_weights(args, checkpoint.ties_embeddings(layout, ckpt, params))
        return args, checkpoint.load_state_dict(ckpt, args, layout), tokenizer
    if layout == "gguf":
        from .gguf import read_gguf_checkpoint

        return read_gguf_checkpoint(ckpt, tokenizer_path, max_seq_len=max_seq_len,
                                    max_batch_size=max_batch_size, before_weights=before_weights,
                                    dtype=dtype)
    raise ValueError(f"{ckpt}: layout {layout!r} has no reader in nnlib.llama.loading.read_checkpoint.")


def check_memory_fits(args: ModelArgs, dtype: torch.dtype, device: torch.device,
                      tied_embeddings: bool = False) -> None:
    """Raise MemoryError *before* loading when weights + KV cache exceed the free memory of
    ``device`` (nothing is checked where the free memory cannot be told)."""
    shape = {k: getattr(args, k) for k in ("dim", "n_layers", "n_heads", "vocab_size", "n_kv_heads",
                                           "multiple_of", "ffn_dim_multiplier")}
    name = devices.short_dtype_name(dtype)
    n = devices.count_parameters(**shape, tied_embeddings=tied_embeddings)
    need = devices.weight_bytes(n, name) + devices.kv_cache_bytes(
        max_seq_len=args.max_seq_len, max_batch_size=args.max_batch_size, dtype=name, **shape)
    free = devices.free_memory_bytes(device)
    if free is not None and need > free:
        raise MemoryError(
            f"This model needs about {need / 1e9:.1f} GB on {device} ({n / 1e9:.2f}B parameters in "
            f"{str(dtype).replace('torch.', '')} plus the KV cache) but only {free / 1e9:.1f} GB is "
            "free. Use a smaller dtype (bf16/fp16), smaller max_seq_len/max_batch_size, another "
            "device, or check_memory=False to try anyway."
        )


def build(ckpt_dir: PathLike, tokenizer_path: PathLike | None = None, max_seq_len: int = 512,
          max_batch_size: int = 4, device: Any = None, dtype: Any = None, seed: int = 1,
          model_parallel_size: int | None = None, check_memory: bool = True) -> Llama:
    """``Llama.build``: load a checkpoint folder (see ``read_checkpoint``) onto one device.

    No torchrun, process group or CUDA needed. ``device=None`` picks cuda, mps, then cpu;
    ``dtype=None`` picks bf16 (or fp16) on CUDA, fp16 on MPS, fp32 on the CPU (``NNLIB_DEVICE`` /
    ``NNLIB_DTYPE`` override both). ``max_seq_len``/``max_batch_size`` size the KV cache.
    ``seed`` goes to ``torch.manual_seed``, as in Meta's ``build``: sampling then draws from
    torch's default generator. ``model_parallel_size`` is accepted for Meta's signature and
    ignored: all shards are merged onto ``device``. Raises FileNotFoundError/ValueError naming
    the fix for every bad input, and MemoryError before loading when the weights and cache will
    not fit (``check_memory=False`` skips it); on a Mac, MPS running out of memory while the
    weights or the cache are placed is re-raised as a MemoryError saying what to do.
    """
    from .generation import Llama  # the class that calls this function

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
        before_weights=memory_check if check_memory else None, dtype=dt)
    if isinstance(tokenizer, (str, Path)):  # a GGUF file given another tokenizer's path
        tokenizer = open_tokenizer(tokenizer, Path(ckpt_dir).expanduser())
        check_vocabulary(tokenizer, args)
    torch.manual_seed(seed)
    moved: dict[int, torch.Tensor] = {}  # tied embeddings: one tensor under two names, moved once
    with devices.explain_out_of_memory(dev, f"moving the weights there in {dt}"):
        for k, v in state.items():
            if id(v) not in moved:
                moved[id(v)] = v.to(device=dev, dtype=dt)
            state[k] = moved[id(v)]
    with torch.device("meta"):
        model = Transformer(args)
    model.load_state_dict(state, strict=True, assign=True)
    if state.get("output.weight") is state.get("tok_embeddings.weight"):
        # Tied embeddings: ``assign`` wraps each name in its own Parameter; make them one, so
        # ``parameters()`` (and every count or optimizer built on it) sees the tensor once.
        model.output.weight = model.tok_embeddings.weight
    state.clear()  # the model holds the weights now: let each old copy go as it is re-stored
    moved.clear()
    if dev.type == "cpu" and dt == torch.float32:
        store_columnwise(model)  # the layout linear.Linear decodes fastest from on the CPU
    with devices.explain_out_of_memory(
            dev, f"allocating the KV cache (max_batch_size={args.max_batch_size}, "
                 f"max_seq_len={args.max_seq_len})"):
        model.reset_buffers(dev, dt)
    model.eval()
    llama = Llama(model, tokenizer, dev)
    llama.load_seconds = time.perf_counter() - t0
    return llama


def load_tiny(device: Any = None, max_seq_len: int = 256, max_batch_size: int = 8,
              dtype: Any = None, seed: int = 1) -> Llama:
    """The tiny Shakespeare Llama shipped in ``data/tiny-llama/`` (trained by
    ``scripts/train_tiny_llama.py``; context 256 tokens)."""
    from nnlib import DATA_DIR

    return build(DATA_DIR / "tiny-llama", max_seq_len=max_seq_len, max_batch_size=max_batch_size,
                 device=device, dtype=dtype, seed=seed)


def open_tokenizer(tokenizer_path: PathLike | None, ckpt: Path) -> BaseTokenizer:
    """The tokenizer at ``tokenizer_path``, or the one in ``ckpt``; when there is none, an error
    that says where it looked and what to pass."""
    path = Path(tokenizer_path).expanduser() if tokenizer_path is not None else \
        find_tokenizer_file(ckpt)  # raises FileNotFoundError naming the files it looked for
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
            "tokenizer_path= the one that came with these weights.")
