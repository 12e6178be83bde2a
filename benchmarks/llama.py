"""nnlib.llama against itself and against transformers, side by side in one run, on the shipped
tiny Llama (data/tiny-llama): load time, and greedy tokens/s with and without the KV cache.

transformers runs ``LlamaForCausalLM`` on the same weights (``save_hf`` export, float32, CPU),
loaded with ``from_pretrained`` and driven by its own ``generate`` (greedy, KV cache on).
Goals: load well under a second; the cache several times faster than recomputing the prefix;
nnlib not slower than transformers. Not a test: timings vary with the machine and its load.

    .venv/bin/python benchmarks/llama.py [--tokens 128] [--ckpt data/tiny-llama]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nnlib.llama import Llama, save_hf  # noqa: E402


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The shortest of ``repeat`` runs (the least disturbed by other work) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def load_both(ckpt: Path, export_dir: Path, repeat: int, max_seq_len: int):
    """(nnlib Llama, its load seconds, transformers model, its load seconds). The export is
    written once, outside the timings."""
    from transformers import LlamaForCausalLM
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    Llama.build(ckpt, max_seq_len=max_seq_len, max_batch_size=1, device="cpu")  # warm file cache
    t_nn, llama = best_of(lambda: Llama.build(ckpt, max_seq_len=max_seq_len, max_batch_size=1,
                                              device="cpu"), repeat)
    save_hf(llama, export_dir, dtype=torch.float32)
    t_hf, hf = best_of(lambda: LlamaForCausalLM.from_pretrained(str(export_dir)).eval(), repeat)
    return llama, t_nn, hf, t_hf


def hf_greedy(hf, ids: list[int], n: int) -> list[int]:
    """transformers' greedy generate for exactly ``n`` new tokens (EOS may not end it early)."""
    x = torch.tensor([ids])
    with torch.inference_mode():
        out = hf.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=n,
                          min_new_tokens=n, do_sample=False, pad_token_id=hf.config.eos_token_id)
    return out[0, len(ids):].tolist()


def greedy_rates(llama: Llama, hf, ids: list[int], n: int, repeat: int) -> dict[str, tuple[float, list[int]]]:
    """Seconds for ``n`` greedy tokens after ``ids``: nnlib with cache, nnlib without, transformers."""
    def ours(use_cache: bool) -> Callable[[], list[int]]:
        return lambda: llama.generate([ids], n, temperature=0, use_cache=use_cache)[0][0]

    return {
        "nnlib, KV cache": best_of(ours(True), repeat),
        "nnlib, no cache": best_of(ours(False), max(1, repeat - 1)),
        "transformers generate": best_of(lambda: hf_greedy(hf, ids, n), repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=ROOT / "data" / "tiny-llama")
    parser.add_argument("--tokens", type=int, default=128, help="greedy tokens to generate")
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best taken)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: the tiny model's matrices are too small to split)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        llama, t_nn, hf, t_hf = load_both(args.ckpt, Path(tmp) / "hf", args.repeat, 256)
    ids = llama.tokenizer.encode(args.prompt, bos=True, eos=False)
    n = min(args.tokens, llama.model.params.max_seq_len - len(ids))
    runs = greedy_rates(llama, hf, ids, n, args.repeat)

    print(f"{args.ckpt.name}: {llama.model.num_parameters():,} parameters, CPU float32, "
          f"{args.threads} torch threads, best of {args.repeat}")
    print(f"load: nnlib Llama.build {t_nn * 1000:.0f} ms (Meta layout, tokenizer included), "
          f"transformers from_pretrained {t_hf * 1000:.0f} ms (model only): ratio {t_hf / t_nn:.2f}x "
          "(> 1: nnlib faster)")
    print(f"greedy, {n} tokens after {args.prompt!r}:")
    for name, (t, _) in runs.items():
        print(f"  {name:24s} {n / t:8.0f} tokens/s  ({t:.2f} s)")
    cache, no_cache, hf_t = (runs[k][0] for k in runs)
    print(f"KV cache vs no cache: {no_cache / cache:.1f}x   nnlib vs transformers: {hf_t / cache:.2f}x "
          "(> 1: nnlib faster)")
    outs = [out for _, out in runs.values()]
    # nnlib stops at EOS, transformers was told not to: compare the common part.
    k = min(len(o) for o in outs)
    print(f"same greedy tokens in all three: {all(o[:k] == outs[0][:k] for o in outs)} (first {k})")


if __name__ == "__main__":
    main()
