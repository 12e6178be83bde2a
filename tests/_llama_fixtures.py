"""Shared helpers for the nnlib.llama tests: a small random transformers Llama saved in three
layouts. Nothing here downloads anything."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from nnlib import DATA_DIR

TINY_DIR = DATA_DIR / "tiny-llama"
TOKENIZER = TINY_DIR / "tokenizer.model"  # a real SentencePiece file, vocabulary 2048
VOCAB = 2048


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The test models are tiny: one thread is faster and far steadier on a shared 2-core
    machine than two that wait for each other. Imported by each test_llama_* module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_hf_model(scaled_rope: bool = False, seed: int = 0):
    """A random LlamaForCausalLM: GQA (4 query heads, 2 KV heads), rope_theta 5e5, random norm
    weights (not all ones, so a misplaced norm shows), optionally Llama 3.1 scaled RoPE."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    kw = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
              max_position_embeddings=128, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    rope = {"rope_type": "default", "rope_theta": 500000.0}
    if scaled_rope:
        rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    config = LlamaConfig(**kw, **rope_kwargs(rope))
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.5 * torch.randn_like(p))
    return model


def rope_kwargs(rope: dict) -> dict:
    """RoPE settings for LlamaConfig: ``rope_parameters`` in transformers 5, ``rope_theta`` and
    ``rope_scaling`` in 4.x."""
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return {"rope_parameters": rope}
    scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
    return {"rope_theta": rope["rope_theta"],
            "rope_scaling": scaling if scaling["rope_type"] != "default" else None}


def rope_of(config) -> dict:
    """The RoPE settings of a LlamaConfig as one dict, whatever the transformers version."""
    rope = dict(getattr(config, "rope_parameters", None) or {})
    rope.update(getattr(config, "rope_scaling", None) or {})
    rope.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    rope.setdefault("rope_type", rope.get("type", "default"))
    return rope


def hf_logits(model, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=tokens).logits.float()


def save_hf_layout(model, out: Path) -> Path:
    model.save_pretrained(str(out), safe_serialization=True)
    shutil.copyfile(TOKENIZER, out / "tokenizer.model")
    return out


def hf_to_meta_in_test(model) -> tuple[dict, dict]:
    """The test's own conversion (index based, independent of nnlib.checkpoint): Meta names and
    Meta's interleaved rotary row order, plus params.json."""
    c = model.config
    hd = c.hidden_size // c.num_attention_heads

    def unpermute(w, heads):  # HF row (h, half, i) holds Meta row (h, 2 * i + half)
        idx = torch.empty(heads * hd, dtype=torch.long)
        for h in range(heads):
            for half in range(2):
                for i in range(hd // 2):
                    idx[h * hd + 2 * i + half] = h * hd + half * (hd // 2) + i
        return w[idx].clone()

    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = {"tok_embeddings.weight": sd["model.embed_tokens.weight"],
           "norm.weight": sd["model.norm.weight"], "output.weight": sd["lm_head.weight"]}
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        out[f"layers.{i}.attention.wq.weight"] = unpermute(sd[p + "self_attn.q_proj.weight"], c.num_attention_heads)
        out[f"layers.{i}.attention.wk.weight"] = unpermute(sd[p + "self_attn.k_proj.weight"], c.num_key_value_heads)
        out[f"layers.{i}.attention.wv.weight"] = sd[p + "self_attn.v_proj.weight"]
        out[f"layers.{i}.attention.wo.weight"] = sd[p + "self_attn.o_proj.weight"]
        out[f"layers.{i}.feed_forward.w1.weight"] = sd[p + "mlp.gate_proj.weight"]
        out[f"layers.{i}.feed_forward.w2.weight"] = sd[p + "mlp.down_proj.weight"]
        out[f"layers.{i}.feed_forward.w3.weight"] = sd[p + "mlp.up_proj.weight"]
        out[f"layers.{i}.attention_norm.weight"] = sd[p + "input_layernorm.weight"]
        out[f"layers.{i}.ffn_norm.weight"] = sd[p + "post_attention_layernorm.weight"]
    rope = rope_of(c)
    params = {"dim": c.hidden_size, "n_layers": c.num_hidden_layers, "n_heads": c.num_attention_heads,
              "n_kv_heads": c.num_key_value_heads, "vocab_size": c.vocab_size,
              "multiple_of": c.intermediate_size, "ffn_dim_multiplier": None, "norm_eps": c.rms_norm_eps,
              "rope_theta": rope["rope_theta"], "use_scaled_rope": rope["rope_type"] == "llama3"}
    if params["use_scaled_rope"]:
        params.update(rope_scale_factor=rope["factor"], rope_low_freq_factor=rope["low_freq_factor"],
                      rope_high_freq_factor=rope["high_freq_factor"],
                      rope_original_max_len=rope["original_max_position_embeddings"])
    return out, params


def save_meta_layout(sd: dict, params: dict, out: Path, n_shards: int = 1, embed_axis: int = 1) -> Path:
    """Meta's files, split the way Meta's model-parallel checkpoints are (the test's own split)."""
    out.mkdir(parents=True, exist_ok=True)
    column = ("wq", "wk", "wv", "w1", "w3", "output")
    row = ("wo", "w2")
    shards = [{} for _ in range(n_shards)]
    for k, v in sd.items():
        kind = k.split(".")[-2]
        axis = None if v.dim() == 1 else 0 if kind in column else 1 if kind in row else embed_axis
        for s, piece in enumerate([v] * n_shards if axis is None else v.chunk(n_shards, dim=axis)):
            shards[s][k] = piece.clone()
    for s, shard in enumerate(shards):
        torch.save(shard, out / f"consolidated.{s:02d}.pth")
    (out / "params.json").write_text(json.dumps(params))
    shutil.copyfile(TOKENIZER, out / "tokenizer.model")
    return out


SMALL_PARAMS = {"dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "vocab_size": VOCAB,
                "multiple_of": 32, "ffn_dim_multiplier": None, "norm_eps": 1e-5,
                "rope_theta": 10000.0, "use_scaled_rope": False}


def random_meta_state(seed: int = 0, logit_scale: float = 1.0) -> dict:
    """Weights of a small random nnlib Transformer (no transformers needed), in Meta's names.

    ``logit_scale`` multiplies the output matrix: random models are nearly uniform, and a larger
    scale spreads the logits so greedy choices are not decided by rounding."""
    from nnlib.llama import ModelArgs, Transformer

    torch.manual_seed(seed)
    model = Transformer(ModelArgs(**SMALL_PARAMS, max_seq_len=8, max_batch_size=1))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            elif name == "output.weight":
                p.mul_(logit_scale)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def random_meta_dir(out: Path, n_shards: int = 1, seed: int = 0, logit_scale: float = 1.0) -> Path:
    """A Meta-layout folder (params.json, consolidated.NN.pth, tokenizer.model) of a random model."""
    return save_meta_layout(random_meta_state(seed, logit_scale), dict(SMALL_PARAMS), out, n_shards)
