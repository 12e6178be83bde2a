"""Speed on the real model (issue 13 §7): SmolLM2-135M-Instruct on the CPU in float32, nnlib and
transformers side by side in one run, with the memory-bandwidth limit measured in the same run.

Prints: ``load_smol()`` time (goal < 10 s) and transformers' GGUF load; greedy tokens/s for
nnlib's ``generate`` and transformers' ``generate`` on the same dequantized weights, same prompt
and length (goal: nnlib never slower); a read bandwidth measured here (a sum over a buffer much
larger than the caches) and the limit it sets, bandwidth / bytes of weights read per token
(goal: nnlib >= 75 % of it), and where one decode step's time goes (its matrix products
alone, packed as the model makes them and one matrix at a time; the rest; and a plain read of
every weight, the ceiling for any step made of torch calls); the ``GenerationExplorer``'s step
(model call + redraw) and slider latency (goal < 100 ms). The machine is usually shared: the load
average is printed, and the ratios, measured side by side, are what to compare. Not a test:
timings vary with the machine and its load.

    .venv/bin/python benchmarks/real_model.py [--tokens 64] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llama import best_of, hf_greedy  # noqa: E402  (benchmarks/llama.py)

from nnlib.llama import load_smol  # noqa: E402
from nnlib.llama.devices import decode_bytes_per_token, read_bandwidth  # noqa: E402
from nnlib.llama.linear import SAME_INPUT, Linear, packed_columns, project  # noqa: E402
from nnlib.llama.models import smol_path  # noqa: E402

PROMPT = "Q: What is the largest animal?\nA:"  # the seed's prompt


def product_groups(model: torch.nn.Module) -> list[list[torch.nn.Linear]]:
    """The weight matrices one decode step multiplies, grouped as the model reads them: the
    layers ``linear.SAME_INPUT`` groups (wq, wk, wv; w1, w3) in one product, every other
    ``nn.Linear`` (wo, w2, output) on its own."""
    groups = [[m.get_submodule(name) for name in names]
              for m in model.modules() for names in SAME_INPUT.get(type(m).__name__, ())]
    grouped = {id(linear) for group in groups for linear in group}
    return groups + [[m] for m in model.modules()
                     if isinstance(m, torch.nn.Linear) and id(m) not in grouped]


def decode_breakdown(model: torch.nn.Module, prompt_len: int, n: int = 15) -> dict[str, float]:
    """Median seconds, interleaved, of: one cached decode step (``forward`` on one token); the
    same step's matrix products alone, as the model makes them (``project`` on each group,
    the other layers called, nothing else); the same products one layer at a time, each weight
    stored on its own (as before ``store_columnwise`` packed them); the same with plain
    ``nn.Linear`` layers on row-major weights (torch's matrix-vector product); and reading every weight
    once with ``torch.sum``, one call per matrix or packed group: the fastest any step can go
    that reads the weights one torch call at a time, on this machine, now."""
    groups = product_groups(model)
    rows = {g[0].in_features: torch.randn(1, 1, g[0].in_features) for g in groups}
    # Each weight in a layer of its own, as the model held them before store_columnwise packed
    # them: column-major (nnlib's Linear) and row-major (a plain nn.Linear). Called as layers,
    # so every variant pays the same per-call costs the model pays.
    separate, plain_layers = [], []
    for linear in (linear for g in groups for linear in g):
        mine, theirs = Linear(linear.in_features, linear.out_features), torch.nn.Linear(
            linear.in_features, linear.out_features, bias=False)
        mine.weight = torch.nn.Parameter(linear.weight.detach().T.contiguous().T)
        theirs.weight = torch.nn.Parameter(linear.weight.detach().contiguous())
        separate.append(mine)
        plain_layers.append(theirs)
    buffers = [packed_columns(g) if len(g) > 1 else g[0].weight.detach() for g in groups]
    if any(b is None for b in buffers):
        raise RuntimeError("The model's same_input layers are not packed: build it with Llama.build "
                           "on the CPU in float32.")
    token = torch.tensor([[42]])

    def step() -> None:
        model(token, prompt_len)

    def products() -> None:  # as Attention, FeedForward and Transformer call them
        for g in groups:
            x = rows[g[0].in_features]
            if len(g) > 1:
                project(x, *g)
            else:
                g[0](x)

    def plain() -> None:
        for layer in plain_layers:
            layer(rows[layer.in_features])

    def one_at_a_time() -> None:
        for layer in separate:
            layer(rows[layer.in_features])

    def read_once() -> None:
        for b in buffers:
            b.sum()

    runs = {"step": step, "products": products, "one at a time": one_at_a_time, "plain": plain,
            "read once": read_once}
    out: dict[str, list[float]] = {name: [] for name in runs}
    with torch.no_grad():
        for _ in range(n):  # interleaved, so a burst of others' work slows all alike
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                out[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in out.items()}


def explorer_latency(llama, prompt: str, n: int = 9) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of the explorer's step, split into its model call (the stepper
    commits the token and runs the model on it) and the redraw after it, and of a slider or
    selector update (no model call: recompute from cached logits + redraw). When the text ends
    (EOS) the explorer is reset, outside the timings, so every step runs the model. On a machine
    others load, the CPU time of this process is what it would take on idle cores (summed over
    torch's threads, so for the model call it overstates the wall time of an idle machine)."""
    from nnlib.widgets import GenerationExplorer

    ex = GenerationExplorer(llama, prompt, temperature=0.8, seed=0)

    def model_call(i: int) -> None:
        if ex.finished:
            ex.reset()
        ex.stepper.step_with(ex.settings())  # what ex.step() does before it redraws

    changes = {
        "step: model call": model_call,
        "step: redraw": lambda i: ex._update(),  # the rest of ex.step()
        "temperature slider": lambda i: setattr(ex.temperature, "value", 0.4 + 0.1 * (i % 10)),
        "sampler selector": lambda i: setattr(ex.sampler, "value",
                                              ("top-k", "min-p", "greedy", "top-p")[i % 4]),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in changes}
    for i in range(n):
        for name, change in changes.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            change(i)
            times[name].append((time.perf_counter() - start, time.process_time() - start_cpu))
    medians = {name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
               for name, ts in times.items()}
    whole = [(a[0] + b[0], a[1] + b[1]) for a, b in zip(times["step: model call"],
                                                          times["step: redraw"])]
    medians["step (model call + redraw)"] = (statistics.median(t[0] for t in whole),
                                             statistics.median(t[1] for t in whole))
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64, help="greedy tokens to generate")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best taken)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    print(f"SmolLM2-135M-Instruct, CPU float32, {args.threads} torch threads; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (others' work shares the machine)")

    t_first, llama = best_of(lambda: load_smol(device="cpu", dtype=torch.float32, max_seq_len=256,
                                               max_batch_size=1), 1)
    t_load, llama = best_of(lambda: load_smol(device="cpu", dtype=torch.float32, max_seq_len=256,
                                              max_batch_size=1), 2)
    path = smol_path()
    t_hf, hf = best_of(lambda: AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, torch_dtype=torch.float32).eval(), 1)
    print(f"load: nnlib load_smol() {t_load:.2f} s (first call {t_first:.2f} s; goal < 10 s), "
          f"transformers from_pretrained(gguf_file=...) {t_hf:.2f} s")

    ids = llama.tokenizer.encode(PROMPT, bos=True, eos=False)
    n = args.tokens
    llama.generate([ids], 8, temperature=0)  # warm-up: first calls pay one-off costs
    hf_greedy(hf, ids, 8)
    # Interleaved, best of each: a burst of others' work then slows both alike.
    t_nn, t_tf = float("inf"), float("inf")
    for _ in range(args.repeat):
        t, out_nn = best_of(lambda: llama.generate([ids], n, temperature=0)[0][0], 1)
        t_nn = min(t_nn, t)
        t, out_tf = best_of(lambda: hf_greedy(hf, ids, n), 1)
        t_tf = min(t_tf, t)
    made = max(1, len(out_nn))  # nnlib stops at EOS; transformers was told not to
    r_nn, r_tf = made / t_nn, n / t_tf
    k = min(len(out_nn), len(out_tf))
    print(f"greedy after {PROMPT!r}, {n} tokens (prefill included), best of {args.repeat} "
          "interleaved runs:")
    print(f"  nnlib generate          {r_nn:7.1f} tokens/s  ({made} tokens)")
    print(f"  transformers generate   {r_tf:7.1f} tokens/s  ({n} tokens)")
    print(f"  nnlib / transformers    {r_nn / r_tf:7.2f}x  (goal >= 1); same tokens: "
          f"{out_nn[:k] == out_tf[:k]} (first {k})")

    bw = read_bandwidth("cpu", megabytes=1024)
    per_token = decode_bytes_per_token(llama.model)
    limit = bw / per_token
    print(f"memory: read bandwidth {bw / 1e9:.1f} GB/s (torch.sum over 1 GiB); weights read per "
          f"token {per_token / 1e6:.0f} MB; limit {limit:.1f} tokens/s")
    print(f"  nnlib reaches {r_nn / limit:.0%} of the limit (goal >= 75%), transformers "
          f"{r_tf / limit:.0%}")

    parts = decode_breakdown(llama.model, len(ids))
    step, products = parts["step"], parts["products"]

    def rate(seconds: float) -> str:
        return f"{per_token / seconds / 1e9:.1f} GB/s, {per_token / seconds / bw:.0%} of the bandwidth"

    print(f"one decode step: {step * 1000:.1f} ms (medians of interleaved runs):")
    print(f"  its matrix products alone, as the model makes them (wq|wk|wv and w1|w3 packed, one "
          f"product each): {products * 1000:.1f} ms ({rate(products)})")
    print(f"  the same products one layer at a time, each weight stored on its own: "
          f"{parts['one at a time'] * 1000:.1f} ms ({rate(parts['one at a time'])}); packed is "
          f"{parts['one at a time'] / products:.2f}x as fast")
    print(f"  the same products with plain nn.Linear layers on row-major weights: "
          f"{parts['plain'] * 1000:.1f} ms ({rate(parts['plain'])}); nnlib's are "
          f"{parts['plain'] / products:.2f}x as fast")
    print(f"  a step of nothing but nnlib's products would reach {1 / products / limit:.0%} of the "
          "limit")
    print(f"  the rest of the step (norms, rotary, attention, the cache, per-call costs): "
          f"{(step - products) * 1000:.1f} ms")
    print(f"  reading every weight once with torch.sum, nothing else: {parts['read once'] * 1000:.1f}"
          f" ms ({rate(parts['read once'])}): no step that reads the matrices one torch call at a "
          f"time gets past {1 / parts['read once'] / limit:.0%} of the limit here")
    print(f"  nnlib's step takes {step / parts['read once']:.2f}x that read; products alone "
          f"{products / parts['read once']:.2f}x")
    for name, (wall, cpu) in explorer_latency(llama, PROMPT).items():
        print(f"explorer {name}: {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU (medians; "
              "goal < 100 ms)")


if __name__ == "__main__":
    main()
