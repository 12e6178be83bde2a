"""Llama 3.x end to end on an offline stand-in built by the tests (tests/conftest.py): the Meta
and Hugging Face layouts of a tied-embedding, scaled-RoPE, GQA model give transformers' logits,
generation stops on every stop token, bad input is refused with a message that names the fix.
(Tokenizers: test_llama_tokenizer.py; chat prompts: test_llama_chat.py.)"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import N_RANKS, SPECIAL_ID, make_llama3_hf_model, meta_layout_from_hf
from nnlib.llama import Llama, ModelArgs, encode_dialog
from nnlib.llama.checkpoint import hf_config_to_params
from nnlib.llama.model import rope_frequencies
from nnlib.llama.tokenizer import HFTokenizer, TiktokenTokenizer

DIALOGS = [[{"role": "user", "content": "Who is Romeo?"}]]


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


def build(path, **kw) -> Llama:
    return Llama.build(path, max_seq_len=128, max_batch_size=2, device="cpu", **kw)


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
    want = {"role": "assistant", "content": llama.tokenizer.decode(free[0][:n_free])}
    assert reply[0]["generation"] == want
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
