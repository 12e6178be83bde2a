"""Llama 3.x end to end on an offline stand-in built by the tests (see _llama3_fixtures): the
tiktoken and tokenizer.json readers agree token for token, the Meta and Hugging Face layouts of a
tied-embedding, scaled-RoPE, GQA model give transformers' logits, chat prompts encode exactly as
transformers' chat template does, generation stops on every stop token, bad input is refused
with a message that names the fix."""
from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _llama3_fixtures import (LLAMA3_CHAT_TEMPLATE, NAMED, N_RANKS, SPECIAL_ID, SPECIALS, VOCAB,
                              build_tokenizer_files, make_llama3_hf_model, meta_layout_from_hf,
                              train_ranks, write_tokenizer_json)
from nnlib import DATA_DIR
from nnlib.llama import (HFTokenizer, Llama, ModelArgs, TiktokenTokenizer, Tokenizer,
                         check_dialog, encode_dialog, load_tokenizer)
from nnlib.llama.checkpoint import hf_config_to_params
from nnlib.llama.model import rope_frequencies

torch.set_num_threads(2)
SP_MODEL = DATA_DIR / "tiny-llama" / "tokenizer.model"

TEXTS = [
    "ROMEO: But soft, what light through yonder window breaks?\n\nIt is the east.",
    "  leading spaces\t\ttabs\r\nCRLF 123456 7,890 don't I'LL we've THEY'RE",
    "émigré naïve façade 日本語 🙂 ﬁ ½ \u00a0nbsp",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "x<|eot_id|>y <|eom_id|>\n<|reserved_special_token_200|>",
    "\n\n\n   \n\t",
    "a" * 300 + " " * 50 + "!?" * 40,
]

DIALOGS = [
    [{"role": "user", "content": "Who is Romeo?"}],
    [{"role": "system", "content": "Answer in verse."},
     {"role": "user", "content": "  What light through yonder window breaks?\n"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Good morrow."}, {"role": "user", "content": "And then?\n\n"}],
    [{"role": "user", "content": "Quote <|eot_id|> and 12345 verbatim: ‘ö’"},
     {"role": "assistant", "content": "\n<|eot_id|>\n"}, {"role": "user", "content": "Again"}],
]


# ---- fixtures (built once per session, a few seconds) ----------------------------------------


@pytest.fixture(scope="session")
def tok_files(tmp_path_factory) -> dict[str, Path]:
    return build_tokenizer_files(tmp_path_factory.mktemp("llama3-tokenizer"))


@pytest.fixture(scope="session")
def tiktok(tok_files) -> TiktokenTokenizer:
    return TiktokenTokenizer(tok_files["tiktoken"])


@pytest.fixture(scope="session")
def hftok(tok_files) -> HFTokenizer:
    return HFTokenizer(tok_files["json"])


@pytest.fixture(scope="session")
def hf_model():
    return make_llama3_hf_model()


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory, tok_files, hf_model) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("llama3-ckpt")
    hf_dir = root / "hf"
    hf_model.save_pretrained(str(hf_dir), safe_serialization=True)
    shutil.copyfile(tok_files["json"], hf_dir / "tokenizer.json")
    meta_dir = meta_layout_from_hf(hf_model, root / "meta")
    shutil.copyfile(tok_files["tiktoken"], meta_dir / "tokenizer.model")
    return {"hf": hf_dir, "meta": meta_dir}


@pytest.fixture(scope="session")
def transformers_tokenizer(tok_files):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_file=str(tok_files["json"]), bos_token="<|begin_of_text|>",
                                   eos_token="<|eot_id|>", chat_template=LLAMA3_CHAT_TEMPLATE)


def build(path, **kw) -> Llama:
    return Llama.build(path, max_seq_len=128, max_batch_size=2, device="cpu", **kw)


# ---- tokenizers ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tiktoken", "json"])
def test_special_tokens_follow_meta_convention(tok_files, kind):
    tok = load_tokenizer(tok_files[kind])
    assert type(tok) is (TiktokenTokenizer if kind == "tiktoken" else HFTokenizer)
    assert tok.n_words == VOCAB == N_RANKS + 256
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
    for name, data in [("text.model", b"just some words\nand more\n"), ("random.model", bytes(range(256)) * 4)]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match="neither a SentencePiece model .* nor a Hugging Face"):
            load_tokenizer(tmp_path / name)


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
            tok.decode([VOCAB])


# ---- checkpoints: tied embeddings, scaled RoPE, both layouts --------------------------------


@pytest.mark.parametrize("layout", ["hf", "meta"])
def test_both_layouts_give_transformers_logits(ckpts, hf_model, layout):
    llama = build(ckpts[layout])
    assert isinstance(llama.tokenizer, HFTokenizer if layout == "hf" else TiktokenTokenizer)
    args = llama.model.params
    assert args.use_scaled_rope and (args.rope_scale_factor, args.rope_original_max_len) == (32.0, 64)
    assert torch.equal(llama.model.output.weight, llama.model.tok_embeddings.weight)  # tied
    text = "ROMEO: But soft, what light through yonder window breaks? It is the east, and Juliet " \
           "is the sun.\nJULIET: O Romeo, Romeo! wherefore art thou Romeo?\n" * 2
    ids = llama.tokenizer.encode(text, bos=True, eos=False)[:100]
    tokens = torch.tensor([ids, ids[::-1]])
    with torch.no_grad():
        want = hf_model(input_ids=tokens).logits.float()
    torch.testing.assert_close(llama.model.forward(tokens, 0), want, atol=1e-4, rtol=0)


def test_a_stored_lm_head_is_used_as_transformers_uses_it(ckpts, tmp_path):
    """tie_word_embeddings is true but the file holds a different lm_head.weight anyway: the
    result must be what transformers makes of that folder."""
    from safetensors.torch import load_file, save_file
    from transformers import LlamaForCausalLM

    folder = shutil.copytree(ckpts["hf"], tmp_path / "hf")
    sd = load_file(str(folder / "model.safetensors"))
    assert "lm_head.weight" not in sd  # what save_pretrained writes for a tied model
    sd["lm_head.weight"] = torch.randn_like(sd["model.embed_tokens.weight"])
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
    reference = LlamaForCausalLM.from_pretrained(str(folder)).eval()
    tokens = torch.tensor([[N_RANKS, 5, 77, 300, 12, 9]])
    with torch.no_grad():
        want = reference(input_ids=tokens).logits.float()
    torch.testing.assert_close(build(folder).model.forward(tokens, 0), want, atol=1e-4, rtol=0)


def test_untied_config_without_lm_head_still_ties(ckpts, hf_model, tmp_path):
    folder = shutil.copytree(ckpts["hf"], tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    config["tie_word_embeddings"] = False  # a config that forgets to say so; lm_head is absent
    (folder / "config.json").write_text(json.dumps(config))
    llama = build(folder)
    assert torch.equal(llama.model.output.weight, hf_model.lm_head.weight.detach())


def test_meta_layout_without_output_weight_ties(ckpts, hf_model, tmp_path):
    folder = shutil.copytree(ckpts["meta"], tmp_path / "meta")
    sd = torch.load(folder / "consolidated.00.pth", weights_only=True)
    del sd["output.weight"]
    torch.save(sd, folder / "consolidated.00.pth")
    llama = build(folder)
    assert torch.equal(llama.model.output.weight, hf_model.lm_head.weight.detach())


def test_default_scaled_rope_matches_transformers_llama3_rope():
    """Meta's params.json says only use_scaled_rope; Meta's code then uses factor 8, low 1,
    high 4 and an original context of 8192: the defaults here, checked against transformers."""
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    args = ModelArgs.from_dict({"dim": 2048, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 10,
                                "rope_theta": 500000.0, "use_scaled_rope": True})
    config = LlamaConfig(hidden_size=2048, num_attention_heads=32, num_key_value_heads=8,
                         max_position_embeddings=131072, rope_parameters={
                             "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                             "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192})
    inv_freq, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    torch.testing.assert_close(rope_frequencies(args), inv_freq.float(), rtol=1e-6, atol=0)


def test_llama3_rope_scaling_without_its_numbers_is_refused():
    config = {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 10,
              "intermediate_size": 128, "rope_scaling": {"rope_type": "llama3", "factor": 32.0}}
    with pytest.raises(ValueError, match="lacks .*low_freq_factor.*original_max_position_embeddings"):
        hf_config_to_params(config)


# ---- chat ------------------------------------------------------------------------------------


def template_ids(transformers_tokenizer, dialog, **kw) -> list[int]:
    out = transformers_tokenizer.apply_chat_template(dialog, add_generation_prompt=True,
                                                     tokenize=True, **kw)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


@pytest.mark.parametrize("dialog", DIALOGS[:3], ids=range(3))
def test_chat_prompt_equals_transformers_chat_template(tiktok, hftok, transformers_tokenizer, dialog):
    want = template_ids(transformers_tokenizer, dialog)
    assert encode_dialog(tiktok, dialog) == want
    assert encode_dialog(hftok, dialog) == want
    assert want[0] == SPECIAL_ID["<|begin_of_text|>"]
    assert tiktok.decode(want).endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_special_token_text_in_a_message_stays_text(tiktok, hftok, transformers_tokenizer):
    """Meta encodes message content with no special tokens allowed, so a message quoting
    '<|eot_id|>' cannot end its turn early. A plain chat template would inject it; transformers
    agrees with Meta once asked to sanitize control tokens."""
    dialog = DIALOGS[3]
    ours = encode_dialog(tiktok, dialog)
    assert ours == encode_dialog(hftok, dialog)
    assert ours.count(SPECIAL_ID["<|eot_id|>"]) == len(dialog)  # one per message, none injected
    assert template_ids(transformers_tokenizer, dialog).count(SPECIAL_ID["<|eot_id|>"]) > len(dialog)
    params = inspect.signature(transformers_tokenizer.apply_chat_template).parameters
    if "sanitize_control_tokens" in params:  # transformers 5
        assert ours == template_ids(transformers_tokenizer, dialog, sanitize_control_tokens=True)


def test_llama2_chat_format_for_sentencepiece():
    tok = load_tokenizer(SP_MODEL)
    dialog = [{"role": "system", "content": "Speak as Juliet."}, {"role": "user", "content": " Hi "},
              {"role": "assistant", "content": "Good morrow. "}, {"role": "user", "content": "Who?"}]
    # Meta folds the system text into the first user message, then strips the whole: the user
    # message's own leading space survives inside.
    first = "[INST] <<SYS>>\nSpeak as Juliet.\n<</SYS>>\n\n Hi [/INST] Good morrow. "
    want = tok.encode(first, bos=True, eos=True) + tok.encode("[INST] Who? [/INST]", bos=True, eos=False)
    assert encode_dialog(tok, dialog) == want
    with pytest.raises(ValueError, match="prompt markers"):
        encode_dialog(tok, [{"role": "user", "content": "[INST] sneaky"}])


@pytest.mark.parametrize("dialog, message", [
    ([], "empty"),
    ({"role": "user", "content": "Hi"}, "single message. Wrap it in a list"),
    ([{"role": "user"}], "'role' and 'content'"),
    ([{"role": "robot", "content": "x"}], "use one of system, user, assistant"),
    ([{"role": "user", "content": 3}], "content must be a str"),
    ([{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}], "user message must come first"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "both from the user.*Join them"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
      {"role": "assistant", "content": "c"}], "take turns"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "only the first message"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "last message must be from the user"),
    ([{"role": "system", "content": "a"}], "only a system message"),
])
def test_bad_dialogs_are_refused_with_the_fix(dialog, message):
    with pytest.raises(ValueError, match=message):
        check_dialog(dialog)


# ---- generation stops on every stop token ----------------------------------------------------


class ForceToken(torch.nn.Module):
    """The real model, except that the logits at positions >= ``at`` favour ``token`` by 1000:
    greedy decoding then writes ``token`` at position ``at + 1`` (a chat model ending its turn)."""

    def __init__(self, model, token: int, at: int):
        super().__init__()
        self.inner, self.token, self.at = model, token, at
        self.params, self.tok_embeddings = model.params, model.tok_embeddings

    def forward(self, tokens, start_pos=0, use_cache=True):
        logits = self.inner.forward(tokens, start_pos, use_cache=use_cache).clone()
        positions = start_pos + torch.arange(tokens.shape[1])
        logits[:, positions >= self.at, self.token] += 1000.0
        return logits


@pytest.mark.parametrize("stop", ["<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"])
def test_generation_stops_on_each_stop_token(ckpts, stop):
    llama = build(ckpts["meta"])
    dialog = [{"role": "user", "content": "Speak."}]
    prompt = encode_dialog(llama.tokenizer, dialog)
    free, _ = llama.generate([prompt], max_gen_len=8, temperature=0.0)
    assert len(free[0]) == 8 and not set(free[0]) & set(llama.tokenizer.stop_tokens)
    n_free = 3
    forced = Llama(ForceToken(llama.model, SPECIAL_ID[stop], len(prompt) - 1 + n_free),
                   llama.tokenizer, device="cpu")
    out, _ = forced.generate([prompt], max_gen_len=8, temperature=0.0)
    assert out[0] == free[0][:n_free]
    reply = forced.chat_completion([dialog], temperature=0.0, max_gen_len=8, logprobs=True)
    assert reply[0]["generation"] == {"role": "assistant", "content": llama.tokenizer.decode(free[0][:n_free])}
    assert len(reply[0]["tokens"]) == len(reply[0]["logprobs"]) == n_free


def test_other_special_tokens_do_not_stop(ckpts):
    llama = build(ckpts["hf"])
    prompt = llama.tokenizer.encode("ROMEO:", bos=True, eos=False)
    python_tag = SPECIAL_ID["<|python_tag|>"]
    forced = Llama(ForceToken(llama.model, python_tag, len(prompt) - 1), llama.tokenizer, device="cpu")
    out, _ = forced.generate([prompt], max_gen_len=5, temperature=0.0)
    assert out[0] == [python_tag] * 5


def test_chat_completion_wants_a_list_of_dialogs(ckpts):
    llama = build(ckpts["hf"])
    with pytest.raises(ValueError, match=r"pass \[dialog\]"):
        llama.chat_completion([{"role": "user", "content": "Hi"}])
    with pytest.raises(ValueError, match="both from the user"):
        llama.chat_completion([[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]])


def test_build_finds_no_tokenizer_and_says_where_to_look(ckpts, tmp_path):
    folder = shutil.copytree(ckpts["meta"], tmp_path / "meta")
    (folder / "tokenizer.model").unlink()
    with pytest.raises(FileNotFoundError, match="expected tokenizer.model .* or tokenizer.json"):
        build(folder)


def test_tied_embeddings_are_one_tensor_in_memory(ckpts, tmp_path):
    folder = shutil.copytree(ckpts["meta"], tmp_path / "meta-tied")
    sd = torch.load(folder / "consolidated.00.pth", weights_only=True)
    del sd["output.weight"]
    torch.save(sd, folder / "consolidated.00.pth")
    model = build(folder).model
    assert model.output.weight.data_ptr() == model.tok_embeddings.weight.data_ptr()


def test_save_hf_round_trips_a_tied_llama3_with_its_tokenizer_json(ckpts, hf_model, tmp_path):
    from transformers import AutoTokenizer, LlamaForCausalLM

    from nnlib.llama import save_hf

    llama = build(ckpts["hf"])  # tokenizer.json, tied embeddings
    out = save_hf(llama, tmp_path / "again")
    assert (out / "tokenizer.json").is_file() and not (out / "tokenizer.model").exists()
    again = LlamaForCausalLM.from_pretrained(out)
    assert again.config.tie_word_embeddings
    ids = torch.tensor([llama.tokenizer.encode("To be, or not to be", bos=True, eos=False)])
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, hf_model(ids).logits, atol=1e-4, rtol=0)
    assert AutoTokenizer.from_pretrained(out)("To be").input_ids[-2:] == \
        llama.tokenizer.encode("To be", bos=False, eos=False)[-2:]


def test_save_hf_refuses_a_tiktoken_file_with_the_fix(ckpts, tmp_path):
    from nnlib.llama import save_hf

    llama = build(ckpts["meta"])  # tiktoken rank file
    with pytest.raises(ValueError, match="tokenizer.json"):
        save_hf(llama, tmp_path / "hf")
    out = save_hf(llama, tmp_path / "weights-only", tokenizer_path=False)
    assert (out / "model.safetensors").is_file() and not (out / "tokenizer.model").exists()
