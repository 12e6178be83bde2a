"""From a folder on disk to a ``Llama`` on one device: ``build`` (what ``Llama.build`` calls), the
memory check made before any weight is read, and ``load_tiny`` for the shipped tiny model.

Every layout goes through one function, ``read_checkpoint``: it tells the layout apart
(``checkpoint.detect_layout``) and returns the model's ``ModelArgs``, one state dict in Meta's
names and the tokenizer file it found (a GGUF file hands over the tokenizer it carries). ``build``
knows nothing about layouts; a new one is one more branch in ``read_checkpoint``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import torch

from . import checkpoint, devices
from .model import ModelArgs, Transformer
from .tokenizer import BaseTokenizer, find_tokenizer_file, load_tokenizer

if TYPE_CHECKING:  # generation imports this module; the class is only named in annotations here
    from .generation import Llama

PathLike = Union[str, Path]
#: Called with the model's args and whether its embeddings are tied, after params.json /
#: config.json is read and before any weight is: the place for a memory check.
BeforeWeights = Callable[[ModelArgs, bool], None]


def read_checkpoint(ckpt_dir: PathLike, tokenizer_path: Optional[PathLike] = None, *,
                    max_seq_len: int = 512, max_batch_size: int = 4,
                    before_weights: Optional[BeforeWeights] = None,
                    dtype: Optional[torch.dtype] = None
                    ) -> tuple[ModelArgs, dict[str, torch.Tensor], Union[Path, BaseTokenizer, None]]:
    """(ModelArgs, state dict in Meta's names on the CPU, the tokenizer file or None) of a
    checkpoint folder, whatever its layout.

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
        tok_path = Path(tokenizer_path).expanduser() if tokenizer_path is not None else \
            _tokenizer_file_or_none(ckpt)
        _, params = checkpoint.read_params(ckpt)
        if params.get("vocab_size", -1) in (-1, None):  # Llama 2's params.json: from the tokenizer
            if tok_path is None or not tok_path.is_file():
                raise FileNotFoundError(_no_tokenizer(tok_path, ckpt))
            params = {**params, "vocab_size": load_tokenizer(tok_path).n_words}
        args = ModelArgs.from_dict(params, max_seq_len=max_seq_len, max_batch_size=max_batch_size)
        if before_weights is not None:
            before_weights(args, checkpoint.ties_embeddings(layout, ckpt, params))
        return args, checkpoint.load_state_dict(ckpt, args, layout), tok_path
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


def build(ckpt_dir: PathLike, tokenizer_path: Optional[PathLike] = None, max_seq_len: int = 512,
          max_batch_size: int = 4, device: Any = None, dtype: Any = None, seed: int = 1,
          model_parallel_size: Optional[int] = None, check_memory: bool = True) -> "Llama":
    """``Llama.build``: load a checkpoint folder (see ``read_checkpoint``) onto one device.

    No torchrun, process group or CUDA needed. ``device=None`` picks cuda, mps, then cpu;
    ``dtype=None`` picks bf16 (or fp16) on CUDA, fp16 on MPS, fp32 on the CPU (``NNLIB_DEVICE`` /
    ``NNLIB_DTYPE`` override both). ``max_seq_len``/``max_batch_size`` size the KV cache.
    ``seed`` goes to ``torch.manual_seed``, as in Meta's ``build``: sampling then draws from
    torch's default generator. ``model_parallel_size`` is accepted for Meta's signature and
    ignored: all shards are merged onto ``device``. Raises FileNotFoundError/ValueError naming
    the fix for every bad input, and MemoryError before loading when the weights and cache will
    not fit (``check_memory=False`` skips it).
    """
    from .generation import Llama  # the class that calls this function

    t0 = time.perf_counter()
    dev = devices.choose_device(device)
    dt = devices.choose_dtype(dev, dtype)
    # Under torchrun (as in Meta's example command) a process group is expected: start it with
    # a backend this device has (gloo off-CUDA), never a hard-coded "nccl". Otherwise: nothing.
    devices.init_process_group_if_needed(dev)
    memory_check = _memory_check(dt, dev) if check_memory else None
    args, state, tok_path = read_checkpoint(ckpt_dir, tokenizer_path, max_seq_len=max_seq_len,
                                            max_batch_size=max_batch_size,
                                            before_weights=memory_check, dtype=dt)
    if isinstance(tok_path, BaseTokenizer):  # the GGUF layout: the file's own tokenizer
        tokenizer = tok_path
    elif tok_path is None or not Path(tok_path).is_file():
        raise FileNotFoundError(_no_tokenizer(tok_path, Path(ckpt_dir)))
    else:
        tokenizer = load_tokenizer(tok_path)
    if tokenizer.n_words != args.vocab_size:
        raise ValueError(
            f"The tokenizer has {tokenizer.n_words} tokens but the model's vocab_size is "
            f"{args.vocab_size}: {tok_path} is not the tokenizer of this checkpoint. Pass "
            "tokenizer_path= the one that came with these weights."
        )
    torch.manual_seed(seed)
    moved: dict[int, torch.Tensor] = {}  # tied embeddings: one tensor under two names, moved once
    for k, v in state.items():
        if id(v) not in moved:
            moved[id(v)] = v.to(device=dev, dtype=dt)
        state[k] = moved[id(v)]
    with torch.device("meta"):
        model = Transformer(args)
    model.load_state_dict(state, strict=True, assign=True)
    model.reset_buffers(dev, dt)
    model.eval()
    llama = Llama(model, tokenizer, dev)
    llama.load_seconds = time.perf_counter() - t0
    return llama


def load_tiny(device: Any = None, max_seq_len: int = 256, max_batch_size: int = 8,
              dtype: Any = None, seed: int = 1) -> "Llama":
    """The tiny Shakespeare Llama shipped in ``data/tiny-llama/`` (trained by
    ``scripts/train_tiny_llama.py``; context 256 tokens)."""
    from nnlib import DATA_DIR

    return build(DATA_DIR / "tiny-llama", max_seq_len=max_seq_len, max_batch_size=max_batch_size,
                 device=device, dtype=dtype, seed=seed)


def _memory_check(dtype: torch.dtype, device: torch.device) -> BeforeWeights:
    def before_weights(args: ModelArgs, tied: bool) -> None:
        check_memory_fits(args, dtype, device, tied_embeddings=tied)
    return before_weights


def _tokenizer_file_or_none(ckpt: Path) -> Optional[Path]:
    try:
        return find_tokenizer_file(ckpt)
    except FileNotFoundError:
        return None


def _no_tokenizer(tok_path: Optional[Path], ckpt: Path) -> str:
    where = f"at {tok_path}" if tok_path is not None else f"in {ckpt}"
    return (f"No tokenizer {where}. Pass tokenizer_path= the tokenizer.model or tokenizer.json "
            "that came with the weights (Meta keeps it next to the model folders).")
