"""GGUF, the one-file format of llama.cpp, Ollama and LM Studio, read into this package's Llama.

A ``.gguf`` file holds three things, all read here with the ``gguf`` library (``GGUFReader``):

- **metadata** (key -> value): ``llama.block_count``, ``llama.embedding_length`` ... become
  ``ModelArgs`` (``gguf_params``);
- **tensors**, often quantized in blocks (Q4_1: 32 weights share one fp16 scale and minimum, so a
  weight costs 5 bits instead of 32). ``gguf.quants.dequantize`` turns each back into float32, one
  tensor at a time, and llama.cpp's names map one to one onto Meta's (``gguf_state_dict``). That
  is why a 98 MB Q4_1 file becomes about 540 MB of fp32 weights in memory;
- **the tokenizer**: the vocabulary, merges or scores, special ids and the chat template
  (handed to ``gguf_tokenizer.GGUFTokenizer``).

Two facts make the mapping short. A GGUF tensor's ``shape`` lists the innermost axis first, so a
torch ``(out, in)`` matrix is stored as ``[in, out]``; and llama.cpp's converter keeps the q/k rows
of a ``llama`` model in Meta's interleaved rotary layout, so (unlike Hugging Face's files) nothing is
un-permuted. No ``output.weight`` means the output matrix is the embedding matrix (tied).

Not here: architectures other than ``llama`` (qwen2, gemma, ...), mixture-of-experts, and
computing with quantized weights (everything is dequantized once, at load time).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

from .files import naming
from .gguf_tokenizer import GGUFTokenizer
from .model import ModelArgs
from .models import SMOL_FILE, SMOL_PIP, smol_path  # noqa: F401 - re-exported: 03b and README use it
from .weights import Checkpoint, DamagedFileError, check_state_dict, ffn_params_for, tie_output

if TYPE_CHECKING:  # imported lazily at run time: ``import nnlib.llama`` must not need gguf
    from gguf import GGUFReader

PathLike = Union[str, "os.PathLike[str]"]

#: llama.cpp's per-block tensor names -> Meta's (``blk.N.attn_q`` -> ``layers.N.attention.wq``).
GGUF_LAYER_NAMES = {
    "attn_q": "attention.wq", "attn_k": "attention.wk", "attn_v": "attention.wv",
    "attn_output": "attention.wo", "ffn_gate": "feed_forward.w1", "ffn_down": "feed_forward.w2",
    "ffn_up": "feed_forward.w3", "attn_norm": "attention_norm", "ffn_norm": "ffn_norm",
}
#: ... and the three outside the blocks.
GGUF_TOP_NAMES = {"token_embd": "tok_embeddings", "output_norm": "norm", "output": "output"}

_FIX_FILE = ("The file is damaged or incomplete (an interrupted download or copy): download it "
             "again and compare its size with the source's.")


# ---- finding and opening the file ------------------------------------------------------------


def find_gguf(path: PathLike) -> Path:
    """The ``.gguf`` file at ``path``: the path itself, or the only ``.gguf`` in a folder."""
    p = Path(path).expanduser()
    if p.is_dir():
        found = sorted(p.glob("*.gguf"))
        if not found:
            raise FileNotFoundError(f"No .gguf file in {p}. Pass the path of the .gguf file itself, "
                                    "or a folder that holds exactly one.")
        if len(found) > 1:
            names = ", ".join(f.name for f in found)
            raise ValueError(f"{p} holds {len(found)} .gguf files ({names}), so which model to "
                             "load is ambiguous. Pass the path of the one you mean.")
        return found[0]
    if not p.is_file():
        raise FileNotFoundError(f"No GGUF file at {p}.")
    return p


def open_gguf(path: PathLike) -> GGUFReader:
    """A ``GGUFReader`` over the file (memory-mapped: tensors are read when dequantized), with the
    library's parser errors turned into one that names the fix, and every tensor checked to lie
    inside the file."""
    p = find_gguf(path)
    with open(p, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise DamagedFileError(f"{p} is not a GGUF file (it starts with {magic!r}, not b'GGUF'). "
                               + _FIX_FILE)
    check_gguf_version(p)
    try:
        reader = _plain_array_reader()(p, "r")
    except Exception as err:  # struct/numpy/ValueError from deep inside the parser
        raise DamagedFileError(f"{p} could not be parsed as GGUF ({type(err).__name__}: {err}). "
                               + _FIX_FILE) from err
    reader.source = p
    size = p.stat().st_size
    for t in reader.tensors:
        if t.data_offset + int(t.n_bytes) > size or t.data.nbytes != int(t.n_bytes):
            raise ValueError(f"{p} ends before tensor {t.name!r} does ({size} bytes on disk). "
                             + _FIX_FILE)
    return reader


def check_gguf_version(path: Path) -> None:
    """The file's GGUF format version against what the installed ``gguf`` library reads. A
    version a little above its newest is a newer file format, fixed by upgrading the library,
    not by downloading again; a huge number is a damaged header."""
    from gguf.gguf_reader import READER_SUPPORTED_VERSIONS

    with open(path, "rb") as f:
        raw = f.read(8)[4:]
    if len(raw) < 4:
        raise DamagedFileError(f"{path} is truncated ({path.stat().st_size} bytes): it ends inside "
                               "the GGUF header. " + _FIX_FILE)
    version = int.from_bytes(raw, "little")
    if version & 0xFFFF == 0:  # a big-endian file, as the reader itself tells
        version = int.from_bytes(raw, "big")
    newest = max(READER_SUPPORTED_VERSIONS)
    if version in READER_SUPPORTED_VERSIONS:
        return
    if newest < version <= 1000:
        raise ValueError(
            f"{path} uses GGUF format version {version}, newer than the installed gguf library "
            f"(version {_gguf_version()}) reads (up to {newest}). Upgrade gguf: pip install -U "
            "gguf. (If the newest gguf still cannot read it, the file is damaged: download it again.)")
    raise DamagedFileError(f"{path} says its GGUF format version is {version}, which is no GGUF "
                           "version (they are 1, 2, 3 ...): its header is damaged. " + _FIX_FILE)


def _plain_array_reader() -> type:
    """``GGUFReader`` over a plain ndarray view of the file's memory map. The reader cuts the
    metadata into ~250k tiny slices (each token string is two); slicing an ``np.memmap`` runs
    Python hooks on every one, which made reading SmolLM2's header 3x slower. Same bytes, same
    mapping: the view keeps the map alive through its ``base``."""
    from gguf import GGUFReader

    class PlainArrayReader(GGUFReader):
        @property
        def data(self) -> np.ndarray:
            return self._plain

        @data.setter
        def data(self, value: np.ndarray) -> None:
            self._plain = value.view(np.ndarray)

    return PlainArrayReader


def metadata_value(reader: GGUFReader, key: str, default: Any = None) -> Any:
    """One metadata value as a Python object (str, int, float, bool or list), or ``default``."""
    field = reader.fields.get(key)
    return default if field is None else field_contents(reader, field)


def field_contents(reader: GGUFReader, field: Any) -> Any:
    """``field.contents()``, with a damaged string (a flipped byte in a token, which the library
    reports as a bare UnicodeDecodeError) raised as a ``DamagedFileError`` naming the file."""
    try:
        return field.contents()
    except UnicodeDecodeError as err:
        source = getattr(reader, "source", "The GGUF file")
        raise DamagedFileError(
            f"{source} has a damaged metadata value {field.name!r}: its text is not UTF-8 at byte "
            f"{err.start} of the value (a flipped byte). " + _FIX_FILE) from err


# ---- metadata -> ModelArgs -------------------------------------------------------------------


def gguf_params(reader: GGUFReader) -> dict[str, Any]:
    """The file's hyper-parameters as Meta ``params.json`` values (for ``ModelArgs.from_dict``),
    with a clear error for anything this Llama does not implement."""
    arch = metadata_value(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(
            f"This GGUF holds a {arch!r} model; nnlib's Llama reads only architecture 'llama' "
            "(Llama 1/2/3, SmolLM, TinyLlama, ...). Load it with transformers "
            "(from_pretrained(folder, gguf_file=name)) or llama.cpp, or choose a Llama GGUF.")

    def need(key: str) -> Any:
        value = metadata_value(reader, f"llama.{key}")
        if value is None:
            raise ValueError(f"The GGUF metadata lacks llama.{key}. " + _FIX_FILE)
        return value

    dim, heads = int(need("embedding_length")), int(need("attention.head_count"))
    kv_heads = metadata_value(reader, "llama.attention.head_count_kv", heads)
    if not isinstance(kv_heads, int):
        raise ValueError("llama.attention.head_count_kv differs per layer; not supported here.")
    if metadata_value(reader, "llama.expert_count", 0):
        raise ValueError("This GGUF is a mixture-of-experts Llama (llama.expert_count > 0, e.g. "
                         "Mixtral); nnlib's Llama has one feed-forward network per layer.")
    head_dim = dim // heads
    for key in ("rope.dimension_count", "attention.key_length", "attention.value_length"):
        value = metadata_value(reader, f"llama.{key}")
        if value not in (None, head_dim):
            raise ValueError(f"llama.{key}={value} differs from embedding_length/head_count="
                             f"{head_dim}; that Llama variant is not supported here.")
    scaling = metadata_value(reader, "llama.rope.scaling.type", "none")
    if scaling not in ("none", "") or any(t.name == "rope_freqs.weight" for t in reader.tensors):
        raise ValueError(
            f"This GGUF scales its rotary embeddings (type {scaling!r}, or a rope_freqs tensor as "
            "Llama 3.1+ files carry); nnlib reads that only from Meta/Hugging Face folders "
            "(params.json / config.json). Load the model from such a folder.")
    hidden = metadata_value(reader, "llama.feed_forward_length")
    params: dict[str, Any] = dict(
        dim=dim, n_layers=int(need("block_count")), n_heads=heads, n_kv_heads=int(kv_heads),
        vocab_size=_vocab_size(reader),
        norm_eps=_shortest(metadata_value(reader, "llama.attention.layer_norm_rms_epsilon", 1e-5)),
        rope_theta=_shortest(metadata_value(reader, "llama.rope.freq_base", 10000.0)),
        use_scaled_rope=False,
    )
    params.update(ffn_params_for(dim, int(hidden if hidden is not None else need("feed_forward_length"))))
    return params


def _shortest(value: float) -> float:
    """A float32 metadata value as the decimal it was written from (1e-05, not 9.99999974738e-06)."""
    return float(str(np.float32(value)))


def _vocab_size(reader: GGUFReader) -> int:
    size = metadata_value(reader, "llama.vocab_size")
    if size is not None:
        return int(size)
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    if tokens is not None:
        return len(tokens.data)
    embd = [t for t in reader.tensors if t.name == "token_embd.weight"]
    if not embd:
        raise ValueError("The GGUF has no token_embd.weight tensor. " + _FIX_FILE)
    return int(embd[0].shape[-1])


def has_tied_output(reader: GGUFReader) -> bool:
    """True when the file has no ``output.weight``: the embedding matrix is used again."""
    return not any(t.name == "output.weight" for t in reader.tensors)


# ---- tensors -> Meta's state dict ------------------------------------------------------------


def meta_name(gguf_name: str) -> str:
    """``blk.3.attn_q.weight`` -> ``layers.3.attention.wq.weight``; ValueError for unknown names."""
    base, dot, suffix = gguf_name.rpartition(".")
    if suffix != "weight" or not dot:
        raise ValueError(f"Unexpected tensor {gguf_name!r} in a llama GGUF (Meta's Llama has "
                         "weights only, no biases).")
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)", base)
    if m and m.group(2) in GGUF_LAYER_NAMES:
        return f"layers.{m.group(1)}.{GGUF_LAYER_NAMES[m.group(2)]}.weight"
    if base in GGUF_TOP_NAMES:
        return f"{GGUF_TOP_NAMES[base]}.weight"
    raise ValueError(f"Unexpected tensor {gguf_name!r} in a llama GGUF; this file is not a plain "
                     "Llama (a variant with extra tensors is not supported).")


def dequantize_tensor(tensor: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One GGUF tensor -> a torch tensor in torch's axis order (``reversed(shape)``) and ``dtype``.

    ``gguf.quants.dequantize`` gives float32 (F16/BF16 are widened exactly); the cast to ``dtype``
    happens right away so that only one float32 tensor exists at a time."""
    from gguf.quants import dequantize

    kind = tensor.tensor_type
    try:
        values = dequantize(tensor.data, kind)
    except NotImplementedError as err:
        raise ValueError(
            f"Tensor {tensor.name!r} is stored as {kind.name}, which the gguf library (version "
            f"{_gguf_version()}) cannot dequantize. Upgrade it (pip install -U gguf), or use a "
            "file quantized as F16, BF16, Q8_0, Q4_0/Q4_1 or a K-quant (Q4_K_M, Q6_K ...), e.g. made "
            "with llama.cpp's llama-quantize.") from err
    shape = tuple(int(n) for n in reversed(tensor.shape))
    values = np.ascontiguousarray(values, dtype=np.float32).reshape(shape)
    if not values.flags.writeable:  # F32 tensors come back as read-only views of the file
        values = values.copy()
    return torch.from_numpy(values).to(dtype)


def gguf_state_dict(reader: GGUFReader, dtype: torch.dtype = torch.float32
                    ) -> dict[str, torch.Tensor]:
    """Every tensor dequantized into ``dtype`` under Meta's name. With tied embeddings,
    ``output.weight`` is the *same* tensor object as ``tok_embeddings.weight`` (stored once)."""
    state: dict[str, torch.Tensor] = {}
    for t in reader.tensors:
        state[meta_name(t.name)] = dequantize_tensor(t, dtype)
    return tie_output(state)


def _gguf_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gguf")
    except PackageNotFoundError:
        return "unknown"


# ---- the tokenizer stored in the file --------------------------------------------------------


# ---- a Llama from a GGUF file ----------------------------------------------------------------


def tokenizer_metadata(reader: GGUFReader) -> dict[str, Any]:
    """Every ``tokenizer.*`` metadata value, for ``GGUFTokenizer``."""
    return {k: field_contents(reader, f) for k, f in reader.fields.items()
            if k.startswith("tokenizer.")}


def read_gguf(path: PathLike) -> Checkpoint:
    """The reader of a ``.gguf`` file (or a folder holding one): the metadata as Meta's values,
    tied when the file has no ``output.weight``, the tokenizer it carries, and its tensors
    dequantized one at a time into the dtype ``weights`` is given (float32 when None)."""
    file = find_gguf(path)
    reader = open_gguf(file)

    def weights(args: ModelArgs, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        with naming(file):
            return check_state_dict(gguf_state_dict(reader, dtype or torch.float32), args)

    def tokenizer() -> GGUFTokenizer:
        with naming(file):
            return GGUFTokenizer(tokenizer_metadata(reader), str(file))

    with naming(file):  # a damaged key or value: say which file
        params = gguf_params(reader)
    return Checkpoint("gguf", params, has_tied_output(reader), tokenizer=tokenizer, weights=weights)
