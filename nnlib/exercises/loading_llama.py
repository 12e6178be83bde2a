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


def _attempt_on_params(fn: Callable[..., Any], params: dict, *args: Any) -> tuple[bool, Any, str]:
    """``attempt(fn, params, *args)``, but a KeyError for a key this ``params.json`` lacks is a
    hint, not a traceback: (ran, result, hint), with hint "" when ``fn`` raised no KeyError."""
    try:
        ran, got = attempt(fn, dict(params), *args)
    except KeyError as err:
        key = err.args[0] if err.args else None
        if key == "n_kv_heads" and "n_kv_heads" not in params:
            hint = ("params['n_kv_heads'] raised KeyError: Llama 2 7B's and 13B's params.json have "
                    "no n_kv_heads (every head has its own keys and values); use "
                    "params.get('n_kv_heads') or params['n_heads']")
        else:
            hint = f"params[{key!r}] raised KeyError: this params.json has only {sorted(params)}"
        return False, None, hint
    return ran, got, ""


def check_kv_cache_bytes(fn: Callable[..., Any]) -> Verdict:
    """Exercise 03.1: ``fn(params, max_seq_len, max_batch_size, bytes_per_value)`` -> bytes of the
    KV cache a Llama with this ``params.json`` allocates (keys and values, every layer)."""
    cases = [(_TINY_SHAPE, 256, 4, 4), (_LLAMA2_7B, 2048, 1, 2), (_LLAMA3_8B, 8192, 1, 2),
             (_LLAMA2_7B, 2048, 32, 2), (_LLAMA3_70B, 4096, 4, 2)]
    for params, seq, bsz, nbytes in cases:
        ran, got, key_hint = _attempt_on_params(fn, params, seq, bsz, nbytes)
        if key_hint:
            return report(False, "", f"for dim={params['dim']}, n_layers={params['n_layers']}: "
                           f"{key_hint}.")
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
            hint = "Llama 2 7B's params.json has no n_kv_heads: then n_kv_heads = n_heads"
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
        ran, got, key_hint = _attempt_on_params(fn, params)
        if key_hint:
            return report(False, "", f"for dim={params['dim']}, n_layers={params['n_layers']}: "
                           f"{key_hint}.")
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
                   "copied: nnlib's merge_shards does exactly this for Llama 2 13B (MP=2) and 70B (MP=8) "
                   "(Llama 3 70B splits its embedding on dim 0 instead).", "")


#: Exercise 03b's snippet, numbered as the notebook prints it.
SNIPPET_LINES = (
    'inputs = hf_tokenizer(SEED_PROMPT, return_tensors="pt")',
    "mask = inputs.attention_mask.to(model.device)",
    "ids = inputs.input_ids",
    "logits = model(input_ids=ids, attention_mask=mask).logits",
)


class _OneDeviceModel:
    """A stand-in for a transformers model on one device (``meta`` here: a second device every
    torch has), doing what a real Llama on one GPU does in a forward call: ``input_ids``
    elsewhere raise the device-mismatch error (the embedding reads them where they are), and a
    2-D ``attention_mask`` elsewhere is moved (transformers' ``masking_utils`` moves it to the
    embeddings' device, as 5.24 does). It records what it was given, the mask as given."""

    def __init__(self, device: str) -> None:
        import torch

        self.device = torch.device(device)
        self.calls: list[dict] = []
        self.logits = torch.zeros(1, 3, 8, device=self.device)

    def __call__(self, input_ids: Any = None, attention_mask: Any = None, **kwargs: Any) -> Any:
        from types import SimpleNamespace

        self.calls.append({"input_ids": input_ids, "attention_mask": attention_mask, **kwargs})
        if input_ids is not None and getattr(input_ids, "device", None) != self.device:
            where = getattr(input_ids, "device", type(input_ids).__name__)
            raise RuntimeError(f"Expected all tensors to be on the same device, but got input_ids "
                               f"is on {where}, different from other tensors on {self.device}")
        return SimpleNamespace(logits=self.logits)


def check_forward_on_model_device(failing_line: Callable[..., Any],
                                  fixed_forward: Callable[..., Any]) -> Verdict:
    """Exercise 03b: ``failing_line()`` -> the number (1 to 4) of the snippet's line that raises on
    one GPU or a Mac; ``fixed_forward(model, inputs)`` -> the logits of ``model`` for the
    tokenizer's ``inputs`` (a ``BatchEncoding`` on the CPU), on any device."""
    import torch
    from transformers import BatchEncoding

    ran, line = attempt(failing_line)
    if not ran:
        return Verdict(False)
    hints = {1: "line 1 cannot fail: the tokenizer makes its tensors on the CPU, without error",
             2: "line 2 moves the mask to model.device; .to(...) does not raise",
             3: "line 3 only names the ids (still on the CPU); nothing is computed yet"}
    if line != 4:
        return report(False, "", hints.get(line, f"answer a line number, 1 to 4 (you said {line!r})")
                      + ": the error comes where the model reads a tensor that is not on its device.")
    mask_left_behind = False
    for device in ("meta", "cpu"):
        model = _OneDeviceModel(device)
        ids = torch.tensor([[1, 5, 9]])
        mask = torch.ones(1, 3, dtype=torch.long)
        inputs = BatchEncoding({"input_ids": ids.clone(), "attention_mask": mask})
        try:
            ran, got = attempt(fixed_forward, model, inputs)
        except RuntimeError as err:
            if "Expected all tensors to be on the same device, but got input_ids" not in str(err):
                raise  # the learner's own error, with its traceback
            return report(False, "", f"with the model on {device}: the ids are still on the cpu, as "
                           "in line 4: a forward call does not move them; move the whole batch, "
                           "inputs.to(model.device).")
        if not ran:
            return Verdict(False)
        if not model.calls:
            return report(False, "", "call the model: model(**inputs.to(model.device)).logits")
        call = model.calls[-1]
        if call["attention_mask"] is None:
            return report(False, "", "pass the attention_mask too (the fix moves it, it does not "
                           "drop it): model(**inputs.to(model.device))")
        if device == "cpu" and not torch.equal(call["input_ids"], ids):
            return report(False, "", "the ids changed their values: only move them")
        if got is not model.logits:
            return report(False, "", "return the logits: model(...).logits")
        mask_left_behind |= getattr(call["attention_mask"], "device", None) != model.device
    habit = ("inputs.to(model.device) (a BatchEncoding's .to) moves every tensor at once; on a "
             "CPU-only machine the same line costs nothing.")
    if mask_left_behind:
        habit = ("You left the attention_mask on the cpu: that passes, because transformers' mask "
                 "code moves a 2-D attention_mask to the model's device itself (5.24 does), but "
                 "the ids it never moves. Moving the whole batch is still the habit: " + habit)
    return report(True, "Line 4: a forward call does not move the ids, and the embedding reads "
                   "CPU ids on the GPU. " + habit, "")
