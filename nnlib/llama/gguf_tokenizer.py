"""The tokenizer a GGUF file carries (``tokenizer.ggml.*`` metadata), beside the other kinds of
``nnlib.llama.tokenizer`` and on the same base (``SpecialTokenizer``): byte-level BPE run by the
``tokenizers`` library, or SentencePiece rebuilt from the file's pieces. Built from the metadata
values alone (``gguf.read_gguf`` reads them), so it needs no GGUF reader.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .chat import chat_format_for, template_end_of_turn
from .tokenizer import LLAMA3_PATTERN, SpecialTokenizer, Tokenizer, _check_ids, stop_ids

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


class GGUFTokenizer(SpecialTokenizer):
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

    def __init__(self, metadata: Mapping[str, Any], source: str = "<gguf>"):
        self.model_path = source
        model = metadata.get("tokenizer.ggml.model")
        tokens: list[str] | None = metadata.get("tokenizer.ggml.tokens")
        if model is None or tokens is None:
            raise ValueError(f"{source} carries no tokenizer (tokenizer.ggml.model/tokens). Pass "
                             "tokenizer_path= the tokenizer.json or tokenizer.model of this model.")
        types = metadata.get("tokenizer.ggml.token_type") or [_NORMAL] * len(tokens)
        self.n_words: int = len(tokens)
        self.pad_id: int = -1
        self.bos_id: int = int(metadata.get("tokenizer.ggml.bos_token_id", -1))
        self.eos_id: int = int(metadata.get("tokenizer.ggml.eos_token_id", -1))
        self.add_bos: bool = bool(metadata.get("tokenizer.ggml.add_bos_token",
                                                 model == "llama"))
        self.add_eos: bool = bool(metadata.get("tokenizer.ggml.add_eos_token", False))
        self.chat_template: str | None = metadata.get("tokenizer.chat_template")
        self.special_tokens: dict[str, int] = {
            t: i for i, (t, k) in enumerate(zip(tokens, types)) if k in (_CONTROL, _USER_DEFINED)}
        self._pieces = tokens
        if model == "gpt2":
            pre = metadata.get("tokenizer.ggml.pre", "default")
            merges = metadata.get("tokenizer.ggml.merges")
            if not merges:
                raise ValueError(f"{source}: a gpt2-style tokenizer without merges. " + _FIX_FILE)
            self._bpe = _byte_level_bpe(tokens, merges, types, pre, source)
            self._sp: Tokenizer | None = None
        elif model == "llama":
            scores = metadata.get("tokenizer.ggml.scores")
            if scores is None:
                raise ValueError(f"{source}: a SentencePiece-style tokenizer without scores. "
                                 + _FIX_FILE)
            prefix = bool(metadata.get("tokenizer.ggml.add_space_prefix", True))
            unk = int(metadata.get("tokenizer.ggml.unknown_token_id", 0))
            self._sp = _sentencepiece_from_pieces(tokens, scores, types, prefix,
                                                  (unk, self.bos_id, self.eos_id))
            self._bpe = None
        else:
            raise ValueError(f"{source} uses tokenizer.ggml.model {model!r}; only 'gpt2' (byte-level "
                             "BPE) and 'llama' (SentencePiece) are supported. Pass tokenizer_path= "
                             "a tokenizer.json for this model.")
        # Without a template, Meta's format for the vocabulary (see nnlib.llama.chat).
        self.chat_format = chat_format_for(self.special_tokens, self.chat_template)
        self.stop_tokens: list[int] = stop_ids(
            self.n_words, self.eos_id,
            *(int(metadata.get(f"tokenizer.ggml.{k}_token_id", -1)) for k in ("eot", "eom")),
            template_end_of_turn(self.chat_template, self.special_tokens))

    def encode_ordinary(self, text: str) -> list[int]:
        if self._bpe is not None:
            return self._bpe.encode(text, add_special_tokens=False).ids
        return self._sp.sp_model.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text, control tokens written out."""
        ids = _check_ids(ids, self.n_words, self.pad_id)
        if self._bpe is not None:
            return self._bpe.decode(ids, skip_special_tokens=False)
        return self._sp.sp_model.decode(ids)

    def id_to_piece(self, i: int) -> str:
        """The vocabulary entry for one id as the file spells it (e.g. 'Ġthe' or '▁the')."""
        return self._pieces[int(i)]

    def __repr__(self) -> str:
        return f"GGUFTokenizer({self.model_path!r}, n_words={self.n_words})"


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
