"""Checkers for the notebooks' exercises: say right or wrong, kindly, without giving the answer.

Each checker takes the learner's function (or value), runs it on cases it builds itself and
compares with a reference computed here. It prints one line of feedback and returns a ``Verdict`` (truthy when right).
A stub that still raises ``NotImplementedError`` is reported as "not attempted yet", so an
unsolved exercise never breaks a notebook run.
"""
from __future__ import annotations

from typing import Any, Callable


class Verdict:
    """What a checker returns: truthy when right. It prints nothing when it is a cell's last
    value, because the checker has already printed its feedback."""

    def __init__(self, ok: bool) -> None:
        self.ok = bool(ok)

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"Verdict({self.ok})"

    def _ipython_display_(self) -> None:
        pass


def _attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Call the learner's function; (False, None) if it is still the stub."""
    try:
        return True, fn(*args, **kwargs)
    except NotImplementedError:
        print("Not attempted yet: replace `raise NotImplementedError` with your code and re-run.")
        return False, None


def _report(ok: bool, right: str, wrong: str) -> Verdict:
    print(("Right! " + right) if ok else ("Not yet: " + wrong))
    return Verdict(ok)


# ---- 01 SGD from scratch -------------------------------------------------------------------


def check_sgd_update(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.1: ``fn(w, nabla_w, eta, m)`` returns the weights after one mini-batch step."""
    import numpy as np

    rng = np.random.default_rng(11)
    w, nw = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    ran, got = _attempt(fn, w.copy(), nw.copy(), 0.5, 8)
    if not ran:
        return Verdict(False)
    want = w - (0.5 / 8) * nw
    if np.shape(got) != want.shape:
        return _report(False, "", f"expected an array of shape {want.shape}, got {np.shape(got)}.")
    if np.allclose(got, w - 0.5 * nw):
        return _report(False, "", "nabla_w is a *sum* over the mini-batch: divide by m.")
    if np.allclose(got, w + (0.5 / 8) * nw):
        return _report(False, "", "step *against* the gradient: subtract it.")
    return _report(np.allclose(got, want), "w - (eta/m) * nabla_w: a step of size eta down the "
                   "mean gradient.", "compare with the update line at the top of the notebook.")


def check_parameter_count(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.2: ``fn(sizes)`` returns how many weights and biases ``Network(sizes)`` has."""
    cases = [[784, 30, 10], [64, 30, 10], [2, 3, 1], [5, 5, 5, 5]]
    for sizes in cases:
        ran, got = _attempt(fn, sizes)
        if not ran:
            return Verdict(False)
        want = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        if got != want:
            hint = ("the input layer has no biases" if got == want + sizes[0] else
                    "each layer l+1 has sizes[l+1] x sizes[l] weights and sizes[l+1] biases")
            return _report(False, "", f"for {sizes} you said {got}; {hint}.")
    return _report(True, "[784, 30, 10] has 23,860 numbers for SGD to tune.", "")


def check_cross_entropy_delta(fn: Callable[..., Any]) -> Verdict:
    """Exercise 01.3: ``fn(a, y, z)`` is the output error delta^L for the cross-entropy cost."""
    import numpy as np

    from nnlib.sgd import sigmoid, sigmoid_prime

    rng = np.random.default_rng(5)
    z = rng.standard_normal((10, 1)) * 2
    a = sigmoid(z)
    y = np.zeros((10, 1))
    y[3] = 1.0
    ran, got = _attempt(fn, a, y, z)
    if not ran:
        return Verdict(False)
    if np.allclose(got, (a - y) * sigmoid_prime(z)):
        return _report(False, "", "that is the quadratic cost's delta. For cross-entropy, "
                       "dC/da = (a - y) / (a (1 - a)); multiply by sigma'(z) and simplify.")
    return _report(np.allclose(got, a - y), "delta = a - y: the sigma'(z) cancels, so a saturated "
                   "neuron that is wrong still learns fast.", "work out dC/da * sigma'(z) for "
                   "C = -[y ln a + (1 - y) ln(1 - a)].")


# ---- 02 spaCy pipelines --------------------------------------------------------------------
# The checkers take the learner's function and the pipeline the notebook loaded, and compare with
# a reference computed here on sentences they choose. spaCy is only touched through that pipeline.

_EN_SENTENCES = [
    "Apple is looking at buying U.K. startup for $1 billion.",
    "Three engineers in Tokyo trained 12 small models last week.",
    "The cat sat on the mat while two dogs slept.",
]


def check_count_pos(count_pos: Callable[[Any], dict], nlp: Any) -> Verdict:
    """Exercise 02.1: ``count_pos(doc)`` -> {coarse POS: how many tokens have it}."""
    for text in _EN_SENTENCES:
        doc = nlp(text)
        attempted, got = _attempt(count_pos, doc)
        if not attempted:
            return Verdict(False)
        want: dict[str, int] = {}
        for token in doc:
            want[token.pos_] = want.get(token.pos_, 0) + 1
        if not isinstance(got, dict):
            return _report(False, "", f"count_pos should return a dict, got {type(got).__name__}")
        if dict(got) != want:
            return _report(False, "", f"for {text!r} expected counts like {sorted(want)[:3]}... "
                           "(use token.pos_, the coarse tag, and count every token)")
    return _report(True, "You counted the coarse (Universal) POS tags of every token.", "")


_PERCENT_SENTENCES = [
    "Sales rose 5 percent in May.",
    "About 12.5% of users left, and forty percent stayed.",
    "I have 3 cats and no percentages.",
    "Prices fell 7 pct, then rose 2 Percent.",
]
_PERCENT_REFERENCE = [{"LIKE_NUM": True}, {"LOWER": {"IN": ["percent", "%", "pct"]}}]


def check_percent_pattern(percent_pattern: Callable[[], list], nlp: Any) -> Verdict:
    """Exercise 02.2: ``percent_pattern()`` returns one Matcher pattern for "5 percent", "12.5%"."""
    from spacy.matcher import Matcher

    attempted, pattern = _attempt(percent_pattern)
    if not attempted:
        return Verdict(False)

    def found(pat: list) -> list[list[str]]:
        matcher = Matcher(nlp.vocab)
        matcher.add("PERCENT", [pat])
        result = []
        for text in _PERCENT_SENTENCES:
            doc = nlp.make_doc(text)
            result.append([doc[s:e].text for _, s, e in matcher(doc)])
        return result

    try:
        got = found(pattern)
    except (ValueError, TypeError, KeyError) as exc:  # spaCy validates patterns when added
        return _report(False, "", f"the Matcher did not accept the pattern ({type(exc).__name__}): "
                       "it must be a list of dicts, one per token")
    want = found(_PERCENT_REFERENCE)
    for text, g, w in zip(_PERCENT_SENTENCES, got, want):
        if g != w:
            return _report(False, "", f"in {text!r} your pattern found {g}, expected {w}")
    return _report(True, "One pattern, two tokens: a number-like token, then the unit.", "")


_CARDINAL_SENTENCES = _EN_SENTENCES + ["Google hired 40 people in Paris in 2023."]
_component_ids = iter(range(1_000_000))


def check_drop_cardinals(drop_cardinals: Callable[[Any], Any], nlp: Any) -> Verdict:
    """Exercise 02.3: a component that removes CARDINAL entities and returns the Doc.

    The checker registers the function under a fresh name, adds it after "ner" for the run and
    removes it again, so re-running an edited solution never collides in spaCy's registry.
    """
    from spacy.language import Language

    probe = nlp(_CARDINAL_SENTENCES[0])
    attempted, out = _attempt(drop_cardinals, probe)
    if not attempted:
        return Verdict(False)
    if out is not probe:
        return _report(False, "", "a component must return the Doc it was given (`return doc`)")
    name = f"nnlib_exercise_drop_cardinals_{next(_component_ids)}"
    Language.component(name, func=drop_cardinals)
    nlp.add_pipe(name, after="ner")
    try:
        for text in _CARDINAL_SENTENCES:
            with nlp.select_pipes(disable=[name]):
                want = [(e.text, e.label_) for e in nlp(text).ents if e.label_ != "CARDINAL"]
            got = [(e.text, e.label_) for e in nlp(text).ents]
            if got != want:
                return _report(False, "", f"in {text!r} the pipeline kept {got}, expected {want}")
    finally:
        nlp.remove_pipe(name)
    return _report(True, "Your function works as a pipeline component after the NER.", "")


_JA_SENTENCES = ["猫が静かに庭を歩いていた。", "東京で新しい辞書を買いました。", "明日は早く起きたい。"]
_CONTENT_POS = {"NOUN", "PROPN", "VERB", "ADJ"}


def check_content_lemmas(content_lemmas: Callable[[Any], list], nlp_ja: Any) -> Verdict:
    """Exercise 02.4: lemmas of the content words (NOUN, PROPN, VERB, ADJ) of a Japanese Doc."""
    for text in _JA_SENTENCES:
        doc = nlp_ja(text)
        attempted, got = _attempt(content_lemmas, doc)
        if not attempted:
            return Verdict(False)
        want = [t.lemma_ for t in doc if t.pos_ in _CONTENT_POS]
        if not isinstance(got, (list, tuple)):
            return _report(False, "", f"content_lemmas should return a list of strings, got "
                           f"{type(got).__name__}")
        if list(got) != want:
            return _report(False, "", f"for {text!r} got {got}, expected {len(want)} lemmas in "
                           "sentence order (token.lemma_ where token.pos_ is a content POS)")
    return _report(True, "GiNZA gives the dictionary form: 歩い -> 歩く, 早く -> 早い.", "")


_QUESTIONS = [
    "How do I choose the learning rate for mini-batch SGD?",
    "Which component of the pipeline finds named entities?",
    "Why does generation on my Mac fail without CUDA?",
    "What is a tokenizer?",
]


def check_predict_label(predict_label: Callable[[Any, str], str], textcat_nlp: Any) -> Verdict:
    """Exercise 02.5: ``predict_label(nlp, text)`` -> the label with the highest score."""
    for text in _QUESTIONS:
        attempted, got = _attempt(predict_label, textcat_nlp, text)
        if not attempted:
            return Verdict(False)
        cats = textcat_nlp(text).cats
        want = max(cats, key=cats.get)
        if got != want:
            return _report(False, "", f"for {text!r} got {got!r}, expected {want!r} "
                           "(doc.cats maps each label to a score: take the largest)")
    return _report(True, "doc.cats holds one score per label; the prediction is the argmax.", "")


# ---- 03 Loading Llama ----------------------------------------------------------------------
# References come from nnlib.llama (devices, checkpoint), so the notebook, the library and the
# checkers share one definition of each quantity. torch is imported inside each checker.

# params.json of published models (Llama 2 7B's has no n_kv_heads: it means n_kv_heads = n_heads).
_LLAMA2_7B = dict(dim=4096, n_layers=32, n_heads=32, vocab_size=32000, multiple_of=256,
                  ffn_dim_multiplier=None, norm_eps=1e-05)
_LLAMA3_8B = dict(dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, vocab_size=128256,
                  multiple_of=1024, ffn_dim_multiplier=1.3, norm_eps=1e-05, rope_theta=500000.0)
_LLAMA3_70B = dict(dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, vocab_size=128256,
                   multiple_of=4096, ffn_dim_multiplier=1.3, norm_eps=1e-05, rope_theta=500000.0)
_TINY_SHAPE = dict(dim=192, n_layers=6, n_heads=6, n_kv_heads=2, vocab_size=2048, multiple_of=32,
                   ffn_dim_multiplier=None)
_BYTES_TO_DTYPE = {4: "fp32", 2: "bf16", 1: "int8"}


def _kv_reference(params: dict, max_seq_len: int, max_batch_size: int, bytes_per_value: int) -> int:
    from nnlib.llama.devices import kv_cache_bytes

    return kv_cache_bytes(params["n_layers"], params["dim"], params["n_heads"], max_seq_len,
                          max_batch_size, n_kv_heads=params.get("n_kv_heads"),
                          dtype=_BYTES_TO_DTYPE[bytes_per_value])


def check_kv_cache_bytes(fn: Callable[..., Any]) -> Verdict:
    """Exercise 03.1: ``fn(params, max_seq_len, max_batch_size, bytes_per_value)`` -> bytes of the
    KV cache a Llama with this ``params.json`` allocates (keys and values, every layer)."""
    cases = [(_TINY_SHAPE, 256, 4, 4), (_LLAMA2_7B, 2048, 1, 2), (_LLAMA3_8B, 8192, 1, 2),
             (_LLAMA2_7B, 2048, 32, 2), (_LLAMA3_70B, 4096, 4, 2)]
    for params, seq, bsz, nbytes in cases:
        ran, got = _attempt(fn, dict(params), seq, bsz, nbytes)
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
        return _report(False, "", f"{where}; {hint}.")
    return _report(True, "2 x n_layers x max_batch_size x max_seq_len x n_kv_heads x head_dim x "
                   "bytes: Llama 3 8B caches 4x less per token than Llama 2 7B thanks to GQA.", "")


def check_llama_parameter_count(fn: Callable[..., Any]) -> Verdict:
    """Exercise 03.2: ``fn(params)`` -> parameters of a Llama with this ``params.json`` (embedding
    and output separate, as in Meta's checkpoints)."""
    from nnlib.llama.devices import count_parameters
    from nnlib.llama.model import ModelArgs, ffn_hidden_dim

    for params in (_TINY_SHAPE, _LLAMA2_7B, _LLAMA3_8B, _LLAMA3_70B):
        ran, got = _attempt(fn, dict(params))
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
        return _report(False, "", f"for dim={dim}, n_layers={layers} you said {got!r}, expected "
                       f"{want:,}; {hint}.")
    return _report(True, "Llama 2 7B has 6.74 billion parameters, Llama 3 8B 8.03 billion: the "
                   "'7B' and '8B' are these numbers, rounded.", "")


def _mp_axis(name: str, embedding_axis: int = 1) -> Any:
    """Meta's split axis for a weight: 0 (column-parallel), 1 (row-parallel), None (copied)."""
    from nnlib.llama.checkpoint import COLUMN_PARALLEL, ROW_PARALLEL

    kind = name.split(".")[-2]
    if "norm" in kind:
        return None
    if kind in COLUMN_PARALLEL:
        return 0
    if kind in ROW_PARALLEL:
        return 1
    return embedding_axis  # tok_embeddings: dim 1 in Llama 2's shards


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
            ran, got = _attempt(split, name, t.clone(), n)
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
                return _report(False, "", f"split({name!r}, tensor of shape {tuple(shape)}, {n}): {hint}.")
            ran, back = _attempt(merge, name, [w.clone() for w in want])
            if not ran:
                return Verdict(False)
            if not (isinstance(back, torch.Tensor) and back.shape == t.shape and torch.equal(back, t)):
                got_shape = tuple(back.shape) if isinstance(back, torch.Tensor) else type(back).__name__
                hint = ("take one copy of a norm weight" if axis is None else
                        f"concatenate on the same dim you split on (dim {axis})")
                return _report(False, "", f"merge({name!r}, {n} shards) gave {got_shape}, expected "
                               f"{tuple(t.shape)}; {hint}.")
    return _report(True, "Column-parallel weights join on dim 0, row-parallel on dim 1, norms are "
                   "copied: nnlib's merge_shards does exactly this for 13B (MP=2) and 70B (MP=8).", "")


def check_to_model_device(fn: Callable[..., Any]) -> Verdict:
    """Exercise 03.4: ``fn(batch, model)`` -> the batch (a dict, as a tokenizer returns it) with
    every tensor on the device of the model's parameters and everything else unchanged."""
    import torch

    for device in ("meta", "cpu"):  # meta: a second device that exists on every torch
        model = torch.nn.Linear(3, 2, device=device)
        batch = {"input_ids": torch.tensor([[1, 5, 9]]), "attention_mask": torch.ones(1, 3, dtype=torch.long),
                 "max_new_tokens": 32}
        ran, got = _attempt(fn, dict(batch), model)
        if not ran:
            return Verdict(False)
        if not isinstance(got, dict) or set(got) != set(batch):
            return _report(False, "", "return a dict with the same keys as the batch")
        for key, value in batch.items():
            if not isinstance(value, torch.Tensor):
                if got[key] != value:
                    return _report(False, "", f"{key!r} is not a tensor: leave it as it is")
                continue
            out = got[key]
            if not isinstance(out, torch.Tensor) or out.device.type != device:
                where = out.device if isinstance(out, torch.Tensor) else type(out).__name__
                return _report(False, "", f"{key!r} is on {where} but the model is on {device}: "
                               "next(model.parameters()).device is where the model lives "
                               "(Hugging Face models also have model.device); move every tensor there")
            if device == "cpu" and not torch.equal(out, value):
                return _report(False, "", f"{key!r} changed its values: only move it")
    return _report(True, "Every tensor the model reads must be where its weights are; this is "
                   "input_ids.to(model.device) for a whole batch.", "")


# ---- 04 Step-through generation ------------------------------------------------------------
# The checkers build their own cases with torch; the third one runs the learner's model and
# compares with its ``generate``. None of them changes the model's sampling generator.


def _top_k_reference(probs: Any, k: int) -> Any:
    import torch

    vals, idx = torch.topk(probs, k, dim=-1)
    out = torch.zeros_like(probs).scatter(-1, idx, vals)
    return out / out.sum(dim=-1, keepdim=True)


def check_top_k(top_k_probs: Callable[[Any, int], Any]) -> Verdict:
    """Exercise 04.1: ``top_k_probs(probs, k)`` keeps the ``k`` most likely tokens of each row of
    ``probs`` (B, V), zeroes the rest and renormalises each row to sum to 1."""
    import torch

    g = torch.Generator().manual_seed(41)
    cases = [(torch.softmax(torch.randn(3, 40, generator=g) * 2, -1), 5),
             (torch.softmax(torch.randn(2, 100, generator=g) * 3, -1), 1),
             (torch.softmax(torch.randn(1, 30, generator=g), -1), 30)]
    for probs, k in cases:
        attempted, got = _attempt(top_k_probs, probs.clone(), k)
        if not attempted:
            return Verdict(False)
        want = _top_k_reference(probs, k)
        try:
            got = torch.as_tensor(got, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            return _report(False, "", f"return a tensor of shape {tuple(probs.shape)}, got "
                           f"{type(got).__name__}")
        if got.shape != want.shape:
            return _report(False, "", f"for probs of shape {tuple(probs.shape)} and k={k} "
                           f"expected the same shape back, got {tuple(got.shape)}")
        n_nonzero = (got > 0).sum(dim=-1)
        if bool((n_nonzero != k).any()):
            return _report(False, "", f"with k={k} each row should keep exactly {k} tokens, "
                           f"yours keeps {n_nonzero.tolist()} (torch.topk gives values and ids)")
        kept_raw = torch.where(want > 0, probs, torch.zeros_like(probs))
        if torch.allclose(got, kept_raw, atol=1e-6) and k < probs.shape[-1]:
            return _report(False, "", "the right tokens, but the rows no longer sum to 1: "
                           "divide by the kept mass (renormalise)")
        if not torch.allclose(got, want, atol=1e-5):
            return _report(False, "", f"for k={k} some kept tokens are not the {k} most likely, "
                           "or the rows are scaled differently")
    return _report(True, "top-k always keeps k tokens, however sure or unsure the model is; "
                   "top-p adapts the count to the distribution.", "")


def check_zero_temperature_limit(limit: Callable[[Any], Any]) -> Verdict:
    """Exercise 04.2: ``limit(logits)`` (V,) -> the distribution softmax(logits / T) tends to as
    T -> 0 from above, including when several logits tie for the maximum."""
    import torch

    g = torch.Generator().manual_seed(42)
    cases = [torch.randn(12, generator=g), torch.tensor([1.0, 3.0, -2.0, 3.0, 0.5]),
             torch.full((4,), 0.7), torch.tensor([-5.0, -1.0, -3.0])]
    for logits in cases:
        attempted, got = _attempt(limit, logits.clone())
        if not attempted:
            return Verdict(False)
        is_max = logits == logits.max()
        want = is_max.float() / is_max.sum()
        try:
            got = torch.as_tensor(got, dtype=torch.float32).reshape(-1)
        except (TypeError, ValueError, RuntimeError):
            return _report(False, "", f"return a tensor of {len(logits)} probabilities, got "
                           f"{type(got).__name__}")
        if got.shape != want.shape:
            return _report(False, "", f"expected {len(logits)} probabilities, got {got.numel()}")
        if torch.allclose(got, torch.softmax(logits, -1), atol=1e-5) and not torch.allclose(got, want):
            return _report(False, "", "that is softmax(logits), the distribution at T = 1. "
                           "Divide by a smaller and smaller T: what happens to the gaps?")
        first = torch.zeros_like(want)
        first[int(torch.argmax(logits))] = 1.0
        if int(is_max.sum()) > 1 and torch.allclose(got, first):
            return _report(False, "", f"for {logits.tolist()} two or more logits tie for the "
                           "maximum; exp((z_i - z_max)/T) stays 1 for each of them, so no tie "
                           "wins (argmax picks the first one only by convention)")
        if not torch.allclose(got, want, atol=1e-5):
            return _report(False, "", f"for {logits.tolist()} expected {want.tolist()}")
    return _report(True, "as T -> 0 all mass goes to the maximum (shared equally by ties): "
                   "greedy decoding is the T = 0 end of sampling.", "")


def check_fresh_pass_logprobs(fresh_logprobs: Callable[[Any, list, list], Any], llama: Any) -> Verdict:
    """Exercise 04.3: ``fresh_logprobs(llama, prompt_tokens, completion)`` -> the log-probability
    of each completion token from ONE forward pass over prompt + completion (no cache). It must
    equal what ``llama.generate(..., logprobs=True)`` reports for the same greedy completion."""
    import torch

    checked = 0
    for text in ("ROMEO:", "To be, or not to be", "The king"):
        prompt = llama.tokenizer.encode(text, bos=True, eos=False)
        state = llama.generator.get_state()
        try:
            (completion,), (want,) = llama.generate([prompt], 12, temperature=0.0, logprobs=True)
        finally:
            llama.generator.set_state(state)
        if not completion:
            continue
        attempted, got = _attempt(fresh_logprobs, llama, list(prompt), list(completion))
        if not attempted:
            return Verdict(False)
        try:
            got = torch.as_tensor(got, dtype=torch.float32).reshape(-1).cpu()
        except (TypeError, ValueError, RuntimeError):
            return _report(False, "", f"return one number per completion token, got "
                           f"{type(got).__name__}")
        want_t = torch.tensor(want, dtype=torch.float32)
        if got.numel() != want_t.numel():
            return _report(False, "", f"{len(completion)} completion tokens but {got.numel()} "
                           "numbers: the logits at position i predict token i + 1, so take rows "
                           "len(prompt) - 1 to the second-to-last")
        if torch.allclose(got, torch.zeros_like(got)):
            return _report(False, "", "all zeros: that is the seed's ordering bug (the targets "
                           "were still pad_id). Use the completion tokens as targets")
        if bool((got > 0).any()):
            return _report(False, "", "a log-probability is never positive: use log_softmax, "
                           "not the raw logits")
        if not torch.allclose(got, want_t, atol=1e-3):
            return _report(False, "", f"for {text!r} got {[round(x, 3) for x in got.tolist()[:4]]}"
                           f"... expected {[round(x, 3) for x in want[:4]]}... (log_softmax at "
                           "temperature 1 of the row before each token)")
        checked += 1
    if not checked:
        return _report(False, "", "this model ended every test prompt at once (EOS), so there "
                       "was nothing to compare; try it on the tiny model (load_tiny())")
    return _report(True, "one pass over the whole sequence gives every token's log-probability: "
                   "the same numbers generate collects one step at a time.", "")
