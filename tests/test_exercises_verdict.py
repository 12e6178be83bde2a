"""nnlib.exercises.verdict: what every checker shares."""
from __future__ import annotations

import numpy as np
import torch

from nnlib.exercises.step_through_generation import check_top_k
from nnlib.exercises.verdict import Verdict, as_tensor


def test_as_tensor_takes_array_likes_and_refuses_the_rest():
    assert torch.equal(as_tensor([1, 2]), torch.tensor([1, 2]))
    assert as_tensor(np.ones(3), torch.float32).dtype == torch.float32
    assert as_tensor("not numbers") is None
    assert as_tensor({"a": 1}) is None
    assert as_tensor([[1, 2], [3]]) is None  # ragged


def test_a_checker_answers_a_non_tensor_with_the_shape_it_wanted(capsys):
    verdict = check_top_k(lambda probs, k: "the top k")
    assert isinstance(verdict, Verdict) and not verdict
    out = capsys.readouterr().out
    assert out.startswith("Not yet:") and "return a tensor of shape" in out and "str" in out
