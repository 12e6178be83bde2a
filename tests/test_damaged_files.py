"""Damaged copies of every file format the series reads, each loaded as a learner would
(``Llama.build``, then a few greedy tokens): it loads, or it fails with a ``ValueError`` /
``OSError`` whose message names the damaged file. Never a crash, never another exception type.

The corruptions are generated, not hand-picked: truncations at fixed fractions of the file (the
empty file included) and single flipped bytes at seeded offsets in three regions (the header, the
middle, where JSON and GGUF keep metadata, and the tail, where tensor data lies). The files:

- the shipped tiny Llama's Meta folder (``params.json``, ``consolidated.00.pth``, ``tokenizer.model``);
- the same model written by ``save_hf`` (``config.json``, ``model.safetensors``,
  ``tokenizer_config.json``, ``tokenizer.model``);
- a small Llama-shaped GGUF written here with the ``gguf`` library's ``GGUFWriter``.

A flip inside tensor data may load silently, since none of these formats has a checksum of its
own; Meta's ``checklist.chk`` does, and the last tests check it catches every such flip.
"""
from __future__ import annotations

import hashlib
import random
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from nnlib import DATA_DIR
from nnlib.llama.generation import Llama
from nnlib.llama.hf_format import save_hf

TINY = DATA_DIR / "tiny-llama"
META_FILES = ("params.json", "consolidated.00.pth", "tokenizer.model")
#: Where a file is cut, as fractions of its size (0.0: the empty file an aborted download leaves).
CUTS = (0.0, 0.001, 0.1, 0.5, 0.9, 0.999)
#: Single bytes flipped per region of each file (seeded offsets).
FLIPS_PER_REGION = 3


def load_and_generate(path: Path) -> None:
    """What a learner does first: build the model and ask for a few greedy tokens."""
    llama = Llama.build(path, device="cpu", dtype="float32", max_seq_len=32, max_batch_size=1,
                        check_memory=False)
    llama.text_completion(["Once upon a time"], temperature=0.0, max_gen_len=4)


def truncate(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def flip_offsets(size: int, seed: int) -> list[tuple[str, int]]:
    """Seeded offsets in the header (first 64 bytes), the first tenth after it (GGUF's metadata,
    a .pth's pickle), the middle and the last tenth of a file."""
    rng = random.Random(seed)
    regions = {"header": (0, min(64, size)), "metadata": (min(64, size - 1), max(size // 10, 65)),
               "middle": (size // 3, 2 * size // 3), "tail": (9 * size // 10, size)}
    return [(name, rng.randrange(lo, hi)) for name, (lo, hi) in regions.items()
            for _ in range(FLIPS_PER_REGION)]


def assert_loads_or_names(load: Callable[[], None], name: str) -> None:
    """The fuzz rule: loading succeeds, or fails with ValueError/OSError naming ``name``."""
    try:
        load()
    except (ValueError, OSError) as err:
        assert name in str(err), f"{type(err).__name__} does not name {name}: {err}"


# ---- the three folders ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def meta_source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("meta")
    for name in META_FILES:
        shutil.copy(TINY / name, out / name)
    return out


@pytest.fixture(scope="module")
def hf_source(tmp_path_factory) -> Path:
    llama = Llama.build(TINY, device="cpu", dtype="float32", max_seq_len=32, max_batch_size=1)
    return save_hf(llama, tmp_path_factory.mktemp("hf"))


@pytest.fixture(scope="module")
def gguf_source(tmp_path_factory) -> Path:
    pytest.importorskip("gguf")
    from sentencepiece import SentencePieceProcessor

    from nnlib.llama.model import ModelArgs, Transformer
    from test_llama_gguf import write_gguf  # the one tiny-GGUF writer of the tests

    sp = SentencePieceProcessor(model_file=str(TINY / "tokenizer.model"))
    args = ModelArgs(dim=32, n_layers=1, n_heads=2, n_kv_heads=1, vocab_size=sp.vocab_size(),
                     multiple_of=32, norm_eps=1e-5, rope_theta=10000.0, max_seq_len=32)
    torch.manual_seed(0)
    state = Transformer(args).state_dict()
    return write_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", args, state)


def damaged_copy(source: Path, tmp_path: Path) -> Path:
    """A fresh copy of a folder (or of the folder holding a file) to damage."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        return shutil.copy(source, tmp_path / source.name)
    return Path(shutil.copytree(source, tmp_path / source.name))


# ---- the fuzz loops ---------------------------------------------------------------------------

CASES = [("meta", n) for n in META_FILES] + [
    ("hf", n) for n in ("config.json", "model.safetensors", "tokenizer.model",
                        "tokenizer_config.json")] + [("gguf", "tiny.gguf")]


@pytest.mark.parametrize("layout, name", CASES)
@pytest.mark.parametrize("cut", CUTS)
def test_truncated_file_loads_or_names_itself(layout, name, cut, tmp_path, request):
    root = damaged_copy(request.getfixturevalue(f"{layout}_source"), tmp_path)
    target = root if root.is_file() else root / name
    truncate(target, cut)
    assert_loads_or_names(lambda: load_and_generate(root), name)


@pytest.mark.parametrize("layout, name", CASES)
@pytest.mark.parametrize("region", ["header", "metadata", "middle", "tail"])
def test_flipped_byte_loads_or_names_itself(layout, name, region, tmp_path, request):
    source = request.getfixturevalue(f"{layout}_source")
    size = (source if source.is_file() else source / name).stat().st_size
    offsets = flip_offsets(size, seed=zlib.crc32(f"{layout}/{name}".encode()))
    for i, offset in enumerate(o for r, o in offsets if r == region):
        root = damaged_copy(source, tmp_path / str(i))
        target = root if root.is_file() else root / name
        flip(target, offset)
        assert_loads_or_names(lambda root=root: load_and_generate(root), name)


# ---- GGUF: the two failures that need their own words -----------------------------------------


def test_newer_gguf_version_says_upgrade_gguf(gguf_source, tmp_path):
    path = damaged_copy(gguf_source, tmp_path)
    data = bytearray(path.read_bytes())
    data[4:8] = (99).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"tiny\.gguf uses GGUF format version 99.*pip install -U gguf"):
        Llama.build(path, device="cpu", max_seq_len=32, max_batch_size=1)


def test_flipped_byte_in_a_token_string_names_the_gguf(gguf_source, tmp_path):
    path = damaged_copy(gguf_source, tmp_path)
    data = bytearray(path.read_bytes())
    data[data.index(b"<unk>")] ^= 0xFF  # '<' becomes 0xC3, a UTF-8 lead byte without its follower
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"tiny\.gguf has a damaged metadata value "
                                         r"'tokenizer\.ggml\.tokens'.*not UTF-8.*download it again"):
        Llama.build(path, device="cpu", max_seq_len=32, max_batch_size=1)


# ---- Meta's checklist.chk catches what the formats cannot -------------------------------------


def write_checklist(folder: Path, names: tuple[str, ...], chk: str = "checklist.chk") -> None:
    """``md5sum``'s output for ``names``, computed here with hashlib (independent of nnlib)."""
    lines = [f"{hashlib.md5((folder / n).read_bytes()).hexdigest()}  {n}" for n in names]
    (folder / chk).write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("region", ["metadata", "middle", "tail"])
def test_checklist_catches_every_flip_in_the_weights(meta_source, region, tmp_path):
    root = damaged_copy(meta_source, tmp_path)
    write_checklist(root, ("consolidated.00.pth", "params.json"))
    want = hashlib.md5((root / "consolidated.00.pth").read_bytes()).hexdigest()
    shard = root / "consolidated.00.pth"
    offsets = [o for r, o in flip_offsets(shard.stat().st_size, seed=7) if r == region]
    for offset in offsets:
        flip(shard, offset)
        got = hashlib.md5(shard.read_bytes()).hexdigest()
        with pytest.raises(ValueError) as caught:
            Llama.build(root, device="cpu", max_seq_len=32, max_batch_size=1)
        message = str(caught.value)
        assert "consolidated.00.pth" in message and want in message and got in message
        assert "md5sum -c checklist.chk" in message and "md5 -r" in message
        flip(shard, offset)  # undo, for the next offset


def test_checklist_passes_intact_files_and_can_be_skipped(meta_source, tmp_path):
    from nnlib.llama.loading import verify_download

    root = damaged_copy(meta_source, tmp_path)
    write_checklist(root, ("consolidated.00.pth", "params.json"))
    write_checklist(root, ("tokenizer.model",), "tokenizer_checklist.chk")
    assert sorted(p.name for p in verify_download(root)) == [
        "consolidated.00.pth", "params.json", "tokenizer.model"]
    Llama.build(root, device="cpu", max_seq_len=32, max_batch_size=1)
    flip(root / "tokenizer.model", 100)
    with pytest.raises(ValueError, match=r"tokenizer\.model has md5 .*tokenizer_checklist\.chk"):
        Llama.build(root, device="cpu", max_seq_len=32, max_batch_size=1)
    flip(root / "tokenizer.model", 100)
    flip(root / "consolidated.00.pth", root.joinpath("consolidated.00.pth").stat().st_size // 2)
    llama = Llama.build(root, device="cpu", max_seq_len=32, max_batch_size=1,
                        verify_checksums=False)  # a flip in a tensor's bytes then loads
    assert llama.model.params.dim == 192


def test_checklist_names_a_listed_file_that_is_missing(meta_source, tmp_path):
    root = damaged_copy(meta_source, tmp_path)
    write_checklist(root, ("consolidated.00.pth", "params.json"))
    (root / "checklist.chk").write_text((root / "checklist.chk").read_text()
                                        + f"{'0' * 32}  consolidated.01.pth\n")
    with pytest.raises(FileNotFoundError, match=r"lists consolidated\.01\.pth.*incomplete"):
        Llama.build(root, device="cpu", max_seq_len=32, max_batch_size=1)


def test_shipped_tiny_folder_has_no_checklist_and_loads():
    """data/tiny-llama ships no checklist.chk (it was not downloaded from Meta): nothing to verify."""
    from nnlib.llama.loading import verify_download

    assert verify_download(TINY) == []
    Llama.build(TINY, device="cpu", max_seq_len=32, max_batch_size=1)
