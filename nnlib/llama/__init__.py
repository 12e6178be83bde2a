"""A small, readable Llama in Meta's names that loads Meta and Hugging Face checkpoints on any
device (CUDA, Apple MPS, CPU) without torchrun, plus a tiny Shakespeare Llama shipped in data/.

    from nnlib.llama import load_tiny
    llama = load_tiny()
    llama.text_completion(["ROMEO:"], temperature=0.0, max_gen_len=40)

One job per module; the names a learner imports are re-exported here, the rest are imported from
their module:

- ``model``       ModelArgs, Transformer (RMSNorm, rotary embeddings, attention with a KV cache)
- ``linear``      what model.py multiplies with: Linear (nn.Linear, faster one-row products on
                  the CPU) and project (layers that read the same input, in one product)
- ``tokenizer``   SentencePiece, Llama 3 tiktoken, Hugging Face tokenizer.json; load_tokenizer
- ``chat``        the checkpoint's own chat template, or Llama 2 / Llama 3 prompts (encode_dialog)
- ``gguf_tokenizer`` the tokenizer a GGUF file carries, on the same base as the others
- ``weights``     a state dict in Meta's names: the shape table, the tie, checks, ``Checkpoint``
- ``meta_format`` ``hf_format`` ``gguf``: one reader per format, each returning a Checkpoint
- ``checkpoint``  which reader a path needs (detect_layout, READERS): the one dispatch
- ``models``      where the shipped and installed models are (tiny Llama, SmolLM2's GGUF)
- ``loading``     Llama.build, read_checkpoint (composes the readers), the memory check,
                  load_tiny, load_smol
- ``devices``     device, dtype, process-group backend, the machine's device facts
- ``memory``      parameter and byte counts, published shapes, free memory, bandwidth
- ``compare``     do two runs of one model agree: logits (KL per position), logprobs, greedy
                  paths up to a tie; the rounding limits per dtype and why
- ``sampling``    temperature, sample_top_p (nucleus), top-k, min-p, token logprobs
- ``stepper``     GenerationStep, GenerationStepper (one generation in progress, with rewind)
- ``generation``  Llama (generate, text_completion, chat_completion, step, steps)
"""
from .chat import encode_dialog
from .checkpoint import save_hf
from .devices import choose_device, choose_dtype
from .generation import GenerationStep, GenerationStepper, Llama, load_smol, load_tiny
from .model import ModelArgs, Transformer
from .sampling import sample_top_p
from .tokenizer import Tokenizer, load_tokenizer

__all__ = [
    "Llama", "ModelArgs", "Transformer", "Tokenizer", "load_tokenizer", "load_tiny", "load_smol",
    "sample_top_p", "GenerationStep", "GenerationStepper", "encode_dialog", "save_hf",
    "choose_device", "choose_dtype",
]
