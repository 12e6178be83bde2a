"""Tokenizers behind one small interface, the one Meta's code calls.

Every kind has ``encode(s, bos, eos) -> list[int]``, ``decode(ids) -> str`` and the ids
``bos_id``, ``eos_id``, ``pad_id`` (``-1`` when the vocabulary has no padding token, as in Llama 2)
and ``n_words`` (the vocabulary size, which must equal the model's ``vocab_size``).

``Tokenizer(model_path)`` opens a SentencePiece ``tokenizer.model`` (Llama 1/2 and the shipped
tiny Llama). ``load_tokenizer(path)`` is the one place that chooses a kind from the file, so a
Llama 3 tiktoken file can be added later as another class with the same methods.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, Sequence, Union, runtime_checkable

PathLike = Union[str, "os.PathLike[str]"]


@runtime_checkable
class BaseTokenizer(Protocol):
    """What ``Llama`` needs from a tokenizer."""

    bos_id: int
    eos_id: int
    pad_id: int
    n_words: int

    def encode(self, s: str, bos: bool, eos: bool) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class Tokenizer:
    """A SentencePiece tokenizer, as in Meta's Llama 2 code.

    Ids come from the model file: the shipped tiny Llama and Llama 2 use unk 0, bos 1, eos 2 and
    no pad (``pad_id == -1``).
    """

    def __init__(self, model_path: PathLike):
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"No tokenizer file at {path}. Pass tokenizer_path= pointing at the "
                "'tokenizer.model' that came with the weights."
            )
        from sentencepiece import SentencePieceProcessor

        self.sp_model = SentencePieceProcessor()
        try:
            self.sp_model.Load(str(path))
        except Exception as err:  # sentencepiece raises OSError/RuntimeError with a terse text
            raise ValueError(
                f"{path} is not a SentencePiece model ({err}). Llama 1/2 ship a SentencePiece "
                "'tokenizer.model'; Llama 3's tiktoken file is not supported yet."
            ) from err
        self.model_path = str(path)
        self.n_words: int = self.sp_model.vocab_size()
        self.bos_id: int = self.sp_model.bos_id()
        self.eos_id: int = self.sp_model.eos_id()
        self.pad_id: int = self.sp_model.pad_id()

    def encode(self, s: str, bos: bool, eos: bool) -> list[int]:
        """Text -> ids, with BOS in front and/or EOS at the end when asked."""
        if not isinstance(s, str):
            raise TypeError(f"encode expects a str, got {type(s).__name__}.")
        ids: list[int] = self.sp_model.encode(s)
        if bos:
            ids = [self.bos_id] + ids
        if eos:
            ids = ids + [self.eos_id]
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text. BOS/EOS/pad are dropped; an id outside the vocabulary raises ValueError."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not (0 <= i < self.n_words) and i != self.pad_id]
        if bad:
            raise ValueError(f"Token ids {bad[:5]} are outside this vocabulary of {self.n_words}.")
        return self.sp_model.decode([i for i in ids if i != self.pad_id])

    def id_to_piece(self, i: int) -> str:
        """The vocabulary entry for one id, e.g. '▁the' or '<0x0A>' (a newline byte)."""
        return self.sp_model.id_to_piece(int(i))

    def __repr__(self) -> str:
        return f"Tokenizer({self.model_path!r}, n_words={self.n_words})"


def load_tokenizer(path: PathLike) -> BaseTokenizer:
    """Open the tokenizer at ``path``, choosing its kind from the file.

    Today: SentencePiece. The place to add Llama 3's tiktoken rank file (lines of
    ``base64-token rank``) behind the same interface.
    """
    return Tokenizer(path)
