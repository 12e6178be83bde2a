"""Tokenizers behind one small interface, the one Meta's code calls.

Three kinds of file, one interface:

- ``Tokenizer``: a SentencePiece ``tokenizer.model`` (Llama 1/2 and the shipped tiny Llama).
- ``TiktokenTokenizer``: Llama 3's ``tokenizer.model``, which is *not* SentencePiece but a text
  file of byte-pair ranks (one ``base64(token) rank`` per line), read with tiktoken, Meta's
  pre-tokenization pattern and Meta's 256 special tokens appended after the ranks.
- ``HFTokenizer``: a Hugging Face ``tokenizer.json``, read with the ``tokenizers`` library.

Every kind has ``encode(s, bos, eos) -> list[int]``, ``decode(ids) -> str``, the ids
``bos_id``, ``eos_id``, ``pad_id`` (``-1``: no padding token, as in Meta's Llama 2 and 3.0 code),
``stop_tokens`` (the ids that end a generation: EOS for Llama 2; end-of-text, end-of-message and
end-of-turn for Llama 3), ``special_tokens`` (text -> id) and ``n_words`` (the vocabulary size,
which must equal the model's ``vocab_size``). ``chat_format`` says which prompt format the
vocabulary was made for ("llama2" or "llama3"); ``nnlib.llama.chat`` uses it.

``load_tokenizer(path)`` is the one place that picks a kind, from the file's *contents* (or, for a
folder, from the files in it), never from a model name.

Not here: training tokenizers, and Llama 4 or other vocabularies with different special tokens.
"""
from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterator, Sequence, Set
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from .chat import chat_format_for, chat_template_of, template_end_of_turn
from .files import read_json

PathLike = str | os.PathLike[str]
AllowedSpecial = Literal["all"] | Set[str]

#: Meta's Llama 3 pre-tokenization pattern: text is cut into pieces (contractions, a word with at
#: most one leading non-letter, runs of at most 3 digits, punctuation runs, newlines, spaces) and
#: byte-pair merges never cross a piece boundary.
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
#: Meta appends this many special tokens after the byte-pair ranks (128000 ranks -> 128256 ids).
NUM_RESERVED_SPECIAL_TOKENS = 256
#: The named special tokens, in Meta's order (Llama 3.1 / 3.2 code); the rest are reserved.
LLAMA3_NAMED_SPECIAL_TOKENS = (
    "<|begin_of_text|>", "<|end_of_text|>",
    "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>", "<|step_id|>",
    "<|start_header_id|>", "<|end_header_id|>",
    "<|eom_id|>",  # end of message (a tool call follows)
    "<|eot_id|>",  # end of turn
    "<|python_tag|>",
)
#: Without these a vocabulary cannot begin, end or format a Llama 3 chat.
LLAMA3_REQUIRED_SPECIAL_TOKENS = ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                  "<|end_header_id|>", "<|eot_id|>")
#: Where generation stops, when the vocabulary has them (Meta stops on end-of-turn and
#: end-of-message; end-of-text is where a base model ends a document).
LLAMA3_STOP_TOKENS = ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")

#: tiktoken's Rust core can overflow its stack on enormous inputs; Meta cuts text first.
TIKTOKEN_MAX_ENCODE_CHARS = 400_000
#: ... and very long runs of only-whitespace or only-non-whitespace characters.
MAX_NO_WHITESPACES_CHARS = 25_000

_RANK_LINE = re.compile(rb"^[A-Za-z0-9+/]+={0,2}[ \t]+[0-9]+\r?$")
_HELP_FILES = ("Pass tokenizer_path= the tokenizer that came with the weights: Meta's downloads "
               "have tokenizer.model (SentencePiece for Llama 1/2, a tiktoken rank file for Llama 3), "
               "Hugging Face's have tokenizer.json (and original/tokenizer.model).")


def llama3_special_tokens(n: int = NUM_RESERVED_SPECIAL_TOKENS) -> list[str]:
    """Meta's ``n`` Llama 3 special tokens in id order: the named ones, then
    ``<|reserved_special_token_2|>`` ... so that there are ``n`` in all. Token ``i`` of this list
    gets id ``len(ranks) + i`` (128000 + i for the real vocabulary)."""
    named = list(LLAMA3_NAMED_SPECIAL_TOKENS)
    if n < len(named):
        raise ValueError(f"Llama 3 needs at least {len(named)} special tokens, got n={n}.")
    return named + [f"<|reserved_special_token_{2 + i}|>" for i in range(n - len(named))]


@runtime_checkable
class BaseTokenizer(Protocol):
    """What ``Llama`` (generate, text_completion, chat_completion) needs from a tokenizer."""

    bos_id: int
    eos_id: int
    pad_id: int
    n_words: int
    stop_tokens: list[int]

    def encode(self, s: str, bos: bool, eos: bool) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class SpecialTokenizer:
    """The base of every kind here (and of ``gguf_tokenizer.GGUFTokenizer``): Meta's rule for
    special tokens, BOS/EOS and stop tokens, written once.

    A kind sets ``special_tokens``, ``bos_id``, ``eos_id``, ``pad_id``, ``n_words``,
    ``stop_tokens`` (``stop_ids``), ``add_bos`` (whether the model starts text with BOS) and
    ``chat_format``, and implements ``encode_ordinary`` (plain text, no special tokens) and
    ``decode``."""

    add_bos: bool = True
    special_tokens: dict[str, int]
    bos_id: int
    eos_id: int
    pad_id: int
    n_words: int
    stop_tokens: list[int]

    def encode_ordinary(self, text: str) -> list[int]:
        raise NotImplementedError

    def encode(self, s: str, bos: bool, eos: bool, *, allowed_special: AllowedSpecial = frozenset()
               ) -> list[int]:
        """Text -> ids, with BOS in front (when asked *and* the model uses one) and/or EOS at the
        end. Special-token text in ``s`` (say ``"<|eot_id|>"``) is encoded as plain text unless
        listed in ``allowed_special`` (or ``"all"``, as for a rendered chat template): Meta's
        default, so a user's message cannot smuggle in a control token."""
        _check_text(s)
        ids: list[int] = []
        for part in _split_on_specials(s, _allowed(self.special_tokens, allowed_special)):
            if isinstance(part, int):
                ids.append(part)
            else:
                ids.extend(self.encode_ordinary(part))
        return _wrap(ids, self.bos_id if bos and self.add_bos and self.bos_id >= 0 else None,
                     self.eos_id if eos and self.eos_id >= 0 else None)


def stop_ids(n_words: int, *ids: int | None) -> list[int]:
    """The ids that end a generation, in the order given, each once, those outside the
    vocabulary (or None: a token the vocabulary lacks) left out."""
    return list(dict.fromkeys(i for i in ids if i is not None and 0 <= i < n_words))


def named_ids(special: dict[str, int], names: Sequence[str]) -> list[int | None]:
    """The ids of ``names`` in ``special`` (None for a name it lacks)."""
    return [special.get(t) for t in names]


# ---- SentencePiece (Llama 1/2) ----------------------------------------------------------------


class Tokenizer(SpecialTokenizer):
    """A SentencePiece tokenizer, as in Meta's Llama 2 code.

    Ids come from the model file: the shipped tiny Llama and Llama 2 use unk 0, bos 1, eos 2 and
    no pad (``pad_id == -1``). Generation stops at EOS only.
    """

    kind = "sentencepiece"
    chat_format = "llama2"

    def __init__(self, model_path: PathLike):
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"No tokenizer file at {path}. {_HELP_FILES}")
        from sentencepiece import SentencePieceProcessor

        self.sp_model = SentencePieceProcessor()
        try:
            self.sp_model.Load(str(path))
        except Exception as err:  # sentencepiece raises OSError/RuntimeError with a terse text
            raise ValueError(
                f"{path} is not a SentencePiece model ({err}). Use load_tokenizer(path), which also "
                "reads Llama 3's tiktoken tokenizer.model and Hugging Face's tokenizer.json."
            ) from err
        self.model_path = str(path)
        self.n_words: int = self.sp_model.vocab_size()
        self.bos_id: int = self.sp_model.bos_id()
        self.eos_id: int = self.sp_model.eos_id()
        self.pad_id: int = self.sp_model.pad_id()
        self.stop_tokens: list[int] = [self.eos_id]
        self.special_tokens: dict[str, int] = {
            self.sp_model.id_to_piece(i): i for i in (self.bos_id, self.eos_id) if i >= 0}

    def encode_ordinary(self, text: str) -> list[int]:
        return self.sp_model.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text. BOS/EOS/pad are dropped; an id outside the vocabulary raises ValueError."""
        ids = _check_ids(ids, self.n_words, self.pad_id)
        return self.sp_model.decode(ids)

    def id_to_piece(self, i: int) -> str:
        """The vocabulary entry for one id, e.g. '▁the' or '<0x0A>' (a newline byte)."""
        return self.sp_model.id_to_piece(int(i))

    def __repr__(self) -> str:
        return f"Tokenizer({self.model_path!r}, n_words={self.n_words})"


# ---- tiktoken (Llama 3's tokenizer.model) -----------------------------------------------------


def read_tiktoken_ranks(path: PathLike) -> dict[bytes, int]:
    """A tiktoken rank file -> {token bytes: rank}, checked: every line ``base64 rank``, the
    ranks exactly 0 .. n-1.

    Read here rather than with ``tiktoken.load.load_tiktoken_bpe``, which keeps a copy of every
    file it reads in a cache keyed by the file's *path* (``$TMPDIR/data-gym-cache``): a different
    file later saved at the same path would silently load the old vocabulary.
    """
    path = Path(path)
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as f:
        for line_no, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            parts = line.split()
            try:
                if len(parts) != 2:
                    raise ValueError("expected two fields")
                token, rank = base64.b64decode(parts[0], validate=True), int(parts[1])
            except (ValueError, binascii.Error) as err:
                raise ValueError(
                    f"{path}, line {line_no}: {line[:60]!r} is not 'base64-token rank' ({err}). "
                    f"The file is damaged or not a tiktoken rank file. {_HELP_FILES}") from err
            if token in ranks:
                raise ValueError(f"{path}, line {line_no}: the token {token!r} appears twice.")
            ranks[token] = rank
    if not ranks:
        raise ValueError(f"{path} is empty. {_HELP_FILES}")
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ValueError(f"{path}: the {len(ranks)} ranks are not exactly 0..{len(ranks) - 1} "
                         "(a gap or a repeat), so the special tokens' ids would be ambiguous. "
                         "The file is damaged; use the one that came with the weights.")
    return ranks


class TiktokenTokenizer(SpecialTokenizer):
    """Llama 3's tokenizer: byte-level BPE ranks read with tiktoken, as in Meta's Llama 3 code.

    ``special_tokens`` defaults to Meta's 256 (``llama3_special_tokens()``), with ids right after
    the ranks: for the real vocabulary ``<|begin_of_text|>`` is 128000, ``<|eot_id|>`` 128009 and
    ``n_words`` 128256. BOS is ``<|begin_of_text|>``, EOS ``<|end_of_text|>``; generation stops
    on any of ``stop_tokens``.
    """

    kind = "tiktoken"
    chat_format = "llama3"
    pat_str = LLAMA3_PATTERN

    def __init__(self, model_path: PathLike, special_tokens: Sequence[str] | None = None):
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"No tokenizer file at {path}. {_HELP_FILES}")
        import tiktoken

        ranks = read_tiktoken_ranks(path)
        names = list(special_tokens) if special_tokens is not None else llama3_special_tokens()
        _require_llama3_specials(names, path)
        self.model_path = str(path)
        self.special_tokens: dict[str, int] = {t: len(ranks) + i for i, t in enumerate(names)}
        self.model = tiktoken.Encoding(name=path.name, pat_str=self.pat_str, mergeable_ranks=ranks,
                                       special_tokens=self.special_tokens)
        self.n_words: int = len(ranks) + len(names)
        self.bos_id: int = self.special_tokens["<|begin_of_text|>"]
        self.eos_id: int = self.special_tokens["<|end_of_text|>"]
        self.pad_id: int = -1
        self.stop_tokens: list[int] = stop_ids(self.n_words, *named_ids(self.special_tokens,
                                                                         LLAMA3_STOP_TOKENS))

    def encode_ordinary(self, text: str) -> list[int]:
        return [i for chunk in _chunks(text) for i in self.model.encode_ordinary(chunk)]

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text, special tokens written out (``<|eot_id|>``), pad dropped. A token that
        ends inside a multi-byte character decodes to U+FFFD."""
        return self.model.decode(_check_ids(ids, self.n_words, self.pad_id))

    def __repr__(self) -> str:
        return f"TiktokenTokenizer({self.model_path!r}, n_words={self.n_words})"


# ---- Hugging Face tokenizer.json --------------------------------------------------------------


class HFTokenizer(SpecialTokenizer):
    """A Hugging Face ``tokenizer.json`` read with the ``tokenizers`` library.

    Llama 3 files carry Meta's special tokens as "added tokens"; Llama 2 files carry ``<s>`` and
    ``</s>``. BOS/EOS are added here (never by the file's post-processor), so ``encode`` means
    the same as for the other kinds. Other Llama-architecture vocabularies (SmolLM2's, saved by
    transformers) name BOS/EOS in ``tokenizer_config.json``, read as a fallback.
    """

    kind = "tokenizer.json"

    def __init__(self, path: PathLike):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No tokenizer file at {path}. {_HELP_FILES}")
        from tokenizers import Tokenizer as _Tokenizers

        try:
            self.tk = _Tokenizers.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception with serde's message
            raise ValueError(f"{path} is not a Hugging Face tokenizer.json the tokenizers library "
                             f"can read ({err}). {_HELP_FILES}") from err
        # The library would turn every special-token text in the input into its id; that is
        # switched off, and encode cuts out only the allowed ones, so both kinds follow Meta's rule.
        self.tk.encode_special_tokens = True
        self.model_path = str(path)
        self.special_tokens = {t.content: i for i, t in self.tk.get_added_tokens_decoder().items()}
        self.n_words: int = self.tk.get_vocab_size(with_added_tokens=True)
        self.pad_id: int = -1
        self.add_bos: bool = True  # Llama 2 and 3 always start with BOS
        if "<|begin_of_text|>" in self.special_tokens:
            _require_llama3_specials(list(self.special_tokens), path)
            self.chat_format = "llama3"
            self.bos_id = self.special_tokens["<|begin_of_text|>"]
            self.eos_id = self.special_tokens["<|end_of_text|>"]
            self.stop_tokens = stop_ids(self.n_words, *named_ids(self.special_tokens,
                                                                 LLAMA3_STOP_TOKENS))
        elif self.tk.token_to_id("<s>") is not None and self.tk.token_to_id("</s>") is not None:
            bos, eos = self.tk.token_to_id("<s>"), self.tk.token_to_id("</s>")
            self.chat_format = "llama2"
            self.bos_id, self.eos_id = bos, eos
            self.special_tokens = {**self.special_tokens, "<s>": bos, "</s>": eos}
            self.stop_tokens = [eos]
        else:
            self._use_tokenizer_config(path)

    def _use_tokenizer_config(self, path: Path) -> None:
        """BOS/EOS named by ``tokenizer_config.json`` next to the file, for vocabularies with
        neither Llama 2's nor Llama 3's special tokens (SmolLM2: ``<|im_start|>``,
        ``<|im_end|>``). Such a model carries its own chat template, so ``chat_format`` is
        "template"; the template's end-of-turn token joins ``stop_tokens``; and BOS is added
        only when the file says so (``add_bos_token``, else the tokenizer.json's own
        post-processor), as transformers does."""
        config_file = path.parent / "tokenizer_config.json"
        config = read_json(config_file) if config_file.is_file() else {}

        def token_id(key: str) -> int | None:
            value = config.get(key)
            text = value.get("content") if isinstance(value, dict) else value
            return self.tk.token_to_id(text) if isinstance(text, str) else None

        bos, eos = token_id("bos_token"), token_id("eos_token")
        if eos is None:
            raise ValueError(
                f"{path} has no begin/end-of-text tokens: neither Llama 3's <|begin_of_text|> and "
                "<|end_of_text|>, nor Llama 2's <s> and </s>, nor an eos_token in a "
                f"tokenizer_config.json next to it ({config_file}). Put the tokenizer_config.json "
                f"that came with the model next to tokenizer.json; {_HELP_FILES}")
        self.bos_id, self.eos_id = (bos if bos is not None else -1), eos
        if "add_bos_token" in config:
            self.add_bos = bool(config["add_bos_token"]) and bos is not None
        else:  # the tokenizer.json's post-processor decides, as in transformers
            self.add_bos = bos is not None and self.tk.encode("a").ids[:1] == [bos]
        template = chat_template_of(self)
        self.chat_format = chat_format_for(self.special_tokens, template)
        self.stop_tokens = stop_ids(self.n_words, eos,
                                    template_end_of_turn(template, self.special_tokens))

    def encode_ordinary(self, text: str) -> list[int]:
        return self.tk.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text, special tokens written out, pad dropped."""
        return self.tk.decode(_check_ids(ids, self.n_words, self.pad_id), skip_special_tokens=False)

    def __repr__(self) -> str:
        return f"HFTokenizer({self.model_path!r}, n_words={self.n_words})"


# ---- choosing the kind ------------------------------------------------------------------------


def find_tokenizer_file(folder: PathLike) -> Path:
    """The tokenizer in a checkpoint folder: ``tokenizer.model`` (Meta's Llama 3 layout, either
    kind), else ``tokenizer.json`` (Hugging Face's), else ``original/tokenizer.model`` (where
    Hugging Face's Llama 3 downloads keep Meta's file), else ``../tokenizer.model`` (Meta's Llama 2
    download puts one tokenizer beside the model folders: the seed's ``--tokenizer_path``)."""
    d = Path(folder)
    for name in ("tokenizer.model", "tokenizer.json", "original/tokenizer.model", "../tokenizer.model"):
        if (d / name).is_file():
            return d / name
    raise FileNotFoundError(
        f"No tokenizer in {d} (nor tokenizer.model beside it, Llama 2's layout): expected "
        "tokenizer.model (Meta's layout) or tokenizer.json "
        f"(Hugging Face's). {_HELP_FILES}")


def tokenizer_kind(path: PathLike) -> str:
    """'tokenizer.json', 'tiktoken' or 'sentencepiece', from the first bytes of the file: JSON
    starts with '{', a tiktoken rank file with a line 'base64 rank', anything else may be a
    SentencePiece model (a binary protobuf) -- ``load_tokenizer`` then checks by loading it."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{"):  # (a UTF-8 BOM is allowed)
        return "tokenizer.json"
    first = head.split(b"\n", 1)[0]
    if _RANK_LINE.match(first):
        return "tiktoken"
    return "sentencepiece"


def load_tokenizer(path: PathLike) -> Tokenizer | TiktokenTokenizer | HFTokenizer:
    """Open the tokenizer at ``path`` (a file, or a checkpoint folder), choosing the kind from
    the file's contents, never from its name or a model name."""
    p = Path(path)
    if p.is_dir():
        p = find_tokenizer_file(p)
    if not p.is_file():
        raise FileNotFoundError(f"No tokenizer file at {p}. {_HELP_FILES}")
    with open(p, "rb") as f:
        if f.read(4) == b"GGUF":
            raise ValueError(
                f"{p} is a GGUF file (llama.cpp's one file of weights, settings and tokenizer), not "
                "a tokenizer file, so load_tokenizer does not read it. Its tokenizer: "
                "nnlib.llama.gguf.read_gguf(path).tokenizer() (a GGUFTokenizer, read from the "
                "metadata without the weights); the whole model with its tokenizer: "
                "Llama.build(path) (load_smol() for the SmolLM2 file).")
    kind = tokenizer_kind(p)
    if kind == "tokenizer.json":
        return HFTokenizer(p)
    if kind == "tiktoken":
        return TiktokenTokenizer(p)
    try:
        return Tokenizer(p)
    except ValueError as err:
        raise ValueError(
            f"{p} is neither a SentencePiece model (Llama 1/2's tokenizer.model), a tiktoken rank "
            "file (Llama 3's tokenizer.model: lines of 'base64-token rank') nor a Hugging Face "
            f"tokenizer.json. If it is the file that came with the weights, it is damaged or cut "
            f"short ({p.stat().st_size:,} bytes): download it again. {_HELP_FILES}") from err


# ---- showing tokens ---------------------------------------------------------------------------


def display_piece(tokenizer: BaseTokenizer, token: int) -> str:
    """A readable label for one token id: what the id decodes to on its own ('ĠThe' in a
    byte-level BPE vocabulary shows as ' The'), except for SentencePiece pieces, whose lone decode
    drops the leading space: there '\u2581' shows as a space, and a byte piece such as '<0x0A>' as
    its character when it is one byte of ASCII."""
    piece_of = getattr(tokenizer, "id_to_piece", None)
    piece = piece_of(token) if piece_of is not None else ""
    if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
        byte = int(piece[3:5], 16)
        return chr(byte) if byte < 128 else piece
    if "\u2581" in piece:
        return piece.replace("\u2581", " ")
    return tokenizer.decode([token])


def decode_added(tokenizer: BaseTokenizer, prefix: Sequence[int], added: Sequence[int]) -> str:
    """The text that ``added`` ids add after ``prefix``: decode(prefix + added) minus
    decode(prefix). Decoding the new ids alone would lose SentencePiece's leading space and split
    multi-byte characters; when the longer decode does not extend the shorter one (a tokenizer
    that rewrites earlier text, or a byte piece that ends inside a multi-byte character), the
    new ids are decoded alone (U+FFFD for an incomplete character)."""
    before = tokenizer.decode(list(prefix))
    after = tokenizer.decode(list(prefix) + list(added))
    return after[len(before):] if after.startswith(before) else tokenizer.decode(list(added))


# ---- helpers shared by the kinds --------------------------------------------------------------


def _check_text(s: object) -> None:
    if not isinstance(s, str):
        raise TypeError(f"encode expects a str, got {type(s).__name__}.")


def _wrap(ids: list[int], bos: int | None, eos: int | None) -> list[int]:
    return ([bos] if bos is not None else []) + ids + ([eos] if eos is not None else [])


def _check_ids(ids: Sequence[int], n_words: int, pad_id: int) -> list[int]:
    """Plain ints with pad dropped; ValueError naming ids outside the vocabulary."""
    ids = [int(i) for i in ids]
    bad = [i for i in ids if not (0 <= i < n_words) and i != pad_id]
    if bad:
        raise ValueError(f"Token ids {bad[:5]} are outside this vocabulary of {n_words}.")
    return [i for i in ids if i != pad_id]


def _require_llama3_specials(names: Sequence[str], path: Path) -> None:
    missing = [t for t in LLAMA3_REQUIRED_SPECIAL_TOKENS if t not in set(names)]
    if missing:
        raise ValueError(
            f"{path}: the special tokens {missing} are missing, so text cannot be started, ended "
            "or formatted as a Llama 3 chat. Use the tokenizer file that came with these weights "
            "(for tiktoken files, special_tokens= must list Meta's names, e.g. "
            "llama3_special_tokens()).")


def _allowed(special: dict[str, int], allowed: AllowedSpecial) -> dict[str, int]:
    if allowed == "all":
        return special
    unknown = [t for t in allowed if t not in special]
    if unknown:
        raise ValueError(f"allowed_special lists {unknown[:3]}, which are not special tokens of "
                         "this tokenizer (see tokenizer.special_tokens).")
    return {t: special[t] for t in allowed}


def _split_on_specials(s: str, allowed: dict[str, int]) -> list[str | int]:
    """``s`` cut at each occurrence of an allowed special token: text pieces and special ids."""
    if not allowed or not s:
        return [s] if s else []
    longest_first = sorted(allowed, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(t) for t in longest_first))
    parts: list[str | int] = []
    pos = 0
    for m in pattern.finditer(s):
        if m.start() > pos:
            parts.append(s[pos:m.start()])
        parts.append(allowed[m.group()])
        pos = m.end()
    if pos < len(s):
        parts.append(s[pos:])
    return parts


def _chunks(s: str) -> Iterator[str]:
    """``s`` in pieces tiktoken can take: at most TIKTOKEN_MAX_ENCODE_CHARS characters, and no run
    of only-whitespace or only-non-whitespace longer than MAX_NO_WHITESPACES_CHARS (the cut
    changes the tokens only inside such a pathological run)."""
    for start in range(0, len(s), TIKTOKEN_MAX_ENCODE_CHARS):
        chunk = s[start:start + TIKTOKEN_MAX_ENCODE_CHARS]
        if len(chunk) <= MAX_NO_WHITESPACES_CHARS:
            yield chunk
            continue
        piece_start, run, prev_space = 0, 0, None
        for i, ch in enumerate(chunk):
            space = ch.isspace()
            run = run + 1 if space == prev_space else 1
            prev_space = space
            if run > MAX_NO_WHITESPACES_CHARS:
                yield chunk[piece_start:i]
                piece_start, run = i, 1
        yield chunk[piece_start:]
