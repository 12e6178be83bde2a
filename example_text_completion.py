"""The seed's command, as typed, on any machine:

    torchrun --nproc_per_node 1 example_text_completion.py \\
        --ckpt_dir llama-2-7b/ --tokenizer_path tokenizer.model --max_seq_len 128 --max_batch_size 4

Meta's example of the same name with the same flags and defaults, on top of ``nnlib.llama``:
``Llama.build`` picks the device (CUDA, Apple MPS, CPU) and, under torchrun, starts the process
group with a backend that device has (gloo off-CUDA) instead of a hard-coded NCCL. Plain
``python example_text_completion.py`` works too: one device needs no process group.

``--ckpt_dir`` is any Meta, Hugging Face or GGUF folder (default: the tiny Shakespeare Llama in
``data/tiny-llama``); ``--tokenizer_path`` may be left out when the folder holds its tokenizer.
``example_chat_completion.py`` reuses the flags and the loading defined here.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The shipped model, so that the script runs with no download at all.
TINY_LLAMA = Path(__file__).resolve().parent / "data" / "tiny-llama"

#: The learner's question from the seed, then prompts of the kinds a base model continues well: an
#: open sentence, a few-shot pattern and a play-script cue (which the tiny Shakespeare model knows).
PROMPTS = [
    "Q: What is the largest animal?\nA:",
    "The most surprising thing about learning to program is",
    "English: good morning\nFrench: bonjour\nEnglish: thank you\nFrench: merci\nEnglish: the cat\nFrench:",
    "ROMEO:\nBut soft, what light",
]

SEPARATOR = "\n==================================\n"


def add_meta_flags(parser: argparse.ArgumentParser, *, max_seq_len: int, max_batch_size: int,
                   max_gen_len: int | None) -> argparse.ArgumentParser:
    """Meta's flags with Meta's defaults (they differ between the text and the chat example).

    Meta's examples read them with ``fire``, which accepts ``--flag value``, ``--flag=value`` and
    hyphens for underscores; argparse is given both spellings. ``--device``/``--dtype`` are extra
    (default: ``choose_device``/``choose_dtype``, which also read ``NNLIB_DEVICE``/``NNLIB_DTYPE``).
    """
    def flag(name: str, **kwargs: Any) -> None:
        parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name, **kwargs)

    flag("ckpt_dir", default=str(TINY_LLAMA),
         help="Meta (params.json + consolidated.*.pth), Hugging Face (config.json + "
              "*.safetensors) or GGUF folder/file (default: the shipped tiny Llama)")
    flag("tokenizer_path", default=None,
         help="tokenizer.model or tokenizer.json (default: the one inside --ckpt_dir)")
    flag("temperature", type=float, default=0.6, help="0 means greedy (default 0.6)")
    flag("top_p", type=float, default=0.9, help="nucleus mass to keep (default 0.9)")
    flag("max_seq_len", type=int, default=max_seq_len,
         help=f"prompt + generation length the KV cache holds (default {max_seq_len})")
    flag("max_batch_size", type=int, default=max_batch_size,
         help=f"prompts per forward call (default {max_batch_size})")
    flag("max_gen_len", type=int, default=max_gen_len,
         help=f"new tokens per prompt (default {max_gen_len or 'up to max_seq_len - 1'})")
    flag("device", default=None, help="cuda, cuda:1, mps or cpu (default: the best available)")
    flag("dtype", default=None, help="float32, bfloat16 or float16 (default: the device's own)")
    return parser


def silence_other_ranks() -> None:
    """Under torchrun every process would print the same text; as in Meta's ``build``, only the
    process with LOCAL_RANK 0 writes to stdout."""
    if int(os.environ.get("LOCAL_RANK", "0")) > 0:
        sys.stdout = open(os.devnull, "w")


def check_world_size() -> None:
    """nnlib merges Meta's model-parallel shards onto one device, so one process does all the
    work; more would each hold a full copy (and torchrun would wait for all of them)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        raise SystemExit(
            f"error: launched with {world} processes, but nnlib loads every checkpoint (all of its "
            "consolidated.*.pth shards) onto one device in one process. Use "
            "`torchrun --nproc_per_node 1 ...` or plain `python ...`.")


def build_from_args(args: argparse.Namespace) -> Any:
    """``Llama.build`` with the command line's values; a wrong path or value ends the program
    with nnlib's message (what was wrong and what to pass), not a traceback."""
    from nnlib.llama import Llama

    try:
        llama = Llama.build(ckpt_dir=args.ckpt_dir, tokenizer_path=args.tokenizer_path,
                            max_seq_len=args.max_seq_len, max_batch_size=args.max_batch_size,
                            device=args.device, dtype=args.dtype)
    except (FileNotFoundError, ValueError, MemoryError) as err:
        raise SystemExit(f"error: {err}") from None
    dtype = str(next(llama.model.parameters()).dtype).replace("torch.", "")
    print(f"Loaded in {llama.load_seconds or 0.0:.2f} seconds on {llama.device} ({dtype})")
    return llama


def batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` in consecutive groups of at most ``size`` (the KV cache's max_batch_size)."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def finish() -> None:
    """Close the process group torchrun made us start (torch warns at exit otherwise)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def make_parser() -> argparse.ArgumentParser:
    """Meta's text example defaults: max_seq_len 128, max_batch_size 4, max_gen_len 64."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_meta_flags(parser, max_seq_len=128, max_batch_size=4, max_gen_len=64)


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    silence_other_ranks()
    check_world_size()
    generator = build_from_args(args)
    try:
        for group in batches(PROMPTS, args.max_batch_size):
            results = generator.text_completion(list(group), temperature=args.temperature,
                                                top_p=args.top_p, max_gen_len=args.max_gen_len)
            for prompt, result in zip(group, results):
                print(prompt)
                print(f"> {result['generation']}")
                print(SEPARATOR)
    except ValueError as err:  # e.g. a prompt longer than --max_seq_len, top_p out of range
        raise SystemExit(f"error: {err}") from None
    finally:
        finish()


if __name__ == "__main__":
    main()
