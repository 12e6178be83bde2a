"""Files a learner downloaded: the one error a damaged one raises, JSON read with an error in
words, and Meta's md5 checklists checked.

An interrupted download or a bad copy is the likeliest reason a first ``Llama.build`` fails, and
the libraries underneath (json, torch, safetensors, gguf) describe such a file in their own terms
("failed finding central directory", a bare ``UnicodeDecodeError``) without naming it. Every
reader turns those into a ``DamagedFileError``: which file, what is wrong with it in plain words,
and what to do. It sits at the bottom of ``nnlib.llama`` so that every reader, tokenizers
included, can raise it.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Union

PathLike = Union[str, "os.PathLike[str]"]

#: What to do about a file that is there but damaged: almost always, fetch it again.
DOWNLOAD_AGAIN = ("Download this file again (an interrupted download or copy leaves files like "
                  "this) and compare its size with the source's.")
#: Files at least this big get a progress bar while their md5 is computed.
PROGRESS_FROM_BYTES = 64 * 2**20
_CHUNK = 8 * 2**20


class DamagedFileError(ValueError):
    """A file that exists but cannot be what it should be: truncated, empty, a flipped byte, an
    md5 that differs from the checklist's. A ``ValueError`` (so ``except ValueError`` still
    catches it); its message names the file, what is wrong and what to do."""


def damaged(path: PathLike, what: str, fix: str = DOWNLOAD_AGAIN) -> DamagedFileError:
    """The error for ``path``: ``"<path> <what>. <fix>"`` (raise it ``from`` the library's error)."""
    return DamagedFileError(f"{path} {what}. {fix}")


@contextmanager
def naming(path: PathLike) -> Iterator[None]:
    """Inside it, a ``ValueError`` whose message does not name ``path`` gets it put in front.
    The checks after a file is parsed (an unknown tensor name, a missing metadata key) speak of
    tensors and keys; when a damaged byte is the cause, the learner needs to know which file."""
    try:
        yield
    except ValueError as err:
        if str(path) in str(err) or Path(path).name in str(err):
            raise
        raise ValueError(f"{path}: {err}") from err


def read_json(path: PathLike) -> dict[str, Any]:
    """A JSON object file (``params.json``, ``config.json``, an index ...) as a dict. Every way it
    can be damaged is told apart, since each points at a different fix: empty, not UTF-8 at a
    byte (a flipped byte), invalid JSON at a line and column (cut short, or edited by hand), or
    not an object."""
    path = Path(path)
    data = path.read_bytes()  # a missing file: FileNotFoundError, which names it
    if not data.strip():
        raise damaged(path, "is empty (0 bytes of JSON)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise damaged(path, f"is not UTF-8 text at byte {err.start} (0x{data[err.start]:02x}): a "
                            "byte in it is damaged") from err
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        cut = " (it ends there: truncated?)" if err.pos >= len(text.rstrip()) else ""
        raise damaged(path, f"is not valid JSON at line {err.lineno}, column {err.colno}: "
                            f"{err.msg}{cut}",
                      DOWNLOAD_AGAIN + " If you edited it, fix that line.") from err
    if not isinstance(obj, dict):
        raise damaged(path, f"holds a JSON {type(obj).__name__}, not an object of settings")
    return obj


# ---- Meta's md5 checklists --------------------------------------------------------------------


def read_checklist(path: PathLike) -> dict[str, str]:
    """``checklist.chk`` as {file name: md5}: lines ``<md5>  <name>`` as ``md5sum`` writes them
    (a ``*`` before the name marks binary mode)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise damaged(path, f"is not text at byte {err.start}") from err
    sums: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")
        if len(digest) != 32 or not name or any(c not in "0123456789abcdefABCDEF" for c in digest):
            raise damaged(path, f"line {n} ({line[:60]!r}) is not '<md5>  <file name>'")
        sums[name] = digest.lower()
    if not sums:
        raise damaged(path, "is empty: it lists no md5 sums")
    return sums


def md5_of(path: PathLike, progress: bool | None = None) -> str:
    """The md5 of a file, read in chunks (a 13 GB shard never sits in memory), with a progress
    bar when the file is big (``progress=None``: from ``PROGRESS_FROM_BYTES``)."""
    from nnlib.progress import progress_bar

    path = Path(path)
    size = path.stat().st_size
    show = size >= PROGRESS_FROM_BYTES if progress is None else progress
    digest = hashlib.md5()
    with progress_bar(size, f"md5 {path.name}", unit="B", enabled=show) as bar, \
            open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def verify_checklist(checklist: PathLike, names: list[str] | None = None) -> list[Path]:
    """Check files against Meta's ``checklist.chk`` (or ``tokenizer_checklist.chk``) beside them:
    each listed file (or only those in ``names``) must exist and have the listed md5. Returns
    the files checked; raises ``FileNotFoundError`` for a listed file that is missing and
    ``DamagedFileError`` naming the file, both md5s and the command Meta's ``download.sh`` runs.

    Why here: Meta's ``download.sh`` checks with ``md5sum -c`` except on arm64 machines, where
    it runs ``md5 checklist.chk`` (which prints the checklist file's own hash and checks
    nothing): on an Apple-silicon Mac a learner's files were never verified."""
    checklist = Path(checklist)
    folder = checklist.parent
    sums = read_checklist(checklist)
    checked = []
    for name, want in sums.items():
        if names is not None and name not in names:
            continue
        file = folder / name
        if not file.is_file():
            raise FileNotFoundError(f"{checklist.name} lists {name}, but {folder} has no such file: "
                                    "the download is incomplete. Download it again.")
        got = md5_of(file)
        if got != want:
            raise damaged(
                file, f"has md5 {got}, but {checklist.name} says {want}: the file is damaged or "
                      "incomplete",
                f"Download {name} again. To check every file as Meta's download.sh does, run "
                f"`md5sum -c {checklist.name}` in that folder (on a Mac, where md5sum is missing: "
                f"`md5 -r {name}` and compare with the line in {checklist.name}, or "
                "nnlib.llama.files.verify_checklist(path_to_checklist)). Llama.build(..., "
                "verify_checksums=False) skips this check.")
        checked.append(file)
    return checked
