"""Notebook 03b's exercise beyond its solution (tests/test_exercise_solutions.py runs that): the
checker's stand-in model does what transformers does on one GPU, so an answer that passes on a
real one-GPU Llama passes the checker, and one that fails there gets the hint."""
from __future__ import annotations

import torch

from nnlib.exercises import loading_llama as ex


def _solve(fixed_forward, capsys):
    verdict = ex.check_forward_on_model_device(lambda: 4, fixed_forward)
    return verdict, capsys.readouterr().out


def test_moving_only_the_ids_passes_as_on_a_real_gpu(capsys):
    """transformers moves a 2-D attention_mask itself, so ids moved and the mask left on the CPU
    work on a real one-GPU Llama; the checker accepts that, and still recommends the whole batch."""
    verdict, out = _solve(lambda model, inputs: model(input_ids=inputs.input_ids.to(model.device),
                                                       attention_mask=inputs.attention_mask).logits, capsys)
    assert verdict and out.startswith("Right!")
    assert "You left the attention_mask on the cpu: that passes" in out
    assert "Moving the whole batch is still the habit" in out


def test_the_whole_batch_passes_without_the_mask_note(capsys):
    verdict, out = _solve(lambda model, inputs: model(**inputs.to(model.device)).logits, capsys)
    assert verdict and "attention_mask" not in out


def test_ids_left_on_the_cpu_get_the_hint(capsys):
    verdict, out = _solve(lambda model, inputs: model(input_ids=inputs.input_ids,
                                                       attention_mask=inputs.attention_mask.to(model.device)).logits,
                          capsys)
    assert not verdict and "the ids are still on the cpu" in out


def test_the_stand_in_moves_the_mask_as_the_installed_transformers_does():
    """The checker's assumption, checked against the installed transformers: its mask code moves a
    2-D attention_mask to the embeddings' device (masking_utils._preprocess_mask_arguments)."""
    from transformers import AutoModelForCausalLM, LlamaConfig, masking_utils

    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=64)
    config = AutoModelForCausalLM.from_config(cfg).config  # the attention implementation resolved
    embeds = torch.zeros(1, 3, 32, device="meta")
    cpu_mask = torch.ones(1, 3, dtype=torch.long)
    out = masking_utils._preprocess_mask_arguments(config, embeds, cpu_mask, None, None, 0)
    assert out[1].device == embeds.device
    model = ex._OneDeviceModel("meta")
    model(input_ids=torch.ones(1, 3, dtype=torch.long, device="meta"), attention_mask=cpu_mask)  # no error
