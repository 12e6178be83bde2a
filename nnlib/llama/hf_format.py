"""Hugging Face's checkpoint layout: ``config.json`` + ``*.safetensors`` (or
``pytorch_model*.bin``). HF names the tensors differently and stores the rows of
``q_proj``/``k_proj`` permuted for its rotate-half rotary layout; both are undone here.
``read_hf`` is the reader (a ``weights.Checkpoint``); ``save_hf`` writes the layout so that
transformers loads a model with the same logits.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from .model import ModelArgs, Transformer, ffn_hidden_dim
from .tokenizer import find_tokenizer_file, load_tokenizer, tokenizer_kind
from .weights import (
    Checkpoint,
    PathLike,
    check_state_dict,
    damaged,
    ffn_params_for,
    is_tied,
    read_json,
    safe_torch_load,
    tie_output,
)


def hf_weight_files(ckpt_dir: Path) -> list[Path]:
    return sorted(ckpt_dir.glob("*.safetensors")) or sorted(ckpt_dir.glob("pytorch_model*.bin"))



def read_hf(ckpt_dir: PathLike) -> Checkpoint:
    """The reader of a Hugging Face folder: ``config.json`` as Meta's values, tied when it says
    ``tie_word_embeddings``, its tokenizer, and the renamed, un-permuted weights."""
    d = Path(ckpt_dir)
    config = read_json(d / "config.json")
    return Checkpoint(
        "hf", hf_config_to_params(config), bool(config.get("tie_word_embeddings")),
        tokenizer=lambda: load_tokenizer(find_tokenizer_file(d)),
        weights=lambda args, dtype=None: check_state_dict(
            hf_to_meta(read_hf_weights(d), args, bool(config.get("tie_word_embeddings"))), args))


def permute_for_hf(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Meta -> HF rows of wq/wk: per head, Meta interleaves the rotary pairs (x0, x1, x2, x3 ...
    with pairs (x0, x1), (x2, x3)); HF puts all first members, then all second members."""
    rows, cols = w.shape
    return w.view(n_heads, rows // n_heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def unpermute_from_hf(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """HF -> Meta rows of q_proj/k_proj: the inverse of ``permute_for_hf``."""
    rows, cols = w.shape
    return w.view(n_heads, 2, rows // n_heads // 2, cols).transpose(1, 2).reshape(rows, cols)


_HF_LAYER = {
    "self_attn.q_proj": "attention.wq", "self_attn.k_proj": "attention.wk",
    "self_attn.v_proj": "attention.wv", "self_attn.o_proj": "attention.wo",
    "mlp.gate_proj": "feed_forward.w1", "mlp.down_proj": "feed_forward.w2",
    "mlp.up_proj": "feed_forward.w3", "input_layernorm": "attention_norm",
    "post_attention_layernorm": "ffn_norm",
}
_HF_TOP = {"model.embed_tokens": "tok_embeddings", "model.norm": "norm", "lm_head": "output"}


def hf_config_to_params(config: dict[str, Any]) -> dict[str, Any]:
    """A Hugging Face ``config.json`` dict -> Meta ``params.json`` values (clear errors for
    variants this small Llama does not implement)."""
    kind = config.get("model_type")
    if kind not in (None, "llama"):
        raise ValueError(f"config.json is for model_type {kind!r}; only 'llama' checkpoints load here.")
    for flag in ("attention_bias", "mlp_bias"):
        if config.get(flag):
            raise ValueError(f"config.json sets {flag}=true; Meta's Llama has no biases, "
                             "so this is not supported.")
    if config.get("hidden_act", "silu") != "silu":
        raise ValueError(f"hidden_act {config['hidden_act']!r} is not Llama's 'silu'.")
    dim, heads = config["hidden_size"], config["num_attention_heads"]
    if config.get("head_dim") not in (None, dim // heads):
        raise ValueError(f"head_dim={config['head_dim']} differs from hidden_size/num_attention_heads="
                         f"{dim // heads}; that variant is not supported.")
    rope = dict(config.get("rope_parameters") or {})
    rope.update(config.get("rope_scaling") or {})
    theta = config.get("rope_theta", rope.get("rope_theta", 10000.0))
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    params: dict[str, Any] = dict(
        dim=dim, n_layers=config["num_hidden_layers"], n_heads=heads,
        n_kv_heads=config.get("num_key_value_heads") or heads, vocab_size=config["vocab_size"],
        norm_eps=config.get("rms_norm_eps", 1e-6), rope_theta=float(theta), use_scaled_rope=False,
    )
    params.update(ffn_params_for(dim, config["intermediate_size"]))
    if rope_type == "llama3":
        need = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
        missing = [k for k in need if k not in rope]
        if missing:
            raise ValueError(f"config.json's rope_scaling is 'llama3' but lacks {missing}; Llama 3.1+ "
                             "configs give all four (e.g. factor 8 or 32, low_freq_factor 1, "
                             "high_freq_factor 4, original_max_position_embeddings 8192). Use the "
                             "config.json that came with the weights.")
        params.update(use_scaled_rope=True, rope_scale_factor=rope["factor"],
                      rope_low_freq_factor=rope["low_freq_factor"],
                      rope_high_freq_factor=rope["high_freq_factor"],
                      rope_original_max_len=rope["original_max_position_embeddings"])
    elif rope_type != "default":
        raise ValueError(f"RoPE scaling {rope_type!r} is not supported (only Llama 3.1's 'llama3').")
    return params


def hf_to_meta(hf: dict[str, torch.Tensor], args: ModelArgs, tie_word_embeddings: bool = False
               ) -> dict[str, torch.Tensor]:
    """Rename HF tensors to Meta's names and undo the q/k row permutation. ``output.weight`` is
    the embedding matrix when the file has no ``lm_head.weight`` (``tie_word_embeddings``)."""
    out: dict[str, torch.Tensor] = {}
    for key, t in hf.items():
        if key.endswith("rotary_emb.inv_freq"):
            continue
        name = key[:-len(".weight")] if key.endswith(".weight") else key
        m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)", name)
        if m and m.group(2) in _HF_LAYER:
            meta = f"layers.{m.group(1)}.{_HF_LAYER[m.group(2)]}"
        elif name in _HF_TOP:
            meta = _HF_TOP[name]
        else:
            raise ValueError(f"Unexpected tensor {key!r} in a Hugging Face Llama checkpoint.")
        if meta.endswith("attention.wq"):
            t = unpermute_from_hf(t, args.n_heads)
        elif meta.endswith("attention.wk"):
            t = unpermute_from_hf(t, args.n_kv_heads)
        out[meta + ".weight"] = t
    # Tied embeddings (Llama 3.2 1B/3B): HF files then hold no lm_head.weight. One stored anyway
    # is used as it is (as transformers 5 does).
    return tie_output(out)


def meta_to_hf(sd: dict[str, torch.Tensor], args: ModelArgs) -> dict[str, torch.Tensor]:
    """Meta names -> HF names, with the q/k rows permuted for HF's rotary layout."""
    back = {v: k for k, v in _HF_LAYER.items()}
    top = {v: k for k, v in _HF_TOP.items()}
    out = {}
    for key, t in sd.items():
        name = key[:-len(".weight")]
        m = re.fullmatch(r"layers\.(\d+)\.(.+)", name)
        if m:
            hf = f"model.layers.{m.group(1)}.{back[m.group(2)]}"
        else:
            hf = top[name]
        if name.endswith("attention.wq"):
            t = permute_for_hf(t, args.n_heads)
        elif name.endswith("attention.wk"):
            t = permute_for_hf(t, args.n_kv_heads)
        out[hf + ".weight"] = t.contiguous()
    return out


def read_hf_weights(ckpt_dir: PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of the folder's weight files, under HF's names. A sharded download's index
    (``model.safetensors.index.json``) is checked first: a shard it names that is missing is an
    incomplete download, said before anything is read."""
    d = Path(ckpt_dir)
    check_safetensors_index(d)
    sd: dict[str, torch.Tensor] = {}
    for f in hf_weight_files(d):
        sd.update(read_safetensors(f) if f.suffix == ".safetensors" else safe_torch_load(f))
    return sd


def check_safetensors_index(ckpt_dir: Path) -> None:
    """A ``*.safetensors.index.json`` in the folder must be readable JSON whose ``weight_map``
    names files that are all there."""
    for index in sorted(ckpt_dir.glob("*.safetensors.index.json")):
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise damaged(index, "has no weight_map (tensor name -> file)")
        missing = sorted({str(f) for f in weight_map.values()} - {p.name for p in ckpt_dir.iterdir()})
        if missing:
            raise FileNotFoundError(f"{index} names {missing[:3]}, which {ckpt_dir} lacks: the "
                                    "download is incomplete. Download the missing files.")


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file's tensors on the CPU; a damaged file raises a ``DamagedFileError``
    naming it (safetensors' own text, "incomplete metadata, file not fully covered", names none).
    The format is an 8-byte header length, a JSON header, then the tensor bytes: a cut anywhere
    leaves the header promising more than the file holds."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    size = path.stat().st_size
    if size == 0:
        raise damaged(path, "is empty (0 bytes): the download or copy did not finish")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        text = str(err)
        if any(k in text for k in ("too small", "not fully covered", "incomplete", "out of bounds")):
            what = f"is truncated or its header is damaged ({size:,} bytes on disk; safetensors: {text})"
        elif "utf-8" in text.lower() or "json" in text.lower() or "deserializ" in text.lower():
            what = f"has a damaged header (safetensors: {text})"
        else:
            what = f"could not be read as safetensors ({type(err).__name__}: {text})"
        raise damaged(path, what) from err


def save_hf(model: Any, out_dir: PathLike, tokenizer_path: PathLike | None = None,
            dtype: torch.dtype | None = None) -> Path:
    """Write ``model`` (a ``Transformer`` or a ``Llama``) so that
    ``transformers.LlamaForCausalLM.from_pretrained(out_dir)`` loads it with the same logits:
    ``config.json``, ``model.safetensors`` and, when known, the tokenizer (a SentencePiece
    ``tokenizer.model`` or a ``tokenizer.json``) with a ``tokenizer_config.json``;
    ``tokenizer_path=False`` writes the weights only. Tied embeddings (Llama 3.2 1B/3B) are
    written once, with ``tie_word_embeddings``. ``dtype`` defaults to the model's own."""
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    tokenizer = getattr(model, "tokenizer", None)
    transformer: Transformer = getattr(model, "model", model)
    if not isinstance(transformer, Transformer):
        raise TypeError(f"save_hf expects a Llama or a Transformer, got {type(model).__name__}.")
    if tokenizer_path is None and tokenizer is not None:
        tokenizer_path = getattr(tokenizer, "model_path", None)
    if tokenizer_path is False:  # weights and config only
        tokenizer_path = None
    args = transformer.params
    sd = {k: v.detach().to("cpu", dtype or v.dtype) for k, v in transformer.state_dict().items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tied = is_tied(transformer)
    hf = meta_to_hf(sd, args)
    if tied:  # stored once, as Llama 3.2's own files do; tie_word_embeddings below re-ties it
        hf.pop("lm_head.weight")
    save_file({k: v.contiguous() for k, v in hf.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})

    rope: dict[str, Any] = {"rope_theta": args.rope_theta, "rope_type": "default"}
    if args.use_scaled_rope:
        rope.update(rope_type="llama3", factor=args.rope_scale_factor,
                    low_freq_factor=args.rope_low_freq_factor,
                    high_freq_factor=args.rope_high_freq_factor,
                    original_max_position_embeddings=args.rope_original_max_len)
    config = LlamaConfig(
        vocab_size=args.vocab_size, hidden_size=args.dim, intermediate_size=ffn_hidden_dim(args),
        num_hidden_layers=args.n_layers, num_attention_heads=args.n_heads,
        num_key_value_heads=args.n_kv_heads, rms_norm_eps=args.norm_eps,
        max_position_embeddings=args.max_seq_len,
        tie_word_embeddings=tied,
        bos_token_id=getattr(tokenizer, "bos_id", 1), eos_token_id=getattr(tokenizer, "eos_id", 2),
        rope_theta=args.rope_theta,
    )
    if hasattr(config, "rope_parameters"):  # transformers >= 5
        config.rope_parameters = rope
    elif args.use_scaled_rope:  # transformers 4.x
        config.rope_scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
    config.architectures = ["LlamaForCausalLM"]
    dtype_name = str(next(iter(sd.values())).dtype).replace("torch.", "")
    if hasattr(config, "dtype"):  # transformers >= 4.56 renamed torch_dtype
        config.dtype = dtype_name
    else:
        config.torch_dtype = dtype_name
    config.save_pretrained(str(out))
    if tokenizer_path is not None and _hf_tokenizer_file_kind(tokenizer_path) == "tokenizer.json":
        shutil.copyfile(tokenizer_path, out / "tokenizer.json")  # transformers reads it as it is
        (out / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": args.max_seq_len,
        }, indent=2) + "\n")
    elif tokenizer_path is not None:
        shutil.copyfile(tokenizer_path, out / "tokenizer.model")
        (out / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
            "model_max_length": args.max_seq_len, "legacy": False,
            # HF's LlamaTokenizer puts a space before the text unless told not to; match the file.
            "add_prefix_space": sentencepiece_adds_dummy_prefix(tokenizer_path),
        }, indent=2) + "\n")
    return out


def _hf_tokenizer_file_kind(path: PathLike) -> str:
    """``tokenizer_kind``, refusing 'tiktoken': a tiktoken rank file (Llama 3 in Meta's layout)
    is no file transformers' LlamaForCausalLM side can read as it is, so the fix is named."""
    kind = tokenizer_kind(path)
    if kind == "tiktoken":
        raise ValueError(
            f"{path} is a tiktoken rank file (Llama 3 in Meta's layout); save_hf can copy a "
            "SentencePiece tokenizer.model or a tokenizer.json. Pass tokenizer_path= the "
            "tokenizer.json of the Hugging Face download, or tokenizer_path=False to write weights only."
        )
    return kind


def sentencepiece_adds_dummy_prefix(model_path: PathLike) -> bool:
    """Whether a SentencePiece ``tokenizer.model`` puts a space (``▁``) before the text, as
    Llama 2's does and the shipped tiny Llama's does not. Read from the file's normaliser spec."""
    try:
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(Path(model_path).read_bytes())
        return bool(proto.normalizer_spec.add_dummy_prefix)
    except Exception:  # not SentencePiece (or protobuf missing): HF's default
        return True
