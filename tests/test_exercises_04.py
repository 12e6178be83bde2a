"""Notebook 04's checkers: the hidden solutions pass, the usual mistakes get their hint, and a
learner's untouched stub is "not attempted yet" rather than an error."""
from __future__ import annotations

import pytest
import torch

from nnlib.exercises import step_through_generation as ex


def stub(*_args):
    raise NotImplementedError


@pytest.fixture(scope="module")
def llama():
    from nnlib.llama import load_tiny

    return load_tiny(max_seq_len=64, max_batch_size=1)


def top_k_solution(probs, k):
    values, ids = torch.topk(probs, k, dim=-1)
    kept = torch.zeros_like(probs).scatter(-1, ids, values)
    return kept / kept.sum(dim=-1, keepdim=True)


def limit_solution(logits):
    is_max = logits == logits.max()
    return is_max.float() / is_max.sum()


def fresh_solution(llama, prompt_tokens, completion):
    tokens = torch.tensor([list(prompt_tokens) + list(completion)], device=llama.device)
    with torch.inference_mode():
        logits = llama.model.forward(tokens, 0, use_cache=False)[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    rows = logp[len(prompt_tokens) - 1: -1]
    return rows.gather(-1, torch.tensor(completion, device=rows.device)[:, None])[:, 0].tolist()


def test_top_k_checker(capsys):
    assert ex.check_top_k(top_k_solution)
    unnormalised = lambda p, k: torch.zeros_like(p).scatter(-1, torch.topk(p, k).indices,  # noqa: E731
                                                            torch.topk(p, k).values)
    assert not ex.check_top_k(unnormalised)
    assert "renormalise" in capsys.readouterr().out
    assert not ex.check_top_k(lambda p, k: top_k_solution(p, max(1, k - 1)))
    assert "exactly" in capsys.readouterr().out
    assert not ex.check_top_k(lambda p, k: "not a tensor")
    assert not ex.check_top_k(stub)
    assert "Not attempted yet" in capsys.readouterr().out


def test_zero_temperature_checker(capsys):
    assert ex.check_zero_temperature_limit(limit_solution)
    assert not ex.check_zero_temperature_limit(lambda z: torch.softmax(z, -1))
    assert "T = 1" in capsys.readouterr().out
    one_hot = lambda z: torch.nn.functional.one_hot(z.argmax(), z.numel()).float()  # noqa: E731
    assert not ex.check_zero_temperature_limit(one_hot)
    assert "tie" in capsys.readouterr().out
    assert not ex.check_zero_temperature_limit(stub)
    assert "Not attempted yet" in capsys.readouterr().out


def test_fresh_pass_logprobs_checker(llama, capsys):
    state = llama.generator.get_state()
    assert ex.check_fresh_pass_logprobs(fresh_solution, llama)
    assert "Right!" in capsys.readouterr().out
    assert torch.equal(llama.generator.get_state(), state), "the checker must not use up draws"
    assert not ex.check_fresh_pass_logprobs(lambda l, p, c: [0.0] * len(c), llama)
    assert "ordering bug" in capsys.readouterr().out
    assert not ex.check_fresh_pass_logprobs(lambda l, p, c: fresh_solution(l, p, c)[1:], llama)
    assert "predict token i + 1" in capsys.readouterr().out
    assert not ex.check_fresh_pass_logprobs(stub, llama)
    assert "Not attempted yet" in capsys.readouterr().out
