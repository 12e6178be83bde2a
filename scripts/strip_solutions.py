"""Write copies of the notebooks without their exercise solutions, for a workshop hand-out.

    python scripts/strip_solutions.py notebooks/*.ipynb --out handouts/

`scripts/build_notebooks.py` writes `handouts/` this way whenever it builds a notebook, so the
committed hand-outs (the ones the teacher's guide links to Colab and Binder) always match.

A solution is a collapsed ``<details><summary>Solution</summary> ... </details>`` block in a
markdown cell (how every notebook in the series writes them). The block is replaced by one line
saying where the solution is; the rest of the cell (often the next exercise's text) stays, and
the checkers still work. The copy is unpaired (no jupytext header): paired, JupyterLab would
rewrite it from the source, solutions included, as soon as the source is newer. The originals are
never modified.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

SOLUTION = re.compile(r"<details>\s*<summary>\s*Solution\s*</summary>.*?</details>\s*", re.S | re.I)
PLACEHOLDER = "*(The solution is in the teacher's copy of this notebook.)*\n\n"
#: The teacher's copy says where its solutions are ("The solution is hidden below; try first"):
#: in a hand-out that sentence would be false, so it is made to point to the teacher's copy.
HIDDEN_BELOW = re.compile(r"\bhidden\s+below(?:\s+each\s+one)?", re.I)
WHERE_SOLUTIONS_ARE = "in the teacher's copy"


def strip_notebook(nb: dict) -> tuple[dict, int]:
    """Return (notebook without solution blocks and without its jupytext pairing, how many blocks
    were removed)."""
    nb.get("metadata", {}).pop("jupytext", None)
    removed = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        new, n = SOLUTION.subn(PLACEHOLDER, text)
        new, pointers = HIDDEN_BELOW.subn(WHERE_SOLUTIONS_ARE, new)
        if n or pointers:
            removed += n
            cell["source"] = new.rstrip("\n")
    return nb, removed


def write_handout(path: Path, out: Path) -> int:
    """Write ``out/<name>``: the notebook at ``path`` without solutions; return how many."""
    nb, n = strip_notebook(json.loads(path.read_text(encoding="utf-8")))
    (out / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="folder for the hand-out copies")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.notebooks:
        if not path.is_file() or path.suffix != ".ipynb":
            sys.exit(f"{path}: not a notebook file (.ipynb). Pass notebooks/*.ipynb.")
        if args.out.resolve() == path.parent.resolve():
            sys.exit("--out is the notebooks' own folder: choose another so the originals stay intact.")
        n = write_handout(path, args.out)
        print(f"{path.name}: {n} solution(s) removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
