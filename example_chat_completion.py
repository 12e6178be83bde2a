"""Meta's chat example with its flags and defaults, on any machine:

    torchrun --nproc_per_node 1 example_chat_completion.py \\
        --ckpt_dir llama-2-7b-chat/ --tokenizer_path tokenizer.model --max_seq_len 512 --max_batch_size 8

Each dialog is a list of ``{"role", "content"}`` messages (an optional system message, then user
and assistant taking turns, ending with the user); ``Llama.chat_completion`` writes the prompt in
the format the tokenizer belongs to (Llama 2's ``[INST]``, Llama 3's headers, or the model's own
chat template) and returns the assistant's reply. Flags, loading and the torchrun handling are
those of ``example_text_completion.py``. A base model (such as the shipped tiny Shakespeare
Llama) was never taught to chat: it runs, but its replies only continue the text.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from example_text_completion import (
    SEPARATOR,
    add_meta_flags,
    batches,
    build_from_args,
    check_world_size,
    finish,
    silence_other_ranks,
)

DIALOGS = [
    [{"role": "user", "content": "What is the largest animal?"}],
    [
        {"role": "user", "content": "I have flour, eggs and milk. What can I cook?"},
        {"role": "assistant", "content": "Pancakes: whisk them into a batter and fry it thinly."},
        {"role": "user", "content": "And without a frying pan?"},
    ],
    [
        {"role": "system", "content": "Answer in one short sentence."},
        {"role": "user", "content": "Why does a KV cache make generation faster?"},
    ],
    [
        {"role": "system", "content": "You speak like a character in a Shakespeare play."},
        {"role": "user", "content": "Shall we go to the market today?"},
    ],
]


def make_parser() -> argparse.ArgumentParser:
    """Meta's chat example defaults: max_seq_len 512, max_batch_size 8, replies up to the end of
    the context (max_gen_len None)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_meta_flags(parser, max_seq_len=512, max_batch_size=8, max_gen_len=None)


def main(argv: Sequence[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    silence_other_ranks()
    check_world_size()
    generator = build_from_args(args)
    try:
        for group in batches(DIALOGS, args.max_batch_size):
            results = generator.chat_completion(list(group), temperature=args.temperature,
                                                top_p=args.top_p, max_gen_len=args.max_gen_len)
            for dialog, result in zip(group, results):
                for message in dialog:
                    print(f"{message['role'].capitalize()}: {message['content']}\n")
                reply = result["generation"]
                print(f"> {reply['role'].capitalize()}: {reply['content']}")
                print(SEPARATOR)
    except ValueError as err:  # e.g. a dialog longer than --max_seq_len
        raise SystemExit(f"error: {err}") from None
    finally:
        finish()


if __name__ == "__main__":
    main()
