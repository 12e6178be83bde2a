"""A class summary of the exercises: run the checkers over a folder of learners' notebooks.

    python scripts/class_summary.py collected/            # re-run every notebook, then summarise
    python scripts/class_summary.py collected/ --saved    # read the verdicts the notebooks saved

`collected/` holds the notebooks the learners handed in, any way the teacher gathered them:
`collected/ana/04_step_through_generation.ipynb`, or `collected/04_ana.ipynb`. Re-running (the
default) executes each notebook top to bottom in a fresh kernel (errors allowed, so one broken
cell does not hide the rest) and takes the checkers' verdicts from what they print; `--saved`
trusts the outputs as saved, which is quick but only as fresh as the learner's last run.

A checker prints one of three openings: "Right!", "Not yet: <the mistake it recognised>", or
"Not attempted yet". The summary counts them per exercise and lists the mistakes by how many
learners made them: what to go over with the class.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: An exercise cell calls one checker imported from nnlib.exercises: check_<something>(...).
CHECK_CALL = re.compile(r"^(check_\w+)\(", re.M)
VERDICTS = ("Right!", "Not yet:", "Not attempted yet")


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def outputs_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append("".join(out["text"]) if isinstance(out["text"], list) else out["text"])
        elif out.get("output_type") == "error":
            parts.append(f"ERROR {out.get('ename')}: {out.get('evalue')}")
    return "".join(parts)


def verdicts(nb: dict) -> list[tuple[str, str, str]]:
    """(checker, verdict, detail) for each exercise cell: verdict is 'right', 'not yet',
    'not attempted' or 'error' (the cell raised, or printed no verdict: not run)."""
    found = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code" or not (match := CHECK_CALL.search(source(cell))):
            continue
        text = outputs_text(cell)
        line = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith(VERDICTS)), None)
        if text.startswith("ERROR") or "\nERROR " in text:
            found.append((match[1], "error", text.split("ERROR ", 1)[1].splitlines()[0]))
        elif line is None:
            found.append((match[1], "error", "no verdict printed (the cell did not run?)"))
        elif line.startswith("Right!"):
            found.append((match[1], "right", ""))
        elif line.startswith("Not yet:"):
            found.append((match[1], "not yet", line.removeprefix("Not yet:").strip()))
        else:
            found.append((match[1], "not attempted", ""))
    return found


def learner_of(path: Path, folder: Path) -> str:
    """The learner's name: the first folder under ``folder``, else the file's own name."""
    rel = path.relative_to(folder)
    return rel.parts[0] if len(rel.parts) > 1 else path.stem


def run(path: Path, timeout: int) -> dict:
    """Execute a copy of the notebook in a fresh kernel from notebooks/ (where its paths point)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    return nb


def summarise(results: dict[str, list[tuple[str, str, str, str]]]) -> str:
    """``results``: learner -> (notebook, checker, verdict, detail). A table per exercise."""
    per_exercise: dict[tuple[str, str], Counter] = defaultdict(Counter)
    mistakes: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for rows in results.values():
        for notebook, checker, verdict, detail in rows:
            per_exercise[(notebook, checker)][verdict] += 1
            if verdict in ("not yet", "error"):
                mistakes[(notebook, checker)][detail[:100]] += 1
    lines = [f"{len(results)} learner(s)", "",
             f"{'notebook':<34} {'exercise':<34} right  not yet  not attempted  error"]
    for (notebook, checker), count in sorted(per_exercise.items()):
        lines.append(f"{notebook:<34} {checker:<34} {count['right']:>5}  {count['not yet']:>7}  "
                     f"{count['not attempted']:>13}  {count['error']:>5}")
        for detail, n in mistakes[(notebook, checker)].most_common(3):
            lines.append(f"{'':<36}{n} x {detail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--saved", action="store_true", help="read saved outputs; run nothing")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell when re-running")
    args = parser.parse_args(argv)
    paths = sorted(args.folder.rglob("*.ipynb"))
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    if not paths:
        print(f"No notebooks (.ipynb) under {args.folder}: put the learners' notebooks there, one "
              "folder per learner or one file each.", file=sys.stderr)
        return 1
    import json

    results: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
    for path in paths:
        try:
            nb = json.loads(path.read_text(encoding="utf-8")) if args.saved else run(path, args.timeout)
        except (ValueError, OSError) as err:
            print(f"{path}: cannot read it as a notebook ({err}); skipped.", file=sys.stderr)
            continue
        notebook = re.sub(r"_[^_]*$", "", path.stem) if len(path.relative_to(args.folder).parts) == 1 \
            else path.stem
        for checker, verdict, detail in verdicts(nb):
            results[learner_of(path, args.folder)].append((notebook, checker, verdict, detail))
    print(summarise(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
