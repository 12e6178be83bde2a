"""The seed's transformers program, done right: load a causal LM from a folder and continue a prompt.

    python scripts/hf_generate.py MODEL_DIR [--prompt TEXT] [--max_new_tokens 32]
    python scripts/hf_generate.py MODEL_DIR --gguf_file model.Q4_1.gguf

The seed's version failed with "Expected all tensors to be on the same device" because its
``input_ids`` stayed on the CPU while ``device_map="auto"`` had put the model on the GPU. Here:

- the dtype is the device's own (``choose_dtype``: bf16 on CUDA GPUs that compute it natively,
  fp16 on a T4, V100 or P100, fp16 on MPS, fp32 on the CPU, where half-precision matmuls are slow
  or missing);
- ``device_map="auto"`` on CUDA (one GPU or a split over several), ``"mps"`` on a Mac, ``"cpu"``
  otherwise; the map is printed. (accelerate 1.15's ``"auto"`` also puts everything on ``"mps"``
  on a Mac, as its ``get_max_memory`` lists ``"mps"`` there instead of ``"cpu"``; naming the device
  says the same in any version.)
- the inputs go to ``model.device`` (the first device of a split, where the embedding lives), with
  their ``attention_mask``, and ``pad_token_id`` is passed, so ``generate`` has nothing to guess.

``MODEL_DIR`` is a Hugging Face folder (``config.json`` + weights + tokenizer), e.g. one written by
``nnlib.llama.save_hf``, or a folder holding a ``.gguf`` file named by ``--gguf_file``.
Decoding is greedy, as in the seed.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

SEED_PROMPT = "Q: What is the largest animal?\nA:"


def placement(device: Any = None, dtype: Any = None) -> tuple[torch.device, torch.dtype, str]:
    """(device, dtype, device_map) for ``from_pretrained``; ``None`` picks as nnlib does
    (CUDA, then MPS, then CPU; each device's default dtype)."""
    from nnlib.llama import choose_device, choose_dtype

    dev = choose_device(device)
    dt = choose_dtype(dev, dtype)
    device_map = {"cuda": "auto", "mps": "mps"}.get(dev.type, "cpu")
    if dev.type == "cuda" and dev.index is not None:  # an explicit GPU: everything on it
        device_map = str(dev)
    return dev, dt, device_map


def load(model_dir: str, gguf_file: str | None = None, device: Any = None, dtype: Any = None
         ) -> tuple[Any, Any]:
    """(tokenizer, model) from ``model_dir``, placed by ``placement``. Bad paths raise
    FileNotFoundError saying what the folder must hold."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder. Pass the folder that holds config.json "
                                "and the weights (or the .gguf file, with --gguf_file NAME).")
    if gguf_file is not None and not (folder / gguf_file).is_file():
        found = sorted(p.name for p in folder.glob("*.gguf"))
        raise FileNotFoundError(f"No {gguf_file} in {folder}; .gguf files there: {found or 'none'}.")
    if gguf_file is None and not (folder / "config.json").is_file():
        ggufs = sorted(p.name for p in folder.glob("*.gguf"))
        hint = f" It holds {ggufs[0]}: add --gguf_file {ggufs[0]}." if ggufs else ""
        raise FileNotFoundError(f"{folder} has no config.json, so it is not a Hugging Face model "
                                f"folder.{hint}")
    _, dt, device_map = placement(device, dtype)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(str(folder), **extra)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dt, device_map=device_map, **extra)
    model.eval()
    return tokenizer, model


def device_map_of(model: Any) -> dict[str, str]:
    """Which module lives where: accelerate's map when it made one, else the one device."""
    mapping = getattr(model, "hf_device_map", None)
    return {k: str(v) for k, v in mapping.items()} if mapping else {"": str(model.device)}


@torch.inference_mode()
def greedy_continuation(tokenizer: Any, model: Any, prompt: str, max_new_tokens: int = 32
                        ) -> tuple[list[int], list[int]]:
    """(prompt ids, new ids): the prompt encoded by the model's tokenizer (with BOS where the
    tokenizer adds one), continued greedily; stops at EOS, which is not returned."""
    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)  # ids AND mask on the model's device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                         temperature=None, top_p=None, top_k=None, pad_token_id=pad_id)
    prompt_ids = inputs["input_ids"][0].tolist()
    new = out[0, len(prompt_ids):].tolist()
    eos = tokenizer.eos_token_id
    if eos is not None and eos in new:
        new = new[:new.index(eos)]
    return prompt_ids, new


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="Hugging Face model folder (or the folder of a .gguf)")
    parser.add_argument("--gguf_file", "--gguf-file", default=None,
                        help="name of a .gguf file inside MODEL_DIR to load instead")
    parser.add_argument("--prompt", default=SEED_PROMPT, help="text to continue (default: the seed's)")
    parser.add_argument("--max_new_tokens", "--max-new-tokens", type=int, default=32)
    parser.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: the best)")
    parser.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (default: the device's)")
    args = parser.parse_args(argv)
    if args.max_new_tokens < 1:
        parser.error(f"--max_new_tokens must be at least 1, got {args.max_new_tokens}.")
    try:
        tokenizer, model = load(args.model_dir, args.gguf_file, args.device, args.dtype)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"dtype: {str(model.dtype).replace('torch.', '')}, device map: {device_map_of(model)}")
    _, new = greedy_continuation(tokenizer, model, args.prompt, args.max_new_tokens)
    print(args.prompt)
    print(f"> {tokenizer.decode(new, skip_special_tokens=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
