"""Checkers for notebook 03 Loading Llama: each runs the learner's function on cases it builds
itself, compares with a reference computed here, prints one line of feedback and returns a
``Verdict`` (truthy when right)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nnlib.llama.checkpoint import shard_axis
from nnlib.llama.devices import KNOWN_MODELS, count_parameters, format_of_bytes, kv_cache_bytes
from nnlib.llama.model import ModelArgs, ffn_hidden_dim

from .verdict import Verdict, attempt, report

# References come from nnlib.llama (devices, checkpoint), so the notebook, the library and the
# checkers share one definition of each quantity.

# params.json of published models, from their one home (Llama 2 7B's has no n_kv_heads: it
# means n_kv_heads = n_heads).
_LLAMA2_7B = {k: v for k, v in KNOWN_MODELS["7B"].items() if k != "n_kv_heads"}
_LLAMA3_8B = KNOWN_MODELS["8B"]
_LLAMA3_70B = KNOWN_MODELS["70B"]
_TINY_SHAPE = dict(dim=192, n_layers=6, n_heads=6, n_kv_heads=2, vocab_size=2048, multiple_of=32,
                   ffn_dim_multiplier=None)


def _kv_reference(params: dict, max_seq_len: int, max_batch_size: int, bytes_per_value: int) -> int:
    return kv_cache_bytes(params["n_layers"], params["dim"], params["n_heads"], max_seq_len,
                          max_batch_size, n_kv_heads=params.get("n_kv_heads"),
                          dtype=format_of_bytes(bytes_per_value))


def check_kv_cache_bytes(fn: Callable[..., Any]) -> Verdict:
    """Exercise 03.1: ``fn(params, max_seq_len, max_batch_size, bytes_per_value)`` -> bytes of the
    KV cache a Llama with this ``params.json`` allocates (keys and values, every layer)."""
    cases = [(_TINY_SHAPE, 256, 4, 4), (_LLAMA2_7B, 2048, 1, 2), (_LLAMA3_8B, 8192, 1, 2),
             (_LLAMA2_7B, 2048, 32, 2), (_LLAMA3_70B, 4096, 4, 2)]
    for params, seq, bsz, nbytes in cases:
        ran, got = attempt(fn, dict(params), seq, bsz, nbytes)
        if not ran:
            return Verdict(False)
        want = _kv_reference(params, seq, bsz, nbytes)
        if got == want:
            continue
        n_heads = params["n_heads"]
        n_kv = params.get("n_kv_heads") or n_heads
        where = f"for dim={params['dim']}, n_layers={params['n_layers']}, max_seq_len={seq}, " \
                f"max_batch_size={bsz}, {nbytes} bytes per value you said {got!r}, expected {want:,}"
        if not isinstance(got, (int, float)):
            hint = "return a number of bytes"
        elif got * 2 == want:
            hint = "there are two caches per layer, one for keys and one for values"
        elif n_kv != n_heads and got == want * n_heads // n_kv:
            hint = ("with grouped-query attention only n_kv_heads heads are cached "
                    "(each is shared by n_heads // n_kv_heads query heads)")
        elif got * nbytes == want:
            hint = "that counts values; multiply by the bytes per value"
        elif "n_kv_heads" not in params:
            hint = "Llama 2's params.json has no n_kv_heads: then n_kv_heads = n_heads"
        else:
            hint = ("each cached value is one head_dim = dim // n_heads number, for every layer, "
                    "batch row, position and key/value head")
        return report(False, "", f"{where}; {hint}.")
    return report(True, "2 x n_layers x max_batch_size x max_seq_len x n_kv_heads x head_dim x "
                   "bytes: Llama 3 8B caches 4x less per token than Llama 2 7B thanks to GQA.", "")


def check_llama_parameter_count(fn: Callable[..., Any]) -> Verdict:
    """Exercise 03.2: ``fn(params)`` -> parameters of a Llama with this ``params.json`` (embedding
    and output separate, as in Meta's checkpoints)."""
    for params in (_TINY_SHAPE, _LLAMA2_7B, _LLAMA3_8B, _LLAMA3_70B):
        ran, got = attempt(fn, dict(params))
        if not ran:
            return Verdict(False)
        want = count_parameters(**params)
        if got == want:
            continue
        dim, layers, vocab = params["dim"], params["n_layers"], params["vocab_size"]
        heads = params["n_heads"]
        n_kv = params.get("n_kv_heads") or heads
        hd = dim // heads
        args = ModelArgs(**{k: v for k, v in params.items() if k != "norm_eps"}, max_seq_len=1,
                         max_batch_size=1)
        diff = want - got if isinstance(got, (int, float)) else None
        if diff is None:
            hint = "return a number"
        elif diff == vocab * dim:
            hint = "the output matrix (dim -> vocab_size) is a separate weight from tok_embeddings"
        elif diff == 2 * layers * dim + dim:
            hint = "count the RMSNorm weights too: two per layer and one at the end, dim each"
        elif n_kv != heads and -diff == 2 * layers * dim * (heads - n_kv) * hd:
            hint = "wk and wv have n_kv_heads * head_dim rows, not dim (grouped-query attention)"
        else:
            hint = (f"per layer: wq, wo (dim x dim), wk, wv (n_kv_heads*head_dim x dim), w1, w3, "
                    f"w2 (hidden x dim, hidden = {ffn_hidden_dim(args)} here: int(2*4*dim/3), "
                    "times ffn_dim_multiplier, rounded up to multiple_of), two norms")
        return report(False, "", f"for dim={dim}, n_layers={layers} you said {got!r}, expected "
                       f"{want:,}; {hint}.")
    return report(True, "Llama 2 7B has 6.74 billion parameters, Llama 3 8B 8.03 billion: the "
                   "'7B' and '8B' are these numbers, rounded.", "")


def _mp_axis(name: str, embedding_axis: int = 1) -> Any:
    """Meta's split axis for a weight: 0 (column-parallel), 1 (row-parallel), None (copied)."""
    return shard_axis(name, embedding_axis)  # tok_embeddings: dim 1 in Llama 2's shards


def check_mp_split(split: Callable[..., Any], merge: Callable[..., Any]) -> Verdict:
    """Exercise 03.3: ``split(name, tensor, n_shards)`` -> the list of shards Meta would write for
    this weight (Llama 2 style: ``tok_embeddings`` on dim 1), ``merge(name, shards)`` -> the
    whole weight back."""
    import torch

    gen = torch.Generator().manual_seed(3)
    shapes = {"tok_embeddings.weight": (32, 8), "layers.0.attention.wq.weight": (8, 8),
              "layers.0.attention.wk.weight": (4, 8), "layers.0.attention.wo.weight": (8, 8),
              "layers.0.feed_forward.w1.weight": (24, 8), "layers.0.feed_forward.w2.weight": (8, 24),
              "layers.0.attention_norm.weight": (8,), "norm.weight": (8,), "output.weight": (32, 8)}
    for n in (2, 4):
        for name, shape in shapes.items():
            t = torch.randn(shape, generator=gen)
            axis = _mp_axis(name)
            want = [t.clone() for _ in range(n)] if axis is None else list(torch.chunk(t, n, dim=axis))
            ran, got = attempt(split, name, t.clone(), n)
            if not ran:
                return Verdict(False)
            kind = name.split(".")[-2]
            ok = isinstance(got, (list, tuple)) and len(got) == n and all(
                isinstance(g, torch.Tensor) and g.shape == w.shape and torch.equal(g, w)
                for g, w in zip(got, want))
            if not ok:
                if not isinstance(got, (list, tuple)) or len(got) != n:
                    hint = f"return a list of {n} tensors, one per shard"
                elif axis is None:
                    hint = "a 1-D norm weight is not split: every shard holds the whole of it"
                elif axis == 0:
                    hint = (f"{kind} is column-parallel: each shard has some of its output features, "
                            "so split the rows (dim 0)")
                elif kind == "tok_embeddings":
                    hint = "Llama 2's shards split tok_embeddings on dim 1 (each shard has some of dim)"
                else:
                    hint = (f"{kind} is row-parallel: each shard has some of its input features, "
                            "so split the columns (dim 1)")
                return report(False, "", f"split({name!r}, tensor of shape {tuple(shape)}, {n}): {hint}.")
            ran, back = attempt(merge, name, [w.clone() for w in want])
            if not ran:
                return Verdict(False)
            if not (isinstance(back, torch.Tensor) and back.shape == t.shape and torch.equal(back, t)):
                got_shape = tuple(back.shape) if isinstance(back, torch.Tensor) else type(back).__name__
                hint = ("take one copy of a norm weight" if axis is None else
                        f"concatenate on the same dim you split on (dim {axis})")
                return report(False, "", f"merge({name!r}, {n} shards) gave {got_shape}, expected "
                               f"{tuple(t.shape)}; {hint}.")
    return report(True, "Column-parallel weights join on dim 0, row-parallel on dim 1, norms are "
                   "copied: nnlib's merge_shards does exactly this for 13B (MP=2) and 70B (MP=8).", "")


def check_to_model_device(fn: Callable[..., Any]) -> Verdict:
    """Exercise 03.4: ``fn(batch, model)`` -> the batch (a dict, as a tokenizer returns it) with
    every tensor on the device of the model's parameters and everything else unchanged."""
    import torch

    for device in ("meta", "cpu"):  # meta: a second device that exists on every torch
        with torch.random.fork_rng(devices=[]):  # the random init must not move the learner's seed
            model = torch.nn.Linear(3, 2, device=device)
        batch = {"input_ids": torch.tensor([[1, 5, 9]]), "attention_mask": torch.ones(1, 3, dtype=torch.long),
                 "max_new_tokens": 32}
        ran, got = attempt(fn, dict(batch), model)
        if not ran:
            return Verdict(False)
        if not isinstance(got, dict) or set(got) != set(batch):
            return report(False, "", "return a dict with the same keys as the batch")
        for key, value in batch.items():
            if not isinstance(value, torch.Tensor):
                if got[key] != value:
                    return report(False, "", f"{key!r} is not a tensor: leave it as it is")
                continue
            out = got[key]
            if not isinstance(out, torch.Tensor) or out.device.type != device:
                where = out.device if isinstance(out, torch.Tensor) else type(out).__name__
                return report(False, "", f"{key!r} is on {where} but the model is on {device}: "
                               "next(model.parameters()).device is where the model lives "
                               "(Hugging Face models also have model.device); move every tensor there")
            if device == "cpu" and not torch.equal(out, value):
                return report(False, "", f"{key!r} changed its values: only move it")
    return report(True, "Every tensor the model reads must be where its weights are; this is "
                   "input_ids.to(model.device) for a whole batch.", "")


