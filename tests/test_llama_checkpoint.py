"""nnlib.llama.checkpoint and Llama.build: every bad input gets an error naming the fix, pickles
that would run code are refused, shards merge by shape, and the Hugging Face export loads in
transformers with the same logits. Nothing here downloads anything."""
from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

from conftest import (
    SMALL_PARAMS,
    TOKENIZER,
    build,
    hf_logits,
    make_hf_model,
    random_meta_state,
    save_meta_layout,
)
from nnlib.llama import ModelArgs, checkpoint, save_hf
from nnlib.llama.checkpoint import load_state_dict, permute_for_hf, save_meta, unpermute_from_hf

TOKENS = torch.tensor([[1, 50, 900, 13, 7, 1500, 3, 44]])


# ---- the good paths --------------------------------------------------------------------------


def test_meta_layout_loads_in_the_file_dtype_order(meta_dir):
    llama = build(meta_dir)
    sd, loaded = random_meta_state(), llama.model.state_dict()
    assert set(loaded) == set(sd)
    for key, value in sd.items():
        torch.testing.assert_close(loaded[key], value, atol=0, rtol=0)
    assert llama.tokenizer.n_words == SMALL_PARAMS["vocab_size"]
    assert llama.model.params.max_seq_len == 32 and llama.model.params.max_batch_size == 2


@pytest.mark.parametrize("n_shards, embed_axis", [(2, 1), (2, 0), (4, 1)])
def test_model_parallel_shards_merge_to_the_same_model(meta_dir, tmp_path, n_shards, embed_axis):
    sharded = save_meta_layout(random_meta_state(), dict(SMALL_PARAMS), tmp_path / "mp",
                               n_shards=n_shards, embed_axis=embed_axis)
    assert len(list(sharded.glob("consolidated.*.pth"))) == n_shards
    want = build(meta_dir).model.forward(TOKENS, 0)
    torch.testing.assert_close(build(sharded).model.forward(TOKENS, 0), want, atol=0, rtol=0)


def test_save_meta_splits_like_meta_and_loads_back(meta_dir, tmp_path):
    llama = build(meta_dir)
    out = save_meta(llama.model.state_dict(), llama.model.params, tmp_path / "mp2", n_shards=2)
    shard = torch.load(out / "consolidated.01.pth", weights_only=True)
    assert shard["layers.0.attention.wq.weight"].shape == (32, 64)      # column parallel: rows
    assert shard["layers.0.attention.wo.weight"].shape == (64, 32)      # row parallel: columns
    assert shard["tok_embeddings.weight"].shape == (2048, 32)           # Llama 2: dim 1
    assert shard["norm.weight"].shape == (64,)                          # whole in every shard
    shutil.copyfile(TOKENIZER, out / "tokenizer.model")
    got = load_state_dict(out, ModelArgs(**json.loads((out / "params.json").read_text())))
    for key, value in llama.model.state_dict().items():
        torch.testing.assert_close(got[key], value, atol=0, rtol=0)


def test_hugging_face_pytorch_model_bin_loads(tmp_path):
    hf = make_hf_model()
    out = tmp_path / "hf-bin"
    hf.config.save_pretrained(str(out))
    torch.save(hf.state_dict(), out / "pytorch_model.bin")
    shutil.copyfile(TOKENIZER, out / "tokenizer.model")
    assert not list(out.glob("*.safetensors"))
    tokens = TOKENS.repeat(2, 1)
    torch.testing.assert_close(build(out).model.forward(tokens, 0), hf_logits(hf, tokens),
                               atol=1e-4, rtol=0)


def test_save_hf_export_loads_in_transformers_with_the_same_logits(meta_dir, tmp_path):
    from transformers import AutoTokenizer, LlamaForCausalLM

    llama = build(meta_dir)
    out = save_hf(llama, tmp_path / "hf")
    assert {"config.json", "model.safetensors", "tokenizer.model"} <= set(os.listdir(out))
    hf = LlamaForCausalLM.from_pretrained(str(out)).eval()
    torch.testing.assert_close(hf_logits(hf, TOKENS), llama.model.forward(TOKENS, 0), atol=1e-4, rtol=0)
    # ... and its tokenizer gives the same ids as ours (BOS included, no extra prefix space)
    text = "ROMEO:\nBut soft, what light  through yonder window breaks?"
    hf_tok = AutoTokenizer.from_pretrained(str(out))
    assert hf_tok(text).input_ids == llama.tokenizer.encode(text, bos=True, eos=False)
    # and our reader loads the export back to the same weights
    back = build(out)
    for key, value in llama.model.state_dict().items():
        torch.testing.assert_close(back.model.state_dict()[key], value, atol=0, rtol=0)


@settings(max_examples=30, deadline=None)
@given(heads=st.integers(1, 6), half=st.integers(1, 8), cols=st.integers(1, 5))
def test_hf_permutation_round_trips(heads, half, cols):
    w = torch.arange(heads * 2 * half * cols, dtype=torch.float32).reshape(heads * 2 * half, cols)
    hf = permute_for_hf(w, heads)
    torch.testing.assert_close(unpermute_from_hf(hf, heads), w)
    # HF keeps the first member of each rotary pair in the first half of a head's rows
    hd = 2 * half
    torch.testing.assert_close(hf[:half], w[0:hd:2])


# ---- bad input, each with the fix in the message --------------------------------------------


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build(tmp_path / "llama-2-7b")


def test_a_file_instead_of_a_directory(meta_dir):
    with pytest.raises(FileNotFoundError, match="folder that contains it"):
        build(meta_dir / "params.json")


def test_params_json_without_weights(copy_of):
    d = copy_of()
    (d / "consolidated.00.pth").unlink()
    with pytest.raises(FileNotFoundError, match="no weight files"):
        build(d)


def test_config_json_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"no weight files \(\*\.safetensors"):
        build(tmp_path)


def test_weights_without_params_json(copy_of):
    d = copy_of()
    (d / "params.json").unlink()
    with pytest.raises(FileNotFoundError, match="no params.json .* or config.json"):
        build(d)


def test_empty_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="right folder"):
        build(tmp_path)


def test_a_missing_shard(copy_of):
    d = copy_of(n_shards=2)
    (d / "consolidated.01.pth").unlink()
    with pytest.raises(ValueError, match="Shard shapes do not fit params.json"):
        build(d)


def test_params_json_from_another_model(copy_of):
    d = copy_of()
    params = json.loads((d / "params.json").read_text())
    (d / "params.json").write_text(json.dumps({**params, "dim": 128}))
    with pytest.raises(ValueError, match="params.json"):
        build(d)


def test_not_a_llama_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="only 'llama'"):
        build(tmp_path)


# ---- safety: a pickle that runs code ---------------------------------------------------------


class RunsCode:
    """Unpickling this would call os.system: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused(copy_of, tmp_path, how):
    d = copy_of()
    marker = tmp_path / "code-ran"
    payload = {**random_meta_state(), "tok_embeddings.weight": RunsCode(marker)}
    if how == "torch.save":
        torch.save(payload, d / "consolidated.00.pth")
    else:
        with open(d / "consolidated.00.pth", "wb") as f:
            pickle.dump(payload, f)
    with pytest.raises(ValueError, match="Refusing to load .*run arbitrary code"):
        build(d)
    assert not marker.exists()


def test_malicious_pickle_in_a_hugging_face_bin_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 176, "vocab_size": 2048}))
    shutil.copyfile(TOKENIZER, tmp_path / "tokenizer.model")
    marker = tmp_path / "code-ran"
    torch.save({"lm_head.weight": RunsCode(marker)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="Refusing to load"):
        build(tmp_path)
    assert not marker.exists()


def test_loading_is_memory_mapped_and_weights_only(meta_dir, monkeypatch):
    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    checkpoint.safe_torch_load(meta_dir / "consolidated.00.pth")
    assert seen and seen[0].get("weights_only") is True and seen[0].get("mmap") is True


@pytest.mark.parametrize("params", [SMALL_PARAMS, {**SMALL_PARAMS, "n_kv_heads": 4, "ffn_dim_multiplier": 1.3,
                                                   "multiple_of": 48, "n_layers": 3}])
def test_expected_shapes_are_the_models(params):
    from nnlib.llama import Transformer

    args = ModelArgs(**params, max_seq_len=4, max_batch_size=1)
    want = {k: v.shape for k, v in Transformer(args).state_dict().items()}
    assert checkpoint.expected_shapes(args) == want


def test_a_llama_2_params_json_without_rope_theta_means_10000():
    # Llama 2's params.json, as Meta ships it: no rope_theta, no n_kv_heads, vocab_size -1
    llama2 = {"dim": 4096, "multiple_of": 256, "n_heads": 32, "n_layers": 32, "norm_eps": 1e-05,
              "vocab_size": -1}
    args = ModelArgs.from_dict({**llama2, "vocab_size": 32000})
    assert args.rope_theta == 10000.0 and args.n_kv_heads == 32
    assert checkpoint.expected_shapes(args)["layers.0.feed_forward.w1.weight"] == (11008, 4096)


@pytest.mark.skipif(not (TOKENIZER.parent / "consolidated.00.pth").exists(),
                    reason="data/tiny-llama not trained yet")
def test_the_shipped_tiny_model_exports_to_transformers(tmp_path):
    """Notebook 03 loads the export with LlamaForCausalLM: same logits, same greedy text."""
    from transformers import LlamaForCausalLM

    from nnlib.llama import load_tiny

    tiny = load_tiny(device="cpu")
    hf = LlamaForCausalLM.from_pretrained(str(save_hf(tiny, tmp_path / "hf", dtype=torch.float32))).eval()
    ids = tiny.tokenizer.encode("ROMEO:\nWhat light through yonder window breaks?", True, False)
    x = torch.tensor([ids])
    torch.testing.assert_close(hf_logits(hf, x), tiny.model.forward(x, 0), atol=1e-4, rtol=0)
    ours, _ = tiny.generate([ids], 30, temperature=0)
    with torch.no_grad():
        theirs = hf.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=len(ours[0]),
                             do_sample=False, pad_token_id=tiny.tokenizer.eos_id)
    assert theirs[0, len(ids):].tolist() == ours[0]


# ---- Llama 3.x rope factor in Meta's params.json ---------------------------------------------


LLAMA_3_2_1B = {"dim": 2048, "n_layers": 16, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256,
                "ffn_dim_multiplier": 1.5, "multiple_of": 256, "norm_eps": 1e-05,
                "rope_theta": 500000.0, "use_scaled_rope": True}  # as Meta ships it: no factor
LLAMA_3_2_3B = {**LLAMA_3_2_1B, "dim": 3072, "n_layers": 28, "n_heads": 24, "ffn_dim_multiplier": 1.0}
LLAMA_3_1_8B = {"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256,
                "ffn_dim_multiplier": 1.3, "multiple_of": 1024, "norm_eps": 1e-05,
                "rope_theta": 500000.0, "use_scaled_rope": True}


def read_args(tmp_path, params: dict) -> ModelArgs:
    """ModelArgs as loading reads them from a Meta folder (the weights are not opened)."""
    (tmp_path / "params.json").write_text(json.dumps(params))
    (tmp_path / "consolidated.00.pth").write_bytes(b"")
    _, read = checkpoint.read_params(tmp_path)
    return ModelArgs.from_dict(read)


@pytest.mark.parametrize("params, factor", [(LLAMA_3_2_1B, 32.0), (LLAMA_3_2_3B, 32.0),
                                            (LLAMA_3_1_8B, 8.0)], ids=["3.2-1B", "3.2-3B", "3.1-8B"])
def test_a_meta_params_json_without_factor_gets_its_models_factor(tmp_path, params, factor):
    """Llama 3.2's HF config.json says factor 32, Llama 3.1's says 8; Meta's params.json says
    neither, so the shape decides."""
    assert read_args(tmp_path, params).rope_scale_factor == factor


@pytest.mark.parametrize("key", ["rope_scaling_factor", "rope_scale_factor"])
def test_a_stated_rope_factor_always_wins(tmp_path, key):
    assert read_args(tmp_path, {**LLAMA_3_2_1B, key: 16.0}).rope_scale_factor == 16.0
    assert read_args(tmp_path, {**LLAMA_3_1_8B, key: 4.0}).rope_scale_factor == 4.0


def test_shard_axis_is_metas_split():
    """The one rule save_meta, merge_shards and notebook 03's checker share."""
    attention = [checkpoint.shard_axis(f"layers.0.attention.{w}.weight") for w in ("wq", "wk", "wv", "wo")]
    ffn = [checkpoint.shard_axis(f"layers.0.feed_forward.{w}.weight") for w in ("w1", "w2", "w3")]
    assert attention == [0, 0, 0, 1] and ffn == [0, 1, 0]
    assert checkpoint.shard_axis("output.weight") == 0
    assert checkpoint.shard_axis("layers.3.ffn_norm.weight") is None
    assert checkpoint.shard_axis("tok_embeddings.weight", embedding_axis=1) == 1


def test_write_params_json_is_what_loading_reads(tmp_path):
    args = ModelArgs(**SMALL_PARAMS, max_seq_len=8, max_batch_size=1)
    path = checkpoint.write_params_json(args, tmp_path)
    assert ModelArgs.from_dict(json.loads(path.read_text()), max_seq_len=8, max_batch_size=1) == args
