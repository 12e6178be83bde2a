"""Notebook 05 beyond its solutions (tests/test_exercise_solutions.py runs those): what the loop
checker says about an off-by-one ``start_pos`` is true of the cache it runs in, and a correct loop
written without ``torch.inference_mode`` passes after the notebook's §4 emptied the cache inside
that mode, and a count of one token reads in the singular."""
from __future__ import annotations

import pytest
import torch

from nnlib.exercises.inside_a_step import LOOP_PROMPTS, check_generation_loop


@pytest.fixture(scope="module")
def llama():
    from nnlib.llama import load_tiny

    with torch.random.fork_rng(devices=[]):
        return load_tiny(max_seq_len=64, max_batch_size=1)


def _loop(llama, prompt_tokens, max_gen_len, too_far=0, seen=None):
    """A greedy cached loop without inference_mode; ``too_far`` shifts every decode call's
    start_pos; ``seen`` collects, before each decode call, whether the slot the call should have
    written already held a key in layer 0."""
    tokens, prev_pos = list(prompt_tokens), 0
    for _ in range(max_gen_len):
        start = prev_pos + (too_far if prev_pos else 0)
        if seen is not None and prev_pos:
            seen.append(bool(llama.model.layers[0].attention.cache_k[0, prev_pos].ne(0).any()))
        logits = llama.model.forward(torch.tensor([tokens[prev_pos:]], device=llama.device), start)
        prev_pos = len(tokens)
        tokens.append(int(logits[0, -1].argmax()))
    return tokens[len(prompt_tokens):]


def test_off_by_one_names_a_slot_an_earlier_call_wrote(llama, capsys):
    seen: list[bool] = []
    verdict = check_generation_loop(lambda m, p, n: _loop(m, p, n, too_far=1, seen=seen), llama)
    out = capsys.readouterr().out
    assert not verdict
    slot = len(llama.tokenizer.encode(LOOP_PROMPTS[0], bos=True, eos=False))
    assert (f"passed start_pos={slot + 1}, but the next free position is {slot}" in out
            and f"attends to cache slot {slot}, which your loop never wrote itself: it reads what an "
            "earlier call left there" in out), out
    # The message is true: the learner's loop never wrote that slot, yet it held a key, the one the
    # checker's own generate run wrote just before.
    assert seen[0]


def test_loop_without_inference_mode_passes_after_a_reset_inside_it(llama, capsys):
    with torch.inference_mode():  # as notebook 05 §4 does before the exercise
        llama.model.reset_buffers()
        llama.model.forward(torch.tensor([[1, 2, 3]], device=llama.device), 0)
    assert check_generation_loop(_loop, llama)
    assert capsys.readouterr().out.startswith("Right!")


def test_a_prefill_of_one_token_is_named_in_the_singular(llama, capsys):
    def one_token_per_call(llama, prompt_tokens, max_gen_len):
        """Right tokens, but the prompt goes in one token per call: no prefill."""
        tokens = list(prompt_tokens)
        with torch.inference_mode():
            for pos in range(len(tokens) + max_gen_len - 1):
                logits = llama.model.forward(torch.tensor([tokens[pos:pos + 1]], device=llama.device),
                                             pos)
                if pos >= len(prompt_tokens) - 1:
                    tokens.append(int(logits[0, -1].argmax()))
        return tokens[len(prompt_tokens):]

    assert not check_generation_loop(one_token_per_call, llama)
    out = capsys.readouterr().out
    n_prompt = len(llama.tokenizer.encode(LOOP_PROMPTS[0], bos=True, eos=False))
    assert (f"the tokens are right, but the prefill call fed 1 token; feed the whole prompt "
            f"({n_prompt} tokens) in the first call") in out, out
