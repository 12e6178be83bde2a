"""nnlib.llama.generation: Meta's generate() semantics, seeding by torch.manual_seed, the
step-through API, the GenerationStepper, the July-2023 logprobs order, and the shipped tiny
model's pinned greedy text. Every number is checked against a fresh forward pass."""
from __future__ import annotations

import pytest
import torch

from conftest import TINY_DIR, random_meta_dir, rope_kwargs
from nnlib.llama import GenerationStep, GenerationStepper, Llama, load_tiny
from nnlib.llama.generation import logprobs_scored_before_write
from nnlib.llama.sampling import Sampler, nucleus


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """A small random Llama with the real 2048-piece tokenizer; logits spread out (scale 5) so
    greedy choices are far from ties."""
    path = random_meta_dir(tmp_path_factory.mktemp("gen") / "m", logit_scale=5.0)
    return Llama.build(path, max_seq_len=48, max_batch_size=4, device="cpu", seed=1)


@pytest.fixture(scope="module")
def prompts(llama):
    enc = llama.tokenizer.encode
    return [enc("ROMEO:\n", True, False), enc("But soft, what light through yonder", True, False),
            enc("O", True, False)]


def full_logprobs(llama, ids: list[int]) -> torch.Tensor:
    """log_softmax of a fresh full pass (no cache): row j scores token j + 1."""
    with torch.no_grad():
        logits = llama.model.forward(torch.tensor([ids]), 0, use_cache=False)[0]
    return torch.log_softmax(logits.float(), dim=-1)


class StopAt:
    """The model's tokenizer with a chosen id playing EOS (random models rarely say EOS)."""

    def __init__(self, tokenizer, eos_id: int):
        self._tok, self.eos_id, self.stop_tokens = tokenizer, eos_id, [eos_id]

    def __getattr__(self, name):
        return getattr(self._tok, name)


# ---- generate: Meta's semantics --------------------------------------------------------------


def test_batched_greedy_equals_one_by_one(llama, prompts):
    batch, _ = llama.generate(prompts, max_gen_len=12, temperature=0)
    one = [llama.generate([p], max_gen_len=12, temperature=0)[0][0] for p in prompts]
    assert batch == one
    assert all(len(t) == 12 for t in batch)  # no EOS from this model: max_gen_len each


def test_kv_cache_and_no_cache_generate_the_same(llama, prompts):
    with_cache, lp1 = llama.generate(prompts, 10, temperature=0, logprobs=True)
    without, lp2 = llama.generate(prompts, 10, temperature=0, logprobs=True, use_cache=False)
    assert with_cache == without
    torch.testing.assert_close(torch.tensor(lp1), torch.tensor(lp2), atol=1e-4, rtol=0)


def test_logprobs_are_log_softmax_of_a_fresh_full_pass(llama, prompts):
    tokens, logprobs = llama.generate(prompts, 8, temperature=0.8, top_p=0.9, logprobs=True)
    assert [len(t) for t in tokens] == [8] * len(prompts)  # no EOS from this model
    for prompt, toks, lps in zip(prompts, tokens, logprobs, strict=True):
        assert len(lps) == len(toks)
        full = full_logprobs(llama, prompt + toks)
        want = [float(full[len(prompt) + j - 1, t]) for j, t in enumerate(toks)]
        torch.testing.assert_close(torch.tensor(lps), torch.tensor(want), atol=1e-4, rtol=0)
        assert all(x < 0 for x in lps)  # not the seed's zeros


def test_echo_returns_prompt_and_completion_with_a_logprob_each(llama, prompts):
    plain, _ = llama.generate(prompts, 6, temperature=0)
    echoed, logprobs = llama.generate(prompts, 6, temperature=0, logprobs=True, echo=True)
    assert [len(g) for g in plain] == [6] * len(prompts)
    for prompt, gen, toks, lps in zip(prompts, plain, echoed, logprobs, strict=True):
        assert toks == prompt + gen and len(lps) == len(toks)
        assert lps[0] == 0.0  # nothing predicts the first token (BOS)
        full = full_logprobs(llama, toks)
        want = [0.0] + [float(full[j - 1, t]) for j, t in enumerate(toks) if j > 0]
        torch.testing.assert_close(torch.tensor(lps), torch.tensor(want), atol=1e-4, rtol=0)


def test_echo_with_nothing_to_generate_scores_the_prompt(llama, prompts):
    toks, lps = llama.generate([prompts[1]], 0, logprobs=True, echo=True)
    full = full_logprobs(llama, prompts[1])
    want = [0.0] + [float(full[j - 1, t]) for j, t in enumerate(prompts[1]) if j > 0]
    assert toks == [prompts[1]]
    torch.testing.assert_close(torch.tensor(lps[0]), torch.tensor(want), atol=1e-4, rtol=0)
    assert llama.generate([prompts[1]], 0) == ([[]], None)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_scoring_before_the_write_gives_zeros(llama, prompts, temperature):
    """Meta's July-2023 order: same tokens as generate, every generated token's logprob 0.0."""
    torch.manual_seed(2)
    right, right_lp = llama.generate(prompts, 5, temperature=temperature, logprobs=True, echo=True)
    torch.manual_seed(2)
    early_toks, early_lp = logprobs_scored_before_write(llama, prompts, 5, temperature=temperature,
                                                       echo=True)
    assert early_toks == right and len(right) == len(prompts)
    for prompt, good, bad in zip(prompts, right_lp, early_lp, strict=True):
        assert all(x != 0.0 for x in good[len(prompt):])       # generate scores them
        assert bad[len(prompt):] == [0.0] * 5                  # every generated token: 0
        assert bad[:len(prompt)] == pytest.approx(good[:len(prompt)], abs=1e-5)  # prompt: right


def test_generation_stops_per_row_at_eos_which_is_not_returned(llama, prompts):
    greedy, _ = llama.generate(prompts, 12, temperature=0)
    eos = greedy[0][3]
    assert eos not in greedy[0][:3]
    stopping = Llama(llama.model, StopAt(llama.tokenizer, eos), llama.device)
    got, lps = stopping.generate(prompts, 12, temperature=0, logprobs=True)
    for row, full in zip(got, greedy):
        want = full[:full.index(eos)] if eos in full else full  # the other rows go on
        assert row == want
    assert got[0] == greedy[0][:3]
    assert [len(x) for x in lps] == [len(x) for x in got]


def test_generation_ends_early_when_every_row_has_said_eos(llama, prompts, monkeypatch):
    greedy, _ = llama.generate(prompts[:1], 12, temperature=0)
    stopping = Llama(llama.model, StopAt(llama.tokenizer, greedy[0][2]), llama.device)
    calls = []
    real = llama.model.forward
    monkeypatch.setattr(llama.model, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert stopping.generate(prompts[:1], 12, temperature=0)[0] == [greedy[0][:2]]
    assert len(calls) == 3  # prefill + two single-token steps, not 12


def test_a_prompt_may_contain_eos(llama, prompts):
    eos = llama.tokenizer.eos_id
    prompt = prompts[0] + [eos] + prompts[2][1:]
    toks, _ = llama.generate([prompt], 4, temperature=0)
    assert len(toks[0]) == 4  # the prompt's EOS does not end generation
    echoed, _ = llama.generate([prompt], 4, temperature=0, echo=True)
    assert echoed[0] == prompt + toks[0]


def test_torch_manual_seed_reproduces_samples(llama, prompts):
    """As in Meta's code and transformers: generate draws from torch's default generator."""
    torch.manual_seed(0)
    a, _ = llama.generate(prompts, 10, temperature=1.5, top_p=1.0)
    torch.manual_seed(0)
    b, _ = llama.generate(prompts, 10, temperature=1.5, top_p=1.0)
    torch.manual_seed(4)
    c, _ = llama.generate(prompts, 10, temperature=1.5, top_p=1.0)
    assert a == b and a != c
    torch.manual_seed(0)
    text_a = llama.text_completion(["ROMEO:"], temperature=1.0, max_gen_len=8)
    torch.manual_seed(0)
    assert llama.text_completion(["ROMEO:"], temperature=1.0, max_gen_len=8) == text_a


def test_build_seed_seeds_torch(tmp_path):
    """``Llama.build(seed=s)`` calls ``torch.manual_seed(s)``, as Meta's build does."""
    path = random_meta_dir(tmp_path / "m", logit_scale=5.0)
    Llama.build(path, max_seq_len=16, max_batch_size=1, device="cpu", seed=123)
    after_build = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after_build, torch.rand(3))


def test_text_completion_returns_metas_dicts(llama):
    out = llama.text_completion(["ROMEO:", "JULIET:"], temperature=0, max_gen_len=6)
    assert [set(d) for d in out] == [{"generation"}] * 2
    tokens, _ = llama.generate([llama.tokenizer.encode("ROMEO:", True, False)], 6, temperature=0)
    assert out[0]["generation"] == llama.tokenizer.decode(tokens[0])
    with_lp = llama.text_completion(["ROMEO:"], temperature=0, max_gen_len=6, logprobs=True)[0]
    assert set(with_lp) == {"generation", "tokens", "logprobs"}
    assert len(with_lp["tokens"]) == len(with_lp["logprobs"]) == 6
    assert with_lp["tokens"] == [llama.tokenizer.decode([t]) for t in tokens[0]]
    with pytest.raises(ValueError, match="list of strings"):
        llama.text_completion("ROMEO:")


@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=-0.1), "temperature must be a number >= 0"),
    (dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
    (dict(top_p=1.5), r"top_p must be in \(0, 1\]"),
    (dict(max_gen_len=-1), "max_gen_len must be an int >= 0"),
    (dict(prompt_tokens=[]), "give at least one prompt"),
    (dict(prompt_tokens=[[1, 5], []]), "Prompt 1 is empty"),
    (dict(prompt_tokens=[list(range(3, 52))]), "longer than max_seq_len=48"),
    (dict(prompt_tokens=[[1]] * 5), "5 prompts but max_batch_size=4"),
    (dict(prompt_tokens=[[1, 99999]]), "outside 0..2047"),
    (dict(prompt_tokens="ROMEO:"), "list of prompts"),
])
def test_bad_requests_say_what_and_why(llama, kwargs, message):
    call = {"prompt_tokens": [[1, 50, 60]], "max_gen_len": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        llama.generate(**call)


# ---- the step-through ------------------------------------------------------------------------


def test_steps_at_temperature_zero_are_greedy_generate(llama, prompts):
    steps = list(llama.steps(prompts[1], 10, temperature=0))
    greedy, _ = llama.generate([prompts[1]], 10, temperature=0)
    assert [s.token for s in steps] == greedy[0]
    assert all(isinstance(s, GenerationStep) for s in steps)
    assert [s.position for s in steps] == list(range(len(prompts[1]), len(prompts[1]) + 10))


def test_steps_draw_what_generate_draws_with_the_same_seed(llama, prompts):
    torch.manual_seed(11)
    sampled, _ = llama.generate([prompts[0]], 10, temperature=0.9, top_p=0.8)
    steps = list(llama.steps(prompts[0], 10, temperature=0.9, top_p=0.8, seed=11))
    assert [s.token for s in steps] == sampled[0]
    # text pieces add up to the decoded completion
    assert "".join(s.piece for s in steps) == llama.tokenizer.decode(sampled[0])


def test_each_step_agrees_with_a_fresh_forward_pass(llama, prompts):
    T, p = 0.7, 0.6
    ids = list(prompts[1])
    steps = list(llama.steps(prompts[1], 6, temperature=T, top_p=p, seed=5, n_candidates=5))
    assert len(steps) == 6  # no EOS from this model: every step is checked below
    for s in steps:
        with torch.no_grad():
            logits = llama.model.forward(torch.tensor([ids]), 0, use_cache=False)[0, -1]
        torch.testing.assert_close(s.logits, logits, atol=1e-4, rtol=0)
        torch.testing.assert_close(s.probs, torch.softmax(s.logits / T, -1))
        assert s.logprob == pytest.approx(float(torch.log_softmax(s.logits, -1)[s.token]), abs=1e-6)
        _, order, keep = nucleus(s.probs[None], p)
        assert s.kept.tolist() == order[0][keep[0]].tolist()
        assert s.token in s.kept.tolist()
        assert s.cutoff == pytest.approx(float(s.probs[s.kept].min()))
        assert [t for t, _, _ in s.top] == torch.topk(s.probs, 5).indices.tolist()
        assert s.eos is (s.token == llama.tokenizer.eos_id)
        assert (s.temperature, s.top_p, s.position) == (T, p, len(ids))
        ids.append(s.token)


def test_steps_stop_after_eos(llama, prompts):
    greedy, _ = llama.generate([prompts[2]], 8, temperature=0)
    stopping = Llama(llama.model, StopAt(llama.tokenizer, greedy[0][1]), llama.device)
    steps = list(stopping.steps(prompts[2], 8, temperature=0))
    assert [s.eos for s in steps] == [False, True]  # the EOS step is yielded, then it stops


def test_steps_reject_bad_requests(llama):
    with pytest.raises(ValueError, match="temperature"):
        next(llama.steps("ROMEO:", 3, temperature=-1))
    with pytest.raises(ValueError, match="top_p"):
        next(llama.steps("ROMEO:", 3, top_p=0))


# ---- GenerationStepper: one generation in progress --------------------------------------------


def hand_inverse_cdf(logits: torch.Tensor, temperature: float, top_p: float, u: float) -> int:
    """Meta's nucleus (sort descending, keep while the mass before a token is <= top_p),
    renormalised, then the token whose stretch of the cumulative bar holds u: by hand."""
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    sorted_probs, order = torch.sort(probs, descending=True)
    mass_before = torch.cumsum(sorted_probs, 0) - sorted_probs
    kept = sorted_probs[mass_before <= top_p]
    cum = torch.cumsum(kept / kept.sum(), 0)
    return int(order[min(int((cum <= u).sum()), len(kept) - 1)])


def step_to_the_end(stepper: GenerationStepper, sampler: Sampler) -> list[GenerationStep]:
    steps = []
    while (s := stepper.step_with(sampler)) is not None:
        steps.append(s)
    return steps


def test_stepping_to_the_end_is_generate_greedy_and_an_inverse_cdf_draw_sampled(llama, prompts):
    """Greedy, the stepper writes what Meta's ``generate`` writes. Sampled, it draws by inverse
    CDF: step i uses the seeded generator's i-th uniform number and takes the nucleus token whose
    stretch holds it, on logits of a fresh full pass (worked out by hand below)."""
    greedy = GenerationStepper(llama, prompts[0], max_gen_len=10, seed=21)
    steps = step_to_the_end(greedy, Sampler(temperature=0.0))
    (want,), _ = llama.generate([prompts[0]], 10, temperature=0.0)
    assert greedy.tokens == want and greedy.finished and len(steps) == len(want)
    assert greedy.step_with(Sampler(temperature=0.0)) is None  # finished: nothing more

    stepper = GenerationStepper(llama, prompts[0], max_gen_len=10, seed=21)
    steps = step_to_the_end(stepper, Sampler(temperature=1.0, top_p=0.9))
    assert stepper.finished and len(steps) == 10
    us = torch.rand(10, generator=torch.Generator().manual_seed(21), dtype=torch.float64)
    ids = list(prompts[0])
    for s, u in zip(steps, us.tolist()):
        assert s.u == u
        logits = full_logprobs(llama, ids)[-1]  # log_softmax: the same softmax at any T
        assert s.token == hand_inverse_cdf(logits, 1.0, 0.9, u)
        ids.append(s.token)
    assert stepper.ids == ids


def test_back_then_step_repeats_the_draw_without_the_model(llama, prompts, monkeypatch):
    sampler = Sampler(temperature=1.2, top_p=1.0)
    stepper = GenerationStepper(llama, prompts[1], max_gen_len=8, seed=3)
    for _ in range(4):
        stepper.step_with(sampler)
    calls = []
    real = llama.model.forward
    monkeypatch.setattr(llama.model, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    before, prev_pos = stepper.ids, stepper.history[-1].prev_pos
    last = stepper.back()
    assert calls == [] and stepper.ids == before[:-1] and stepper.prev_pos == prev_pos
    preview = stepper.decide(sampler)
    assert calls == [] and preview.token == last.token  # a preview uses up nothing
    assert stepper.next_u() == last.u
    again = stepper.step_with(sampler)
    assert again.token == last.token and again.u == last.u and stepper.ids == before
    assert len(calls) == 1  # only the new token is run
    while stepper.back() is not None:
        pass
    assert stepper.ids == list(prompts[1]) and stepper.history == []


def test_the_stepper_asks_the_model_what_its_cache_holds(llama, prompts):
    """Another generate in between overwrites the cache: the stepper re-runs from where the cache
    stops agreeing and still gives the undisturbed tokens (Meta's greedy ``generate``)."""
    greedy = Sampler(temperature=0.0)
    (want,), _ = llama.generate([prompts[1]], 6, temperature=0.0)
    stepper = GenerationStepper(llama, prompts[1], max_gen_len=6, seed=0)
    for _ in range(3):
        stepper.step_with(greedy)
    assert stepper.prev_pos == len(prompts[1]) + 2  # one new token per call
    llama.generate([prompts[0]], 4, temperature=0.0)  # clobbers cache row 0
    stepper.step_with(greedy)  # its logits were computed before; the next ones need the model
    common = next(i for i, (a, b) in enumerate(zip(prompts[0], prompts[1])) if a != b)
    assert stepper.prev_pos == common  # re-ran from where the two sequences part
    step_to_the_end(stepper, greedy)
    assert stepper.tokens == want


def test_the_stepper_refuses_what_it_cannot_do(llama):
    with pytest.raises(ValueError, match="empty"):
        GenerationStepper(llama, [])
    with pytest.raises(ValueError, match="max_seq_len"):
        GenerationStepper(llama, [1] * 48)
    with pytest.raises(ValueError, match="max_gen_len"):
        GenerationStepper(llama, [1, 2], max_gen_len=-1)
    with pytest.raises(ValueError, match="max_gen_len"):
        GenerationStepper(llama, [1, 2], max_gen_len=2.5)
    # generate's rule: 0 tokens to add is allowed, and then there is nothing to step
    nothing = GenerationStepper(llama, [1, 2], max_gen_len=0)
    assert nothing.finished and nothing.next_logits is None
    assert nothing.step_with(Sampler(temperature=0.0)) is None
    assert llama.generate([[1, 2]], 0, temperature=0.0)[0] == [[]]


# ---- the shipped tiny model ------------------------------------------------------------------

TINY_WEIGHTS = TINY_DIR / "consolidated.00.pth"

# The greedy continuation of "ROMEO:" (40 tokens) that data/tiny-llama/README.md and notebooks 03
# and 05 show. The test below has transformers write it, from the shipped files alone.
ROMEO_GREEDY = ("\nI am not well, my lord.\n\nROMEO:\nI am not well, my lord.\n\n"
                "ROMEO:\nI have been as well as I am,")


def transformers_from_meta_folder(folder):
    """transformers' LlamaForCausalLM holding a Meta folder's weights, converted here by index
    (nothing from nnlib): Meta's names to Hugging Face's, and wq/wk rows from Meta's interleaved
    rotary order (row 2i + half of a head) to Hugging Face's halves (row half * hd/2 + i)."""
    import json

    from transformers import LlamaConfig, LlamaForCausalLM

    params = json.loads((folder / "params.json").read_text())
    sd = torch.load(folder / "consolidated.00.pth", map_location="cpu", weights_only=True)
    dim, heads, layers = params["dim"], params["n_heads"], params["n_layers"]
    kv_heads, hd = params.get("n_kv_heads") or heads, params["dim"] // params["n_heads"]

    def to_hf_rows(w, n):
        idx = torch.empty(n * hd, dtype=torch.long)
        for h in range(n):
            for half in range(2):
                for i in range(hd // 2):
                    idx[h * hd + half * (hd // 2) + i] = h * hd + 2 * i + half
        return w[idx]

    hf = {"model.embed_tokens.weight": sd["tok_embeddings.weight"], "model.norm.weight": sd["norm.weight"],
          "lm_head.weight": sd["output.weight"]}
    for n in range(layers):
        m, p = f"layers.{n}.", f"model.layers.{n}."
        hf |= {p + "self_attn.q_proj.weight": to_hf_rows(sd[m + "attention.wq.weight"], heads),
               p + "self_attn.k_proj.weight": to_hf_rows(sd[m + "attention.wk.weight"], kv_heads),
               p + "self_attn.v_proj.weight": sd[m + "attention.wv.weight"],
               p + "self_attn.o_proj.weight": sd[m + "attention.wo.weight"],
               p + "mlp.gate_proj.weight": sd[m + "feed_forward.w1.weight"],
               p + "mlp.down_proj.weight": sd[m + "feed_forward.w2.weight"],
               p + "mlp.up_proj.weight": sd[m + "feed_forward.w3.weight"],
               p + "input_layernorm.weight": sd[m + "attention_norm.weight"],
               p + "post_attention_layernorm.weight": sd[m + "ffn_norm.weight"]}
    config = LlamaConfig(vocab_size=params["vocab_size"], hidden_size=dim,
                         intermediate_size=sd["layers.0.feed_forward.w1.weight"].shape[0],
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         rms_norm_eps=params["norm_eps"], max_position_embeddings=512,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                         **rope_kwargs({"rope_type": "default", "rope_theta": params["rope_theta"]}))
    model = LlamaForCausalLM(config).eval()
    model.load_state_dict({k: v.float() for k, v in hf.items()}, strict=True)
    return model


@pytest.mark.skipif(not TINY_WEIGHTS.exists(), reason="data/tiny-llama not trained yet")
def test_tiny_model_greedy_romeo_is_pinned():
    """The text the README pins is transformers' greedy continuation of the shipped weights
    (SentencePiece itself encoding and decoding), and nnlib's is the same text."""
    from sentencepiece import SentencePieceProcessor

    sp = SentencePieceProcessor(model_file=str(TINY_DIR / "tokenizer.model"))
    prompt = [sp.bos_id()] + sp.encode("ROMEO:")
    reference = transformers_from_meta_folder(TINY_DIR)
    with torch.no_grad():
        out = reference.generate(input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt)),
                                 max_new_tokens=40, do_sample=False, pad_token_id=sp.eos_id())
    new = out[0, len(prompt):].tolist()
    assert len(new) == 40 and sp.eos_id() not in new
    assert sp.decode(new) == ROMEO_GREEDY
    tiny = load_tiny(device="cpu")
    assert tiny.tokenizer.encode("ROMEO:", bos=True, eos=False) == prompt
    out = tiny.text_completion(["ROMEO:"], temperature=0, max_gen_len=40)[0]["generation"]
    assert out == ROMEO_GREEDY
    # speaker names and line breaks: a play, not a stream of words
    assert out.count("\n") >= 4 and "ROMEO:\n" in out


@pytest.mark.skipif(not TINY_WEIGHTS.exists(), reason="data/tiny-llama not trained yet")
def test_tiny_model_batched_greedy_equals_one_by_one():
    tiny = load_tiny(device="cpu")
    prompts = [tiny.tokenizer.encode(x, bos=True, eos=False) for x in
               ["ROMEO:", "JULIET:\nO Romeo, Romeo,", "KING HENRY:\nOnce more unto the breach"]]
    batch, _ = tiny.generate(prompts, 24, temperature=0)
    assert batch == [tiny.generate([p], 24, temperature=0)[0][0] for p in prompts]


def test_a_new_stepper_does_not_depend_on_what_ran_before_it():
    """A stepper (the explorer's) starts by running its whole prompt from position 0, as
    ``generate`` does, so its logits are the same whatever ran on the model before. The reference
    is the same stepper on the untouched model. Half precision on SmolLM2 is where it matters:
    re-feeding only the prompt's last token over a cache a batch ``generate`` filled (the stepper's
    old shortcut) moved these logits by about 0.3 in bfloat16 and could flip a near tie."""
    from nnlib.llama import GenerationStepper, load_smol

    llama = load_smol(dtype="bfloat16", max_batch_size=2)
    prompt = "Q: What is the largest animal?\nA:"
    untouched = GenerationStepper(llama, prompt).next_logits.clone()
    llama.text_completion([prompt + " The blue whale", "Hi"], max_gen_len=8, temperature=0)
    after_a_batch = GenerationStepper(llama, prompt)
    assert after_a_batch.prev_pos == 0
    assert torch.equal(after_a_batch.next_logits, untouched)
    after_a_batch.reset()  # reset too, after another batch
    llama.text_completion([prompt + " The blue whale", "Hi"], max_gen_len=8, temperature=0)
    after_a_batch.reset()
    assert torch.equal(after_a_batch.next_logits, untouched)


def test_the_empty_prompt_message_gives_advice_that_works_for_every_tokenizer():
    """``encode("", bos=True)`` is ``[BOS]`` for the tiny SentencePiece model but ``[]`` for SmolLM2
    (its GGUF says add_bos_token False), so the message must not promise that bos=True helps; its
    advice, a start token such as ``[tokenizer.bos_id]``, is a valid request for both."""
    from nnlib.llama import load_smol
    from nnlib.llama.generation import check_request

    tiny, smol = load_tiny(device="cpu"), load_smol()
    assert tiny.tokenizer.encode("", bos=True, eos=False) == [tiny.tokenizer.bos_id]
    assert smol.tokenizer.encode("", bos=True, eos=False) == []
    with pytest.raises(ValueError) as err:
        check_request(smol.model.params, [[]], 4, 0.0, 0.9)
    msg = str(err.value)
    assert "Prompt 0 is empty" in msg and "[tokenizer.bos_id]" in msg
    assert "encode with bos=True" not in msg
    for llama in (tiny, smol):  # the advice, a start token, is a valid request for both
        assert llama.tokenizer.bos_id >= 0
        check_request(llama.model.params, [[llama.tokenizer.bos_id]], 4, 0.0, 0.9)
