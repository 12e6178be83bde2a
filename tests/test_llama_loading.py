"""nnlib.llama.loading: Llama.build on the CPU from every layout through read_checkpoint, errors
that name the fix (tokenizer, vocabulary, device, dtype), the memory check before any weight is
read (tied embeddings counted once), and load_tiny."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import (
    TOKENIZER,
    build,
    hf_to_meta_in_test,
    make_hf_model,
    save_hf_layout,
    save_meta_layout,
)
from nnlib.llama import ModelArgs, devices, memory
from nnlib.llama.loading import check_memory_fits, read_checkpoint

TOKENS = torch.tensor([[1, 50, 900, 13, 7, 1500, 3, 44]])




# ---- read_checkpoint: one function for every layout ------------------------------------------


def test_read_checkpoint_gives_the_same_model_from_both_layouts(tmp_path):
    """HF's files and the test's own Meta conversion of them (conftest's oracle) read to the same
    args and the same state dict in Meta's names."""
    model = make_hf_model()
    hf_dir = save_hf_layout(model, tmp_path / "hf")
    sd, params = hf_to_meta_in_test(model)
    meta = save_meta_layout(sd, params, tmp_path / "meta")
    seen = []
    a_args, a_sd, a_tok = read_checkpoint(hf_dir, max_seq_len=16, max_batch_size=1,
                                          before_weights=lambda args, tied: seen.append(tied))
    b_args, b_sd, b_tok = read_checkpoint(meta, max_seq_len=16, max_batch_size=1)
    assert seen == [False]
    assert a_tok.model_path == str(hf_dir / "tokenizer.model") and b_tok.n_words == 2048
    assert (a_args.dim, a_args.n_kv_heads, a_args.max_seq_len) == (b_args.dim, b_args.n_kv_heads, 16)
    assert set(a_sd) == set(b_sd) == set(sd)
    for k in sd:
        torch.testing.assert_close(a_sd[k], sd[k])
        torch.testing.assert_close(b_sd[k], sd[k])


def test_read_checkpoint_calls_before_weights_before_reading_them(copy_of):
    d = copy_of()
    (d / "consolidated.00.pth").write_bytes(b"never read")

    class Stop(Exception):
        pass

    def stop(args: ModelArgs, tied: bool) -> None:
        assert args.vocab_size == 2048 and not tied
        raise Stop

    with pytest.raises(Stop):
        read_checkpoint(d, before_weights=stop)


def test_build_seed_and_loading_time(meta_dir):
    llama = build(meta_dir, seed=5)
    assert llama.load_seconds is not None and llama.load_seconds > 0
    assert llama.device == torch.device("cpu")


def test_no_tokenizer(copy_of, tmp_path):
    d = copy_of()
    (d / "tokenizer.model").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer_path="):
        build(d)
    with pytest.raises(FileNotFoundError, match="No tokenizer"):
        build(d, tokenizer_path=tmp_path / "nowhere" / "tokenizer.model")
    assert build(d, tokenizer_path=TOKENIZER).tokenizer.n_words == 2048  # the fix works


def test_tokenizer_vocabulary_differs_from_vocab_size(copy_of):
    d = copy_of()
    params = json.loads((d / "params.json").read_text())
    (d / "params.json").write_text(json.dumps({**params, "vocab_size": 32000}))
    with pytest.raises(ValueError, match="2048 tokens but the model's vocab_size is 32000"):
        build(d)


def test_vocab_size_minus_one_is_taken_from_the_tokenizer(copy_of):
    d = copy_of()
    params = json.loads((d / "params.json").read_text())
    (d / "params.json").write_text(json.dumps({**params, "vocab_size": -1}))  # as Llama 2 ships it
    assert build(d).model.params.vocab_size == 2048


@pytest.mark.skipif(torch.backends.cuda.is_built(), reason="this torch has CUDA")
def test_cuda_on_a_torch_without_cuda(meta_dir):
    with pytest.raises(ValueError, match="built without CUDA"):
        build(meta_dir, device="cuda")


def test_unknown_device_and_dtype(meta_dir):
    with pytest.raises(ValueError, match="not a device name"):
        build(meta_dir, device="gpu0")
    with pytest.raises(ValueError, match="Unknown dtype"):
        build(meta_dir, dtype="fp8")


def test_memory_is_checked_before_loading(copy_of, monkeypatch):
    d = copy_of()
    (d / "consolidated.00.pth").write_bytes(b"not read: the check comes first")
    monkeypatch.setattr(memory, "free_memory_bytes", lambda device: 100_000)
    with pytest.raises(MemoryError, match="GB .*free"):
        build(d)


def test_a_half_precision_build_on_the_cpu(meta_dir):
    """dtype= overrides the device's default: weights and KV cache in bf16, logits still float32."""
    llama = build(meta_dir, dtype="bf16")
    assert {p.dtype for p in llama.model.parameters()} == {torch.bfloat16}
    assert llama.model.layers[0].attention.cache_k.dtype == torch.bfloat16
    logits = llama.model.forward(TOKENS, 0)
    assert logits.dtype == torch.float32
    want = build(meta_dir).model.forward(TOKENS, 0)
    assert (logits - want).abs().max() < 0.1 * want.abs().max()



def test_the_memory_check_counts_tied_embeddings_once(monkeypatch):
    """Llama 3.2 1B in bf16 with a small cache: 2.47 GB of weights when tied (1.24B parameters),
    3.0 GB if the output were counted again; 2.6 GB free fits only the tied model."""
    args = ModelArgs.from_dict(devices.LLAMA_3_2_MODELS["3.2-1B"], max_seq_len=8, max_batch_size=1)
    monkeypatch.setattr(memory, "free_memory_bytes", lambda device: 2_600_000_000)
    check_memory_fits(args, torch.bfloat16, torch.device("cpu"), tied_embeddings=True)
    with pytest.raises(MemoryError, match="1.50B parameters"):
        check_memory_fits(args, torch.bfloat16, torch.device("cpu"), tied_embeddings=False)


def test_llama_2_layout_finds_the_tokenizer_beside_the_model_folder(tmp_path):
    """Meta's Llama 2 download: ``llama-2-7b/`` holds params.json, the shards and checklist.chk;
    tokenizer.model and tokenizer_checklist.chk sit beside it (the seed passed --tokenizer_path
    for that). ``Llama.build(folder)`` alone finds and md5-checks that tokenizer."""
    import hashlib
    import shutil

    from nnlib import DATA_DIR
    from nnlib.llama import Llama, load_tiny
    from nnlib.llama.files import DamagedFileError
    from nnlib.llama.loading import verify_download

    tiny = DATA_DIR / "tiny-llama"
    model_dir = tmp_path / "llama-2-tiny"
    model_dir.mkdir()
    for name in ("params.json", "consolidated.00.pth"):
        shutil.copy(tiny / name, model_dir / name)
    shutil.copy(tiny / "tokenizer.model", tmp_path / "tokenizer.model")

    def md5(path):
        return hashlib.md5(path.read_bytes()).hexdigest()

    (model_dir / "checklist.chk").write_text(
        "".join(f"{md5(model_dir / n)}  {n}\n" for n in ("params.json", "consolidated.00.pth")))
    tokenizer_sum = md5(tmp_path / "tokenizer.model")
    (tmp_path / "tokenizer_checklist.chk").write_text(f"{tokenizer_sum}  tokenizer.model\n")

    assert {p.name for p in verify_download(model_dir)} == {"params.json", "consolidated.00.pth",
                                                           "tokenizer.model"}
    built = Llama.build(str(model_dir), max_seq_len=64, max_batch_size=1, device="cpu")
    shipped = load_tiny(device="cpu", max_seq_len=64, max_batch_size=1)
    prompt = ["ROMEO:"]
    assert built.text_completion(prompt, temperature=0, max_gen_len=12) == \
        shipped.text_completion(prompt, temperature=0, max_gen_len=12)

    (tmp_path / "tokenizer_checklist.chk").write_text("0" * 32 + "  tokenizer.model\n")
    with pytest.raises(DamagedFileError, match="tokenizer.model"):
        verify_download(model_dir)
