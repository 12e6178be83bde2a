"""nnlib.llama.trace: each context records what the model did and changes no number."""
from __future__ import annotations

import pytest
import torch

from nnlib.llama import load_tiny
from nnlib.llama.trace import record_calls, rope_angle_from, trace_calls


@pytest.fixture(scope="module")
def llama():
    return load_tiny(max_seq_len=64, max_batch_size=3)


@pytest.fixture(scope="module")
def batch(llama):
    return [llama.tokenizer.encode(x, bos=True, eos=False) for x in ("ROMEO:", "JULIET:\nO Romeo", "To be")]


def test_trace_calls_sees_prefill_then_one_column_per_step(llama, batch):
    with trace_calls(llama) as trace:
        out, _ = llama.generate(batch, 5, temperature=0.0)
    shortest, longest = min(map(len, batch)), max(map(len, batch))
    total_len = longest + 5
    assert trace.calls[0].start_pos == 0 and trace.calls[0].shape == (3, shortest)
    assert all(c.shape == (3, 1) for c in trace.calls[1:])
    assert [c.start_pos for c in trace.calls] == [0, *range(shortest, total_len - 1)]
    assert trace.calls[-1].end_pos == total_len - 1
    assert trace.positions_read == total_len - 1
    assert trace.grid is not None and tuple(trace.grid.shape) == (3, total_len)
    for row, prompt, new in zip(trace.grid.tolist(), batch, out):
        assert row[: len(prompt)] == prompt and row[len(prompt): len(prompt) + len(new)] == new


def test_trace_calls_changes_nothing_and_restores(llama, batch):
    plain, _ = llama.generate(batch, 4, temperature=0.0)
    with trace_calls(llama) as trace:
        traced, _ = llama.generate(batch, 4, temperature=0.0)
    assert traced == plain
    assert "forward" not in vars(llama.model) and "_cut" not in vars(llama)
    with pytest.raises(RuntimeError), trace_calls(llama):
        raise RuntimeError("inside")
    assert "forward" not in vars(llama.model) and "_cut" not in vars(llama)
    assert trace.calls  # the list stays readable after the block


def test_trace_calls_on_a_bare_transformer_and_without_cache(llama, batch):
    with trace_calls(llama.model) as trace:
        llama.generate(batch[:1], 3, temperature=0.0, use_cache=False)
    assert trace.grid is None
    assert all(c.start_pos == 0 and not c.use_cache for c in trace.calls)
    assert [c.positions for c in trace.calls] == [len(batch[0]) + k for k in range(3)]
    with pytest.raises(TypeError, match="Llama or a Transformer"):
        with trace_calls(object()):
            pass


def test_record_calls_sees_inputs_and_output(llama, batch):
    attention = llama.model.layers[0].attention
    pre_hooks = dict(attention._forward_pre_hooks)  # nnlib's own, if any
    with record_calls(attention) as calls, torch.inference_mode():
        llama.model.forward(torch.tensor([batch[0]]), 0)
    assert len(calls) == 1 and calls[0].args[0].shape[1] == len(batch[0])
    assert calls[0].output.shape == calls[0].args[0].shape
    assert not attention._forward_hooks and dict(attention._forward_pre_hooks) == pre_hooks



def test_record_calls_records_a_call_that_raises():
    """Notebook 03b §2 reads calls[0] after a generate that may raise (a transformers that does not
    move the ids, on a GPU): the inputs are recorded before the module runs, so they are there."""

    class Picky(torch.nn.Module):
        def forward(self, x, *, fail=False):
            if fail:
                raise RuntimeError("Expected all tensors to be on the same device")
            return x + 1

    module = Picky()
    with record_calls(module) as calls:
        with pytest.raises(RuntimeError, match="same device"):
            module(torch.zeros(2), fail=True)
        module(torch.ones(3))
    assert len(calls) == 2
    assert calls[0].args[0].shape == (2,) and calls[0].kwargs == {"fail": True} and calls[0].output is None
    assert torch.equal(calls[1].output, torch.full((3,), 2.0))  # the next call still gets its own output
    assert not module._forward_hooks and not module._forward_pre_hooks

def test_rope_angle_from_moves_one_angle_and_restores(llama, batch):
    model, ids = llama.model, batch[1]
    cos = model.rope_cos.clone()
    P = len(ids) - 1

    def last_logits(angle_pos, start):
        with torch.inference_mode():
            model.forward(torch.tensor([ids[:-1]]), 0)
            with rope_angle_from(model, angle_pos, at=start):
                return model.forward(torch.tensor([ids[-1:]]), start)[0, -1]

    same = last_logits(P, P)
    with torch.inference_mode():
        want = model.forward(torch.tensor([ids]), 0, use_cache=False)[0, -1]
    assert torch.allclose(same, want, atol=1e-4)
    assert not torch.allclose(last_logits(P + 1, P), want, atol=1e-3)
    assert torch.equal(model.rope_cos, cos)
    with pytest.raises(ValueError, match="angle_pos"):
        with rope_angle_from(llama, 10_000, at=0):
            pass
