"""A small, readable Llama in Meta's names that loads Meta and Hugging Face checkpoints on any
device (CUDA, Apple MPS, CPU) without torchrun, plus a tiny Shakespeare Llama shipped in data/.

    from nnlib.llama import load_tiny
    llama = load_tiny()
    llama.text_completion(["ROMEO:"], temperature=0.0, max_gen_len=40)

Modules: ``model`` (ModelArgs, Transformer), ``tokenizer`` (SentencePiece, Llama 3 tiktoken,
Hugging Face tokenizer.json), ``chat`` (Llama 2 / Llama 3 chat prompts), ``checkpoint`` (read
Meta / HF / sharded layouts, write HF), ``devices`` (device, dtype, backend, memory arithmetic),
``generation`` (Llama: build, generate, text_completion, chat_completion, steps;
sample_top_p).
"""
from .chat import ChatFormat, check_dialog, encode_dialog
from .checkpoint import load_state_dict, permute_for_hf, save_hf, save_meta, unpermute_from_hf
from .devices import (choose_device, choose_dtype, kv_cache_bytes, memory_table, model_memory,
                      process_group_backend)
from .generation import (GenerationStep, Llama, choose_next, generate_seed_order, load_tiny,
                         next_token_distribution, nucleus, sample_top_p, temperature_probs)
from .model import ModelArgs, Transformer, ffn_hidden_dim
from .tokenizer import (HFTokenizer, TiktokenTokenizer, Tokenizer, find_tokenizer_file,
                        llama3_special_tokens, load_tokenizer)

__all__ = [
    "Llama", "ModelArgs", "Transformer", "Tokenizer", "load_tiny", "sample_top_p", "save_hf",
    "save_meta", "load_state_dict", "permute_for_hf", "unpermute_from_hf", "GenerationStep",
    "choose_next", "next_token_distribution", "nucleus", "temperature_probs", "generate_seed_order",
    "choose_device", "choose_dtype", "process_group_backend", "kv_cache_bytes", "model_memory",
    "memory_table", "ffn_hidden_dim", "load_tokenizer",
    "TiktokenTokenizer", "HFTokenizer", "find_tokenizer_file", "llama3_special_tokens",
    "ChatFormat", "check_dialog", "encode_dialog",
]
