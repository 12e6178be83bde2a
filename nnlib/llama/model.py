"""A readable Llama in Meta's names: ``ModelArgs``, ``RMSNorm``, rotary embeddings, ``Attention``
with a KV cache and grouped-query heads, ``FeedForward``, ``TransformerBlock``, ``Transformer``.

One file, top to bottom in the order data flows through the network. Parameter names match
Meta's checkpoints (``tok_embeddings``, ``layers.N.attention.wq`` ...), so a ``consolidated.00.pth``
loads with ``load_state_dict`` as it is. Unlike Meta's reference code nothing here needs CUDA,
fairscale or a process group: the same module runs on CUDA, Apple MPS or the CPU.

Shapes used in the comments: ``B`` batch, ``S`` new tokens in this call, ``T`` tokens attended to
(cache plus new), ``D`` model width ``dim``, ``H`` query heads, ``KV`` key/value heads, ``hd`` the
width of one head ``dim // n_heads``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .linear import Linear, project  # nn.Linear without bias; project: several on one input


@dataclass
class ModelArgs:
    """Hyper-parameters, named as in Meta's ``params.json``.

    ``max_batch_size`` and ``max_seq_len`` are not in ``params.json``: they size the KV cache
    (``max_seq_len`` the rope tables too, and it caps prompt plus generation) and are chosen when
    the model is built. ``vocab_size = -1`` (as in Llama 2's files) means "take it
    from the tokenizer". ``rope_scale_factor`` and the two ``*_freq_factor`` values only matter with
    ``use_scaled_rope`` (Llama 3.1 uses 8, Llama 3.2 uses 32).

    ``rope_theta`` defaults to 10000, Llama 1/2's value: their ``params.json`` files leave it out,
    while Llama 3's always state it (500000). Meta's Llama 3 code defaults to 500000 instead, which
    would silently load a Llama 2 download with the wrong rotary speeds.
    """

    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int | None = None
    vocab_size: int = -1
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    use_scaled_rope: bool = False
    max_batch_size: int = 32
    max_seq_len: int = 2048
    rope_scale_factor: float = 8.0
    rope_low_freq_factor: float = 1.0
    rope_high_freq_factor: float = 4.0
    rope_original_max_len: int = 8192

    @classmethod
    def from_dict(cls, params: dict[str, Any], **overrides: Any) -> ModelArgs:
        """Build from a ``params.json`` dict; keys this class does not know are ignored."""
        known = {f.name for f in fields(cls)}
        # Meta's later params.json files call the factor rope_scaling_factor; null means "default".
        params = {("rope_scale_factor" if k == "rope_scaling_factor" else k): v for k, v in params.items()
                  if not (k.startswith("rope_") and v is None)}
        kwargs = {k: v for k, v in params.items() if k in known}
        kwargs.update(overrides)
        return cls(**kwargs)

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.dim % self.n_heads:
            raise ValueError(f"dim={self.dim} must be divisible by n_heads={self.n_heads}.")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads} "
                "(each key/value head serves a whole group of query heads)."
            )
        if (self.dim // self.n_heads) % 2:
            raise ValueError("The head width dim // n_heads must be even for rotary embeddings.")
        if self.max_seq_len < 1 or self.max_batch_size < 1:
            raise ValueError("max_seq_len and max_batch_size must be at least 1.")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


def swiglu_base_width(dim: int) -> int:
    """int(2/3 * 4 * dim): the SwiGLU width before ``ffn_dim_multiplier`` and rounding."""
    return int(2 * (4 * dim) / 3)


def ffn_hidden_dim(args: ModelArgs) -> int:
    """Width of the SwiGLU layer: 2/3 of 4*dim (three matrices instead of two keep the parameter
    count of a 4*dim MLP), scaled by ``ffn_dim_multiplier``, rounded up to ``multiple_of``."""
    hidden = swiglu_base_width(args.dim)
    if args.ffn_dim_multiplier is not None:
        hidden = int(args.ffn_dim_multiplier * hidden)
    return args.multiple_of * ((hidden + args.multiple_of - 1) // args.multiple_of)


class RMSNorm(nn.Module):
    """Divide each vector by its root mean square, then scale per feature: LayerNorm without
    centring and without a bias. Computed in float32 so fp16/bf16 models do not overflow."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


# ---- rotary position embedding ---------------------------------------------------------------
# Meta rotates each consecutive pair (x0, x1), (x2, x3), ... of a head by an angle that grows with
# the position. Meta writes it with complex numbers; cos/sin tables do the same and also run on
# Apple MPS, which has no complex support in many torch versions.


def rope_frequencies(args: ModelArgs, device: Any = None) -> torch.Tensor:
    """One rotation speed per pair of a head: theta ** (-2i / hd), shape (hd/2,), float32."""
    hd = args.head_dim
    freqs = 1.0 / (args.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32, device=device) / hd))
    if args.use_scaled_rope:
        freqs = scale_rope_frequencies(freqs, args)
    return freqs


def scale_rope_frequencies(freqs: torch.Tensor, args: ModelArgs) -> torch.Tensor:
    """Llama 3.1's long-context trick: slow down the low frequencies (long wavelengths) by
    ``rope_scale_factor``, keep the high ones, and blend smoothly in between."""
    factor, low, high = args.rope_scale_factor, args.rope_low_freq_factor, args.rope_high_freq_factor
    old_len = args.rope_original_max_len
    wavelen = 2 * math.pi / freqs
    smooth = (old_len / wavelen - low) / (high - low)
    blended = (1 - smooth) * freqs / factor + smooth * freqs
    out = torch.where(wavelen > old_len / low, freqs / factor, blended)  # long waves: slowed
    return torch.where(wavelen < old_len / high, freqs, out)  # short waves: untouched


def precompute_rope(args: ModelArgs, device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of position * frequency, each (max_seq_len, hd/2), float32."""
    freqs = rope_frequencies(args, device)
    angles = torch.outer(torch.arange(args.max_seq_len, device=device, dtype=torch.float32), freqs)
    return torch.cos(angles), torch.sin(angles)


def apply_rotary_emb(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the pairs of x (B, S, heads, hd) by the angles for its S positions (S, hd/2)."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    x0, x1 = pairs[..., 0], pairs[..., 1]
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    rotated = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, T, KV, hd) -> (B, T, KV * n_rep, hd): each key/value head is shared by n_rep query heads."""
    if n_rep == 1:
        return x
    b, t, kv, hd = x.shape
    return x[:, :, :, None, :].expand(b, t, kv, n_rep, hd).reshape(b, t, kv * n_rep, hd)


class Attention(nn.Module):
    """Multi-head self-attention with grouped key/value heads and a KV cache.

    The cache holds the keys and values of every position already seen, so generating one more
    token costs one new row instead of recomputing the whole prefix.
    """

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = args.n_heads, args.n_kv_heads, args.head_dim
        self.n_rep = self.n_heads // self.n_kv_heads
        self.wq = Linear(args.dim, args.n_heads * self.head_dim)
        self.wk = Linear(args.dim, self.n_kv_heads * self.head_dim)
        self.wv = Linear(args.dim, self.n_kv_heads * self.head_dim)
        self.wo = Linear(args.n_heads * self.head_dim, args.dim)
        cache_shape = (args.max_batch_size, args.max_seq_len, self.n_kv_heads, self.head_dim)
        # Buffers, not parameters: they move with .to(device, dtype) but are not in state_dict.
        self.register_buffer("cache_k", torch.zeros(cache_shape), persistent=False)
        self.register_buffer("cache_v", torch.zeros(cache_shape), persistent=False)

    def forward(self, x: torch.Tensor, start_pos: int, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor | None, use_cache: bool = True) -> torch.Tensor:
        bsz, seqlen, _ = x.shape
        xq, xk, xv = project(x, self.wq, self.wk, self.wv)
        xq = xq.view(bsz, seqlen, self.n_heads, self.head_dim)
        xk = xk.view(bsz, seqlen, self.n_kv_heads, self.head_dim)
        xv = xv.view(bsz, seqlen, self.n_kv_heads, self.head_dim)
        xq, xk = apply_rotary_emb(xq, cos, sin), apply_rotary_emb(xk, cos, sin)

        if use_cache:
            # Write this call's keys/values at their positions, then attend to everything so far.
            end = start_pos + seqlen
            self.cache_k[:bsz, start_pos:end] = xk.to(self.cache_k.dtype)
            self.cache_v[:bsz, start_pos:end] = xv.to(self.cache_v.dtype)
            keys, values = self.cache_k[:bsz, :end].to(xq.dtype), self.cache_v[:bsz, :end].to(xq.dtype)
        else:
            keys, values = xk, xv  # training / the "no cache" baseline: only these tokens

        keys, values = repeat_kv(keys, self.n_rep), repeat_kv(values, self.n_rep)  # (B, T, H, hd)
        q, k, v = xq.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2)  # (B, H, ., hd)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # softmax(qk^T/sqrt(hd)+mask)v
        return self.wo(out.transpose(1, 2).reshape(bsz, seqlen, -1))


class FeedForward(nn.Module):
    """SwiGLU: w2( silu(w1 x) * w3 x ). w1 and w3 go up to ``hidden``, w2 comes back down."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.w1 = Linear(dim, hidden_dim)
        self.w2 = Linear(hidden_dim, dim)
        self.w3 = Linear(dim, hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = project(x, self.w1, self.w3)
        return self.w2(F.silu(gate) * up)


class TransformerBlock(nn.Module):
    """Pre-norm residual block: x + attention(norm(x)), then h + feed_forward(norm(h))."""

    def __init__(self, layer_id: int, args: ModelArgs):
        super().__init__()
        self.layer_id = layer_id
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args.dim, ffn_hidden_dim(args))
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)

    def forward(self, x, start_pos, cos, sin, mask, use_cache=True):
        h = x + self.attention(self.attention_norm(x), start_pos, cos, sin, mask, use_cache)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    """Token ids (B, S) -> logits (B, S, vocab_size), in float32 whatever the weights' dtype.

    ``forward(tokens, start_pos)`` is Meta's call: ``tokens`` sit at positions
    ``start_pos .. start_pos + S - 1`` and attend to the cached positions before them. With
    ``use_cache=False`` (training, or the no-cache baseline) the call sees only ``tokens`` and
    neither reads nor writes the cache; gradients then flow as usual.
    """

    def __init__(self, params: ModelArgs):
        super().__init__()
        if params.vocab_size < 1:
            raise ValueError("vocab_size is not set (-1): take it from the tokenizer's n_words first.")
        self.params = params
        self.vocab_size, self.n_layers = params.vocab_size, params.n_layers
        self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
        self.layers = nn.ModuleList(TransformerBlock(i, params) for i in range(params.n_layers))
        self.norm = RMSNorm(params.dim, eps=params.norm_eps)
        self.output = Linear(params.dim, params.vocab_size)
        # The rotary tables are small (max_seq_len, hd/2) and computed on the CPU, as in Meta's
        # code; ``.to(device)`` and ``reset_buffers`` move them with the weights.
        cos, sin = precompute_rope(params, "cpu")
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def reset_buffers(self, device: Any = None, dtype: torch.dtype | None = None) -> None:
        """An empty KV cache on ``device`` in ``dtype`` (default: where the weights are), and the
        rope tables (float32) there too: a fresh start for a new prompt, or after loading."""
        w = self.tok_embeddings.weight
        device = w.device if device is None else device
        dtype = w.dtype if dtype is None else dtype
        # Ordinary tensors even when called under torch.inference_mode(): an "inference tensor"
        # cache would refuse the in-place writes of every later forward outside that mode.
        with torch.inference_mode(False):
            self.rope_cos, self.rope_sin = precompute_rope(self.params, device)
            for layer in self.layers:
                attn = layer.attention
                shape = attn.cache_k.shape
                attn.cache_k = torch.zeros(shape, device=device, dtype=dtype)
                attn.cache_v = torch.zeros(shape, device=device, dtype=dtype)

    def forward(self, tokens: torch.Tensor, start_pos: int = 0, use_cache: bool = True) -> torch.Tensor:
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (batch, seq) token ids; got shape {tuple(tokens.shape)}.")
        bsz, seqlen = tokens.shape
        if start_pos < 0 or start_pos + seqlen > self.params.max_seq_len:
            raise ValueError(
                f"Positions {start_pos}..{start_pos + seqlen - 1} do not fit max_seq_len="
                f"{self.params.max_seq_len}; build the model with a larger max_seq_len."
            )
        if use_cache and bsz > self.params.max_batch_size:
            raise ValueError(
                f"Batch of {bsz} exceeds max_batch_size={self.params.max_batch_size} (the KV cache "
                "size); build the model with a larger max_batch_size."
            )
        if not use_cache:
            return self._forward(tokens, start_pos, use_cache=False)
        with torch.no_grad():  # the cache is for inference: never keep a graph through it
            return self._forward(tokens, start_pos, use_cache=True)

    def _forward(self, tokens: torch.Tensor, start_pos: int, use_cache: bool) -> torch.Tensor:
        seqlen = tokens.shape[1]
        h = self.tok_embeddings(tokens)
        cos = self.rope_cos[start_pos:start_pos + seqlen].to(h.device)  # a no-op once they are there
        sin = self.rope_sin[start_pos:start_pos + seqlen].to(h.device)
        mask = None
        if seqlen > 1:
            # The causal mask over the KV cache. Row i is new token i, at absolute position
            # start_pos + i; column j is key position j, where columns 0..start_pos-1 are the
            # cached tokens and the last seqlen columns are this call's tokens. Every new token
            # may see all cached positions (zeros on the left, shape (S, start_pos)) and the new
            # tokens up to and including itself (a (S, S) block with -inf strictly above the
            # diagonal). -inf becomes weight 0 after the softmax, so no token sees its future.
            # With use_cache=False there are no cached columns, only the (S, S) block.
            future = torch.full((seqlen, seqlen), float("-inf"), device=tokens.device).triu(1)
            past = torch.zeros((seqlen, start_pos if use_cache else 0), device=tokens.device)
            mask = torch.hstack([past, future]).to(h.dtype)
        # One new token (seqlen == 1) may see every cached position and itself: no mask needed.
        for layer in self.layers:
            h = layer(h, start_pos, cos, sin, mask, use_cache)
        return self.output(self.norm(h)).float()

    def num_parameters(self) -> int:
        """Distinct parameters: tied embeddings (one tensor, two names) count once."""
        return sum(p.numel() for p in self.parameters())

