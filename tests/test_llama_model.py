"""nnlib.llama.model and loading: parity with transformers' LlamaForCausalLM in three layouts
(Hugging Face, Meta, Meta with 2 model-parallel shards), and the KV cache against a full pass."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

from conftest import (
    SMALL_PARAMS,
    hf_logits,
    hf_to_meta_in_test,
    make_hf_model,
    save_hf_layout,
    save_meta_layout,
)
from nnlib.llama import Llama, ModelArgs, Transformer
from nnlib.llama.linear import Linear, packed_columns, project, store_columnwise, thread_slices
from nnlib.llama.model import ffn_hidden_dim
from nnlib.llama.stepper import CacheRecord

SEQ = 40


@pytest.fixture(scope="module", params=[False, True], ids=["rope", "scaled-rope"])
def hf_model(request):
    return make_hf_model(scaled_rope=request.param)


@pytest.fixture(scope="module")
def tokens():
    g = torch.Generator().manual_seed(0)
    return torch.randint(3, 2048, (2, SEQ), generator=g)


def build(path, **kw):
    return Llama.build(path, max_seq_len=64, max_batch_size=2, device="cpu", **kw)


@pytest.mark.parametrize("layout", ["hf", "meta", "meta-mp2", "meta-mp2-vocab-split"])
def test_logits_match_transformers(hf_model, tokens, tmp_path, layout):
    want = hf_logits(hf_model, tokens)
    if layout == "hf":
        path = save_hf_layout(hf_model, tmp_path / "hf")
    else:
        sd, params = hf_to_meta_in_test(hf_model)
        n = 1 if layout == "meta" else 2
        path = save_meta_layout(sd, params, tmp_path / layout, n_shards=n,
                                embed_axis=0 if layout.endswith("vocab-split") else 1)
    llama = build(path)
    assert llama.device == torch.device("cpu")
    assert next(llama.model.parameters()).dtype == torch.float32
    got = llama.model.forward(tokens, 0)
    assert got.shape == (2, SEQ, 2048) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_kv_cache_prefill_then_one_at_a_time_equals_full_pass(hf_model, tokens, tmp_path):
    llama = build(save_hf_layout(hf_model, tmp_path / "hf"))
    full = llama.model.forward(tokens, 0).clone()
    prefill = 17
    steps = [llama.model.forward(tokens[:, :prefill], 0)]
    for pos in range(prefill, SEQ):
        steps.append(llama.model.forward(tokens[:, pos:pos + 1], pos))
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)
    # and the no-cache path (training / baseline) is the same function
    torch.testing.assert_close(llama.model.forward(tokens, 0, use_cache=False), full, atol=1e-5, rtol=0)


def test_meta_parameter_names_and_shapes():
    args = ModelArgs(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=100, multiple_of=32,
                     max_seq_len=16, max_batch_size=3)
    model = Transformer(args)
    names = set(model.state_dict())
    for n in ["tok_embeddings.weight", "norm.weight", "output.weight",
              "layers.1.attention.wq.weight", "layers.1.attention.wk.weight", "layers.1.attention.wv.weight",
              "layers.1.attention.wo.weight", "layers.1.feed_forward.w1.weight",
              "layers.1.feed_forward.w2.weight", "layers.1.feed_forward.w3.weight",
              "layers.1.attention_norm.weight", "layers.1.ffn_norm.weight"]:
        assert n in names
    assert not any("cache" in n or "rope" in n for n in names)  # buffers are not weights
    assert model.layers[0].attention.wk.weight.shape == (2 * 16, 64)
    assert model.layers[0].attention.cache_k.shape == (3, 16, 2, 16)
    assert ffn_hidden_dim(args) == 192  # int(2 * 256 / 3) = 170, rounded up to 32


def test_training_mode_has_gradients_and_no_cache_writes():
    args = ModelArgs(dim=32, n_layers=1, n_heads=2, vocab_size=50, multiple_of=16, max_seq_len=8,
                     max_batch_size=1)
    model = Transformer(args)
    x = torch.randint(0, 50, (4, 8))  # batch 4 > max_batch_size: fine without the cache
    loss = model(x, 0, use_cache=False).logsumexp(-1).mean()
    loss.backward()
    assert model.output.weight.grad is not None
    assert model.layers[0].attention.cache_k.abs().sum() == 0


@pytest.mark.parametrize("kw, message", [
    (dict(dim=30, n_heads=4), "divisible by n_heads"),
    (dict(n_heads=4, n_kv_heads=3), "multiple of n_kv_heads"),
    (dict(max_seq_len=0), "at least 1"),
])
def test_model_args_errors(kw, message):
    base = dict(dim=32, n_layers=1, n_heads=4, vocab_size=10)
    with pytest.raises(ValueError, match=message):
        ModelArgs(**{**base, **kw})


def test_forward_errors():
    args = ModelArgs(dim=32, n_layers=1, n_heads=2, vocab_size=50, multiple_of=16, max_seq_len=8,
                     max_batch_size=1)
    model = Transformer(args)
    with pytest.raises(ValueError, match="max_seq_len=8"):
        model(torch.zeros(1, 9, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="max_batch_size=1"):
        model(torch.zeros(2, 3, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="vocab_size is not set"):
        Transformer(ModelArgs(dim=32, n_layers=1, n_heads=2))


def test_params_json_rope_scaling_factor_is_read():
    from nnlib.llama import ModelArgs

    base = {"dim": 64, "n_layers": 1, "n_heads": 4, "use_scaled_rope": True, "rope_theta": 5e5}
    assert ModelArgs.from_dict({**base, "rope_scaling_factor": 32}).rope_scale_factor == 32
    # Meta's 3.1 default:
    assert ModelArgs.from_dict({**base, "rope_scaling_factor": None}).rope_scale_factor == 8.0


def test_the_cache_records_the_ids_it_holds_per_row():
    """``CacheRecord.held`` follows what each call wrote: a prefill, then one token, then another
    call over a shorter or different prefix that makes the later positions stale."""
    torch.manual_seed(0)
    model = Transformer(ModelArgs(**SMALL_PARAMS, max_seq_len=16, max_batch_size=2)).eval()
    record = CacheRecord(model)
    a, b = [1, 5, 9, 4, 7], [1, 5, 8, 3]
    assert record.held(a) == 0
    model.forward(torch.tensor([a[:4], b]), 0)
    assert record.held(a) == 4 and record.held(b, row=1) == 4
    model.forward(torch.tensor([a[4:]]), 4)  # row 0 only
    assert record.held(a) == 5 and record.held(b, row=1) == 4
    model.forward(torch.tensor([b[:3]]), 0)  # another sequence overwrites row 0 from position 0
    assert record.held(a) == 2  # 1, 5 agree; position 2 and later do not
    assert record.held(b) == 3  # position 3 was computed after the old prefix
    model.forward(torch.tensor([a]), 0, use_cache=False)  # the no-cache path writes nothing
    assert record.held(b) == 3
    model.reset_buffers()  # a new, empty cache holds nothing
    assert record.held(b) == 0


def test_a_cached_prefix_gives_the_logits_of_a_full_pass():
    """What ``CacheRecord.held`` promises: from that position on, a cached call is exact."""
    torch.manual_seed(1)
    model = Transformer(ModelArgs(**SMALL_PARAMS, max_seq_len=16, max_batch_size=1)).eval()
    record = CacheRecord(model)
    ids = [1, 17, 300, 42, 99, 7]
    model.forward(torch.tensor([ids[:4]]), 0)
    model.forward(torch.tensor([[5, 6]]), 0)  # clobbers positions 0-1
    held = record.held(ids)
    assert held == 0
    model.forward(torch.tensor([ids[:4]]), 0)
    held = record.held(ids)
    assert held == 4
    cached = model.forward(torch.tensor([ids[held:]]), held)[0]
    full = model.forward(torch.tensor([ids]), 0, use_cache=False)[0, held:]
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-4)


# ---- model.Linear's CPU decode path (column-major weights, the sum split over threads) --------

@settings(max_examples=40, deadline=None)
@given(n_in=st.sampled_from([6, 12, 30, 64]), n_out=st.integers(1, 40), rows=st.integers(1, 6),
       threads=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_linear_decode_path_equals_a_float64_matmul(n_in, n_out, rows, threads, seed):
    """Any row count (the split path takes <= 4), any thread count (slices must divide n_in):
    the same numbers as x @ W^T computed in float64, within float32 rounding."""
    g = torch.Generator().manual_seed(seed)
    layer = Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(n_out, n_in, generator=g))
    store_columnwise(layer)
    assert layer.weight.T.is_contiguous() and layer.weight.shape == (n_out, n_in)
    x = torch.randn(1, rows, n_in, generator=g)
    want = x.double() @ layer.weight.double().T
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        got = layer(x)
    finally:
        torch.set_num_threads(before)
    assert got.shape == (1, rows, n_out) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, atol=1e-5 * n_in ** 0.5, rtol=1e-5)


def test_thread_slices_divide_the_input_width():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        assert [thread_slices(n) for n in (576, 1536, 6, 9, 7)] == [4, 4, 3, 3, 1]
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def two_threads(monkeypatch):
    """Two torch threads (the suite runs with one, where Linear takes plain F.linear), and a log
    of the batched products the split path makes, (input slices' shape, output width), so a test
    knows it ran and on which matrices."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    calls = []
    bmm = torch.bmm
    monkeypatch.setattr(torch, "bmm", lambda a, b: calls.append((tuple(a.shape), b.shape[-1])) or bmm(a, b))
    yield calls
    torch.set_num_threads(before)


def test_linear_decode_path_passes_gradients_like_autograd_through_a_matmul(two_threads):
    g = torch.Generator().manual_seed(1)
    layer = Linear(8, 5)
    store_columnwise(layer)
    x = torch.randn(1, 2, 8, generator=g, requires_grad=True)
    w = layer.weight.detach().clone().requires_grad_(True)
    (layer(x) ** 2).sum().backward()
    assert two_threads == [((2, 2, 4), 5)], "the split path (2 slices of 4) must have run"
    x2 = x.detach().clone().requires_grad_(True)
    ((x2 @ w.T) ** 2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(layer.weight.grad, w.grad)


def test_decoding_on_two_threads_matches_transformers(hf_model, tokens, tmp_path, two_threads):
    """Token by token with the cache, on two threads (Linear's split path, on weights Llama.build
    stored column-major): the logits of transformers' full pass."""
    llama = build(save_hf_layout(hf_model, tmp_path / "hf"))
    want = hf_logits(hf_model, tokens)
    steps = [llama.model.forward(tokens[:, :1], 0)]
    for pos in range(1, SEQ):
        steps.append(llama.model.forward(tokens[:, pos:pos + 1], pos))
    torch.testing.assert_close(torch.cat(steps, dim=1), want, atol=1e-4, rtol=0)
    # Each step: per layer wq|wk|wv in one product, wo, w1|w3 in one product, w2; then output.
    args = llama.model.params
    q, kv, hidden = args.dim, args.n_kv_heads * args.head_dim, ffn_hidden_dim(args)
    per_step = [q + 2 * kv, args.dim, 2 * hidden, args.dim] * args.n_layers + [args.vocab_size]
    assert [width for _, width in two_threads] == per_step * SEQ, "every decode product split"


GROUPS = {"SameInput": (("a", "b", "c"),)}


class SameInput(torch.nn.Module):
    """Layers that read the same input, a group of ``GROUPS`` as ``linear.SAME_INPUT`` lists
    Attention's and FeedForward's."""

    def __init__(self, n_in: int, outs: list[int], g: torch.Generator):
        super().__init__()
        for name, n_out in zip("abc", outs):
            layer = Linear(n_in, n_out)
            with torch.no_grad():
                layer.weight.copy_(torch.randn(n_out, n_in, generator=g))
            setattr(self, name, layer)

    def layers(self) -> list[Linear]:
        return [self.a, self.b, self.c]


@settings(max_examples=40, deadline=None)
@given(n_in=st.sampled_from([6, 12, 30]), outs=st.lists(st.integers(1, 20), min_size=3, max_size=3),
       rows=st.integers(1, 6), threads=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_project_on_packed_weights_equals_each_product_in_float64(n_in, outs, rows, threads, seed):
    """store_columnwise packs the three side by side; project reads them in one product and
    cuts the output: each piece is x @ W_i^T (float64 reference), at any row and thread count."""
    g = torch.Generator().manual_seed(seed)
    module = SameInput(n_in, outs, g)
    before_values = [layer.weight.detach().clone() for layer in module.layers()]
    store_columnwise(module, GROUPS)
    assert packed_columns(module.layers()) is not None, "the three weights share one buffer"
    for layer, value in zip(module.layers(), before_values):
        torch.testing.assert_close(layer.weight, value, atol=0, rtol=0)
    x = torch.randn(n_in, rows, 2, generator=g).permute(2, 1, 0)  # (2, rows, in), not contiguous
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        with torch.no_grad():
            got = project(x, *module.layers())
    finally:
        torch.set_num_threads(before)
    for piece, layer in zip(got, module.layers(), strict=True):
        want = x.double() @ layer.weight.double().T
        assert piece.shape == (2, rows, layer.out_features)
        torch.testing.assert_close(piece.double(), want, atol=1e-5 * n_in ** 0.5, rtol=1e-5)


def test_project_with_gradients_gives_each_weight_its_own_gradient(two_threads):
    """With gradients wanted, project makes one product per layer (through a packed product the
    first weight would get its gradient and the others none): gradients equal plain matmuls'."""
    g = torch.Generator().manual_seed(3)
    module = SameInput(8, [4, 2, 3], g)
    store_columnwise(module, GROUPS)
    refs = [layer.weight.detach().clone().requires_grad_(True) for layer in module.layers()]
    x = torch.randn(1, 1, 8, generator=g)
    sum(((y * (i + 1)) ** 2).sum() for i, y in enumerate(project(x, *module.layers()))).backward()
    sum(((x @ w.T * (i + 1)) ** 2).sum() for i, w in enumerate(refs)).backward()
    assert [width for _, width in two_threads] == [4, 2, 3], "one product per layer"
    for layer, ref in zip(module.layers(), refs):
        torch.testing.assert_close(layer.weight.grad, ref.grad)


def test_project_reads_packed_weights_in_one_product_when_none_wants_a_gradient(two_threads):
    """Grad mode on but frozen weights (inference outside no_grad): still one product."""
    g = torch.Generator().manual_seed(6)
    module = SameInput(8, [4, 2, 3], g)
    store_columnwise(module, GROUPS)
    module.requires_grad_(False)
    x = torch.randn(1, 1, 8, generator=g)
    got = project(x, *module.layers())
    assert [width for _, width in two_threads] == [9], "one product over the packed buffer"
    for piece, layer in zip(got, module.layers(), strict=True):
        torch.testing.assert_close(piece, x @ layer.weight.T)


def test_loading_weights_into_a_packed_model_keeps_it_packed():
    """load_state_dict copies into the packed views: the new values, still one buffer."""
    g = torch.Generator().manual_seed(5)
    module = SameInput(6, [2, 3, 4], g)
    store_columnwise(module, GROUPS)
    new = {name: torch.randn(t.shape, generator=g) for name, t in module.state_dict().items()}
    module.load_state_dict(new)
    assert packed_columns(module.layers()) is not None
    x = torch.randn(1, 1, 6, generator=g)
    with torch.no_grad():
        for piece, name in zip(project(x, *module.layers()), "abc", strict=True):
            torch.testing.assert_close(piece, x @ new[f"{name}.weight"].T)


def test_project_after_moving_to_another_dtype_multiplies_each_layer():
    """``.to`` gives each weight its own tensor: project notices and multiplies them one by one."""
    g = torch.Generator().manual_seed(4)
    module = SameInput(6, [3, 3, 2], g)
    store_columnwise(module, GROUPS)
    module.to(torch.float64)
    assert packed_columns(module.layers()) is None
    x = torch.randn(1, 1, 6, generator=g, dtype=torch.float64)
    with torch.no_grad():
        for piece, layer in zip(project(x, *module.layers()), module.layers(), strict=True):
            torch.testing.assert_close(piece, x @ layer.weight.T, atol=0, rtol=0)


def test_store_columnwise_keeps_values_names_and_the_tied_table():
    torch.manual_seed(0)
    args = ModelArgs(**SMALL_PARAMS, max_seq_len=16, max_batch_size=1)
    model = Transformer(args)
    model.output.weight = model.tok_embeddings.weight  # tied, as SmolLM2's
    before = {k: v.clone() for k, v in model.state_dict().items()}
    store_columnwise(model)
    after = model.state_dict()
    assert list(after) == list(before)
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, atol=0, rtol=0)
    assert model.output.weight is model.tok_embeddings.weight and model.output.weight.T.is_contiguous()
    for layer in model.layers:
        attn, ffn = layer.attention, layer.feed_forward
        assert packed_columns([attn.wq, attn.wk, attn.wv]) is not None
        assert packed_columns([ffn.w1, ffn.w3]) is not None
        assert attn.wo.weight.T.is_contiguous() and ffn.w2.weight.T.is_contiguous()


def test_build_stores_linear_weights_columnwise_only_for_cpu_float32(hf_model, tmp_path):
    """The layout Linear's decode path needs; logits parity with transformers in this layout is
    test_logits_match_transformers above (it builds on the CPU in float32)."""
    folder = save_hf_layout(hf_model, tmp_path / "hf")
    fp32 = build(folder).model
    assert fp32.layers[0].feed_forward.w2.weight.T.is_contiguous()
    assert fp32.output.weight.T.is_contiguous()
    bf16 = build(folder, dtype=torch.bfloat16).model
    assert bf16.layers[0].feed_forward.w2.weight.is_contiguous()


def test_empty_model_has_meta_parameters_real_rope_tables_and_draws_nothing():
    """``loading.empty_model``: the network's shape with no memory for its weights and no random
    init (which on "meta" would import sympy, a second and 36 MiB); rope tables as a CPU-built
    model has them. Run in a fresh interpreter, since another test may have imported sympy."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from nnlib.llama.loading import empty_model\n"
        "from nnlib.llama.model import ModelArgs, Transformer\n"
        "args = ModelArgs(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=100, max_seq_len=16)\n"
        "m = empty_model(args)\n"
        "assert all(p.is_meta for p in m.parameters())\n"
        "assert 'sympy' not in sys.modules, 'random init ran on meta'\n"
        "ref = Transformer(args)\n"
        "assert not m.rope_cos.is_meta and torch.equal(m.rope_cos, ref.rope_cos)\n"
        "assert torch.equal(m.rope_sin, ref.rope_sin)\n"
        "assert ref.tok_embeddings.weight.std() > 0.5  # outside empty_model, layers init as usual\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_cache_reset_under_inference_mode_still_takes_ordinary_forwards():
    """Notebook 05 empties the cache inside ``torch.inference_mode()``; a learner's loop then runs
    under ``no_grad`` or nothing. torch refuses in-place writes to inference tensors outside that
    mode, so ``reset_buffers`` must make ordinary ones."""
    from nnlib.llama import load_tiny

    llama = load_tiny(device="cpu", max_seq_len=32, max_batch_size=1)
    with torch.inference_mode():
        llama.model.reset_buffers()
    assert not llama.model.layers[0].attention.cache_k.is_inference()
    tokens = torch.tensor([llama.tokenizer.encode("ROMEO:", bos=True, eos=False)])
    with torch.no_grad():
        first = llama.model(tokens, 0)
    llama.model(first[:, -1:].argmax(-1), tokens.shape[1])  # a decode step, no mode at all
