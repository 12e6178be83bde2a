"""Read Llama checkpoints into one state dict in Meta's names; write the Hugging Face layout.

Three layouts on disk, one result:

- **Meta**: ``params.json`` + ``consolidated.00.pth`` (one file), or ``consolidated.00.pth`` ...
  ``consolidated.NN.pth`` (model-parallel shards, e.g. 13B has 2, 70B has 8). Shards are merged
  here, on one device, instead of Meta's "Loading a checkpoint for MP=2 but world size is 1".
- **Hugging Face**: ``config.json`` + ``*.safetensors`` (or ``pytorch_model*.bin``). HF names the
  tensors differently and stores the rows of ``q_proj``/``k_proj`` permuted for its rotate-half
  rotary layout; both are undone here.

Loading is safe and lean: ``torch.load(weights_only=True, mmap=True)`` (a pickle that would run
code is refused), safetensors for HF files.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import Any, Union

import torch

from .devices import is_llama_3_2_shape
from .model import ModelArgs, Transformer, ffn_hidden_dim, swiglu_base_width
from .tokenizer import tokenizer_kind

PathLike = Union[str, "os.PathLike[str]"]

#: Split along the output features (dim 0) in Meta's model-parallel shards.
COLUMN_PARALLEL = ("wq", "wk", "wv", "w1", "w3", "output")
#: Split along the input features (dim 1).
ROW_PARALLEL = ("wo", "w2")
#: Keys in some Meta files that are not weights (Llama 2 stores its rope table).
IGNORED_META_KEYS = ("rope.freqs",)
#: ``use_scaled_rope`` with no factor in params.json: Llama 3.2 1B/3B use 32, Llama 3.1 uses 8.
LLAMA_3_1_ROPE_FACTOR, LLAMA_3_2_ROPE_FACTOR = 8.0, 32.0


def shard_axis(key: str, embedding_axis: int | None = None) -> int | None:
    """The axis along which Meta's model-parallel shards split the weight ``key``: 0 for the
    column-parallel ones (``wq wk wv w1 w3 output``, split by output rows), 1 for the row-parallel
    ones (``wo w2``, split by input columns), None for what every shard holds whole (norms).
    ``tok_embeddings`` is split on dim 1 in Llama 2 and on dim 0 in Llama 3: ``embedding_axis``
    (None when the caller must work it out from the shapes)."""
    name = key.split(".")[-2] if key.count(".") else key
    if "norm" in name:
        return None
    if name in COLUMN_PARALLEL:
        return 0
    if name in ROW_PARALLEL:
        return 1
    return embedding_axis


# ---- finding the files -----------------------------------------------------------------------


def meta_shards(ckpt_dir: Path) -> list[Path]:
    """``consolidated.NN.pth`` files in order (any ``*.pth`` if none is named that way)."""
    files = sorted(ckpt_dir.glob("consolidated.*.pth")) or sorted(ckpt_dir.glob("*.pth"))
    return files


def hf_weight_files(ckpt_dir: Path) -> list[Path]:
    return sorted(ckpt_dir.glob("*.safetensors")) or sorted(ckpt_dir.glob("pytorch_model*.bin"))


def detect_layout(ckpt_dir: PathLike) -> str:
    """'meta', 'hf' or 'gguf' (a .gguf file, or a folder whose only weights are .gguf files), or
    a FileNotFoundError naming what is missing."""
    d = Path(ckpt_dir)
    if not d.exists():
        raise FileNotFoundError(f"Checkpoint directory {d} does not exist. Pass ckpt_dir= the folder "
                                "holding params.json + consolidated.*.pth (Meta) or config.json + "
                                "*.safetensors (Hugging Face), or a .gguf file.")
    if d.is_file() and d.suffix.lower() == ".gguf":
        return "gguf"
    if not d.is_dir():
        raise FileNotFoundError(f"{d} is a file; ckpt_dir must be the folder that contains it.")
    if (d / "params.json").is_file():
        if not meta_shards(d):
            raise FileNotFoundError(f"{d} has params.json but no weight files (consolidated.00.pth "
                                    "...): the download is incomplete, or the .pth files are elsewhere.")
        return "meta"
    if (d / "config.json").is_file():
        if not hf_weight_files(d):
            raise FileNotFoundError(f"{d} has config.json but no weight files (*.safetensors or "
                                    "pytorch_model*.bin): download the weights too.")
        return "hf"
    if any(d.glob("*.gguf")):
        return "gguf"
    if meta_shards(d) or hf_weight_files(d):
        raise FileNotFoundError(f"{d} has weight files but no params.json (Meta layout) or config.json "
                                "(Hugging Face layout): copy the one that came with the weights here.")
    raise FileNotFoundError(f"{d} has no params.json/config.json and no weight files "
                            "(consolidated.*.pth, *.safetensors): is this the right folder?")


# ---- safe loading ----------------------------------------------------------------------------


def safe_torch_load(path: PathLike) -> dict[str, torch.Tensor]:
    """``torch.load`` that only accepts tensors and plain containers (``weights_only=True``),
    memory-mapped so a big shard is not read into memory before it is needed."""
    path = Path(path)
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:  # files from torch < 1.6 cannot be memory-mapped
            if "mmap" not in str(err) and "zipfile" not in str(err):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message has the useful line (e.g. "unsupported GLOBAL posix.system") in the middle.
        lines = [ln for ln in str(err).splitlines() if "GLOBAL" in ln or "Unsupported" in ln]
        detail = (lines or [str(err).splitlines()[0] if str(err) else type(err).__name__])[0]
        raise ValueError(
            f"Refusing to load {path}: besides tensors it asks to build Python objects, and "
            "unpickling those could run arbitrary code (torch.load(weights_only=True) rejected it: "
            f"{detail.strip()[:200]}). Weights from Meta or Hugging Face never need that; "
            "get the file from a source you trust, or convert it to safetensors."
        ) from err
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict (a dict of tensors); got {type(obj).__name__}.")
    return obj


# ---- Meta layout -----------------------------------------------------------------------------


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}).") from err


def expected_shapes(args: ModelArgs) -> dict[str, torch.Size]:
    """The shape of every weight a ``Transformer(args)`` has, worked out from ``params.json``
    alone (nothing allocated). ``tests/test_llama_checkpoint.py`` checks it against the model."""
    hd, hidden = args.head_dim, ffn_hidden_dim(args)
    shapes = {"tok_embeddings.weight": (args.vocab_size, args.dim), "norm.weight": (args.dim,),
              "output.weight": (args.vocab_size, args.dim)}
    for i in range(args.n_layers):
        p = f"layers.{i}."
        shapes.update({
            p + "attention.wq.weight": (args.n_heads * hd, args.dim),
            p + "attention.wk.weight": (args.n_kv_heads * hd, args.dim),
            p + "attention.wv.weight": (args.n_kv_heads * hd, args.dim),
            p + "attention.wo.weight": (args.dim, args.n_heads * hd),
            p + "feed_forward.w1.weight": (hidden, args.dim),
            p + "feed_forward.w2.weight": (args.dim, hidden),
            p + "feed_forward.w3.weight": (hidden, args.dim),
            p + "attention_norm.weight": (args.dim,),
            p + "ffn_norm.weight": (args.dim,),
        })
    return {k: torch.Size(v) for k, v in shapes.items()}


def merge_shards(shards: list[dict[str, torch.Tensor]], args: ModelArgs) -> dict[str, torch.Tensor]:
    """Join model-parallel shards into one state dict.

    Column-parallel weights (``wq wk wv w1 w3 output``) were split by output rows: join on dim 0.
    Row-parallel ones (``wo w2``) by input columns: join on dim 1. ``tok_embeddings`` is split on
    dim 1 in Llama 2 and on the vocabulary (dim 0) in Llama 3: the axis is read from the shard
    shapes against ``params.json``. Norms are whole in every shard: taken once.
    """
    want = expected_shapes(args)
    n = len(shards)
    merged: dict[str, torch.Tensor] = {}
    for key in shards[0]:
        if key in IGNORED_META_KEYS:
            continue
        if key not in want:
            raise ValueError(f"Checkpoint has a tensor {key!r} that a Llama with these params.json "
                             "values does not have: is params.json from the same model?")
        parts = []
        for i, shard in enumerate(shards):
            if key not in shard:
                raise ValueError(f"Shard {i} lacks {key!r}: the shards are not from one checkpoint.")
            parts.append(shard[key])
        if n == 1 or parts[0].dim() == 1:
            t = parts[0]
        else:
            t = torch.cat(parts, dim=_merge_axis(key, parts[0].shape, n, want[key]))
        if t.shape != want[key]:
            raise ValueError(
                f"Shard shapes do not fit params.json: {key} is {tuple(t.shape)} after joining {n} "
                f"shard(s) (each {tuple(parts[0].shape)}), but params.json implies {tuple(want[key])}. "
                "Check that params.json belongs to these weights and that no shard is missing."
            )
        merged[key] = t
    if "output.weight" not in merged and "tok_embeddings.weight" in merged:
        # Tied embeddings (Llama 3.2 1B/3B): the output matrix *is* the embedding matrix, so
        # Meta's file stores it once. Both names then point at the same tensor.
        merged["output.weight"] = merged["tok_embeddings.weight"]
    missing = [k for k in want if k not in merged]
    if missing:
        raise ValueError(f"Checkpoint lacks {len(missing)} weights, e.g. {missing[:3]}: incomplete download?")
    return merged


def _merge_axis(key: str, shard_shape: torch.Size, n: int, full: torch.Size) -> int:
    """``shard_axis``, with the embeddings' axis read from the shapes: whichever axis makes n
    shards fill the full shape."""
    axis = shard_axis(key)
    if axis is not None:
        return axis
    for axis in (0, 1):
        other = 1 - axis
        if shard_shape[axis] * n == full[axis] and shard_shape[other] == full[other]:
            return axis
    raise ValueError(f"Shard shapes do not fit params.json: {n} shards of {key} shaped "
                     f"{tuple(shard_shape)} cannot make {tuple(full)} along either axis.")


def load_meta(ckpt_dir: PathLike, args: ModelArgs) -> dict[str, torch.Tensor]:
    """The merged state dict of a Meta-layout folder (tensors memory-mapped on the CPU)."""
    shards = [safe_torch_load(p) for p in meta_shards(Path(ckpt_dir))]
    return merge_shards(shards, args)


def save_meta(state_dict: dict[str, torch.Tensor], args: ModelArgs, out_dir: PathLike,
              n_shards: int = 1, embedding_axis: int = 1) -> Path:
    """Write ``params.json`` + ``consolidated.NN.pth`` in Meta's layout, split into ``n_shards``
    model-parallel shards the way Meta splits them (``embedding_axis`` 1 like Llama 2, 0 like
    Llama 3). The inverse of ``load_meta``; notebook 03 uses it to make a sharded folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, torch.Tensor]] = [{} for _ in range(n_shards)]
    for key, t in state_dict.items():
        axis = None if t.dim() == 1 or n_shards == 1 else shard_axis(key, embedding_axis)
        if axis is not None and t.shape[axis] % n_shards:
            raise ValueError(f"{key} {tuple(t.shape)} does not split into {n_shards} equal shards "
                             f"on dim {axis}.")
        pieces = [t] * n_shards if axis is None else list(torch.chunk(t, n_shards, dim=axis))
        for shard, piece in zip(shards, pieces):
            shard[key] = piece.clone()
    for i, shard in enumerate(shards):
        torch.save(shard, out / f"consolidated.{i:02d}.pth")
    write_params_json(args, out)
    return out


def write_params_json(args: ModelArgs, out_dir: PathLike) -> Path:
    """Write ``out_dir/params.json`` for ``args``, as Meta's downloads have it; returns its path."""
    path = Path(out_dir) / "params.json"
    path.write_text(json.dumps(meta_params(args), indent=2) + "\n")
    return path


def meta_params(args: ModelArgs) -> dict[str, Any]:
    """The ``params.json`` dict for ``args`` (cache sizes are chosen at build time, not stored)."""
    keys = ["dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "multiple_of",
            "ffn_dim_multiplier", "norm_eps", "rope_theta", "use_scaled_rope"]
    if args.use_scaled_rope:
        keys += ["rope_scale_factor", "rope_low_freq_factor", "rope_high_freq_factor",
                 "rope_original_max_len"]
    return {k: getattr(args, k) for k in keys}


# ---- Hugging Face layout ---------------------------------------------------------------------


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


def ffn_params_for(dim: int, hidden: int) -> dict[str, Any]:
    """``multiple_of``/``ffn_dim_multiplier`` that make Meta's formula give HF's intermediate_size:
    rounding up to a multiple of ``hidden`` itself lands exactly on ``hidden``."""
    base = swiglu_base_width(dim)
    return {"multiple_of": hidden, "ffn_dim_multiplier": None if base <= hidden else hidden / base}


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
    # Tied embeddings (Llama 3.2 1B/3B): the output matrix *is* the embedding matrix, and HF files
    # then hold no lm_head.weight. One stored anyway is used as it is (as transformers 5 does).
    if "output.weight" not in out and "tok_embeddings.weight" in out:
        out["output.weight"] = out["tok_embeddings.weight"]
    return out


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
    sd: dict[str, torch.Tensor] = {}
    for f in hf_weight_files(Path(ckpt_dir)):
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd.update(load_file(str(f), device="cpu"))
        else:
            sd.update(safe_torch_load(f))
    return sd


def read_params(ckpt_dir: PathLike) -> tuple[str, dict[str, Any]]:
    """('meta', 'hf' or 'gguf', the Meta ``params.json`` values) of a checkpoint folder or file."""
    layout = detect_layout(ckpt_dir)
    d = Path(ckpt_dir)
    if layout == "meta":
        return layout, meta_rope_defaults(read_json(d / "params.json"))
    if layout == "gguf":
        from .gguf import gguf_params, open_gguf

        return layout, gguf_params(open_gguf(d))
    return layout, hf_config_to_params(read_json(d / "config.json"))


def meta_rope_defaults(params: dict[str, Any]) -> dict[str, Any]:
    """Fill in the rope factor a Meta ``params.json`` leaves out. Llama 3.1 and 3.2 both say only
    ``use_scaled_rope: true``; Meta's code then uses 8 for 3.1 and 32 for 3.2 (as their Hugging
    Face ``config.json`` files state), so the factor is told by the shape: 32 for Llama 3.2
    1B/3B, else 8. A factor the file states (``rope_scaling_factor``) always wins."""
    stated = params.get("rope_scaling_factor", params.get("rope_scale_factor"))
    if not params.get("use_scaled_rope") or stated is not None:
        return params
    factor = LLAMA_3_2_ROPE_FACTOR if is_llama_3_2_shape(params) else LLAMA_3_1_ROPE_FACTOR
    return {**params, "rope_scale_factor": factor}


def ties_embeddings(layout: str, ckpt_dir: PathLike, params: dict[str, Any]) -> bool:
    """Whether the checkpoint's output matrix is its embedding matrix (Llama 3.2 1B/3B), known
    before any weight is read: ``tie_word_embeddings`` in an HF config, the shape for Meta's."""
    if layout == "hf":
        return bool(read_json(Path(ckpt_dir) / "config.json").get("tie_word_embeddings"))
    return is_llama_3_2_shape(params)


def load_state_dict(ckpt_dir: PathLike, args: ModelArgs, layout: str | None = None
                    ) -> dict[str, torch.Tensor]:
    """One state dict in Meta's names, checked against ``args``, whatever the layout."""
    layout = layout or detect_layout(ckpt_dir)
    if layout == "meta":
        return load_meta(ckpt_dir, args)
    config = read_json(Path(ckpt_dir) / "config.json")
    sd = hf_to_meta(read_hf_weights(ckpt_dir), args, bool(config.get("tie_word_embeddings")))
    return merge_shards([sd], args)  # one "shard": validates names and shapes


# ---- writing the Hugging Face layout ---------------------------------------------------------


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
    tied = transformer.output.weight.data_ptr() == transformer.tok_embeddings.weight.data_ptr()
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

