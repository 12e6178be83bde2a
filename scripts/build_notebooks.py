"""Execute the notebooks from their paired sources, or say which committed notebooks are stale.

Each notebook is a jupytext pair: ``notebooks/src/NN_name.py``, a "percent" script that diffs and
reviews well, and ``notebooks/NN_name.ipynb``, committed executed so that it reads well on GitHub
and nbval can compare its outputs. Edit either one: JupyterLab with jupytext saves both, and
``make notebooks`` first runs ``jupytext --sync`` (the newer file of each pair wins), then this.

    python scripts/build_notebooks.py            # execute every notebook from its source
    python scripts/build_notebooks.py 01 03      # the ones whose name starts with these
    python scripts/build_notebooks.py --check    # list stale notebooks; exit 1 if there are any

The first code cell of every source is the Colab set-up cell; tests/test_notebooks.py checks that
it equals ``colab_cell()``, made from the repository address in ``pyproject.toml`` so the address
lives in one place.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
import tomllib
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
import strip_solutions  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "notebooks"
#: The committed notebooks without their solutions (scripts/strip_solutions.py), for workshops.
HANDOUTS = ROOT / "handouts"
#: jupytext pairing, relative to the notebook: notebooks/NN.ipynb <-> notebooks/src/NN.py
FORMATS = "ipynb,src//py:percent"

COLAB_CELL = (
    "# Set-up. On Colab this installs what the series needs and Colab lacks (about a minute, once),\n"
    "# holding every package Colab preinstalls at its version (its ipywidgets 7 above all);\n"
    "# anywhere else it does nothing, because `make lab` already installed everything.\n"
    "import sys\n"
    'if "google.colab" in sys.modules:  # pragma: no cover - runs on Colab only\n'
    "    import subprocess\n"
    '    url, name = "URL", "NAME"\n'
    '    subprocess.run(f"test -d {name} || git clone -q --depth 1 {url} {name}", shell=True, check=True)\n'
    '    subprocess.run([sys.executable, f"{name}/scripts/colab_setup.py"], check=True)\n'
    "    sys.path.insert(0, name)  # this kernel sees the new packages without a restart\n"
    "    import importlib; importlib.invalidate_caches()"
)


def repo_url() -> str:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return meta["project"]["urls"]["Repository"]


def colab_cell() -> str:
    url = repo_url()
    return COLAB_CELL.replace("URL", url).replace("NAME", url.rstrip("/").rsplit("/", 1)[-1])


def github_slug() -> str:
    """'owner/name' from the repository address."""
    return repo_url().rstrip("/").split("github.com/", 1)[1]


def binder_url(notebook: str = "01_sgd_from_scratch.ipynb", folder: str = "notebooks") -> str:
    return f"https://mybinder.org/v2/gh/{github_slug()}/HEAD?urlpath=lab/tree/{folder}/{notebook}"


def colab_url(notebook: str, folder: str = "notebooks") -> str:
    return f"https://colab.research.google.com/github/{github_slug()}/blob/main/{folder}/{notebook}"


def cell_sources(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """(cell type, source) of every cell: what a notebook says, whatever its outputs."""
    return [(cell.cell_type, cell.source.strip()) for cell in nb.cells]


#: What a committed notebook shows where a live widget was: the text front ends fall back to.
WIDGET_PLACEHOLDER = "(an interactive widget: run this cell to use it)"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def drop_widget_state(nb: nbformat.NotebookNode) -> None:
    """Keep no ipywidgets state in a committed notebook, so every front end opens it cleanly.

    Saved state names the widget protocol of the ipywidgets that ran the notebook (controls 2.0.0
    for ipywidgets 8); Colab's front end runs ipywidgets 7 and logs an error for each such model,
    and a widget view whose state is gone shows "Error displaying widget: model not found" in
    JupyterLab. So the state goes, and so does each output's widget view: what remains is the
    output's text, the finished bar of a tqdm widget or, for a control panel, a line saying to run
    the cell. The widget itself comes back whenever the cell runs."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            del data[WIDGET_VIEW]
            text = data.get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            if re.match(r"\w+\(children=", text) or not text:
                data["text/plain"] = WIDGET_PLACEHOLDER


def staleness(src: Path, notebooks: Path = OUT) -> str | None:
    """Why ``notebooks/<src stem>.ipynb`` does not match its source, or None when it does."""
    target = notebooks / (src.stem + ".ipynb")
    if not target.exists():
        return "not built yet"
    built = nbformat.read(target, as_version=4)
    want, have = cell_sources(jupytext.read(src)), cell_sources(built)
    for i, (w, h) in enumerate(zip(want, have)):
        if w != h:
            return f"cell {i} ({w[0]}) differs from the source, starting {w[1][:60]!r}"
    if len(want) != len(have):
        return f"the source has {len(want)} cells, the notebook {len(have)}"
    if built.metadata.get("jupytext", {}).get("formats") != FORMATS:
        return f"not paired with its source (metadata jupytext.formats should be {FORMATS!r})"
    return None


def build(src: Path, timeout: int, notebooks: Path = OUT, out: Path | None = None) -> float:
    """Execute ``src`` top to bottom in a fresh kernel (working folder ``notebooks``); write
    ``<out or notebooks>/<stem>.ipynb``, paired, without saved widget state (see
    ``drop_widget_state``)."""
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["jupytext"] = {"formats": FORMATS}  # keeps the pair: JupyterLab saves both files
    start = time.perf_counter()
    # The state is stored while running (nbclient's Output-widget capture needs it) and dropped below.
    NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(notebooks)}}).execute()
    elapsed = time.perf_counter() - start
    for i, cell in enumerate(nb.cells):  # ids are random per build: make them stable for diffs
        cell["id"] = f"cell-{i:02d}"
    drop_widget_state(nb)
    target = (out or notebooks) / (src.stem + ".ipynb")
    nbformat.write(nb, target)
    if target.parent.resolve() == OUT.resolve():  # a committed notebook: its hand-out follows it
        HANDOUTS.mkdir(exist_ok=True)
        strip_solutions.write_handout(target, HANDOUTS)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="only notebooks whose name starts so")
    parser.add_argument("--check", action="store_true",
                        help="execute nothing; list the notebooks whose cells differ from their source")
    parser.add_argument("--notebooks", type=Path, default=OUT,
                        help="the folder of .ipynb files, with the sources in its src/ (default: notebooks/)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the executed notebooks here instead (to try a source without "
                             "touching the committed notebook or its pairing)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    sources = sorted((args.notebooks / "src").glob("[0-9][0-9]*_*.py"))
    if args.prefixes:
        sources = [s for s in sources if any(s.name.startswith(p) for p in args.prefixes)]
    if not sources:
        print(f"no notebook sources matched in {args.notebooks / 'src'}", file=sys.stderr)
        return 1
    if args.check:
        stale = {src: why for src in sources if (why := staleness(src, args.notebooks))}
        for src, why in stale.items():
            print(f"stale: {src.stem}.ipynb: {why}; rebuild it with "
                  f"`python scripts/build_notebooks.py {src.name[:2]}` (or `make notebooks`)")
        if not stale:
            print(f"up to date: {', '.join(s.stem + '.ipynb' for s in sources)}")
        return 1 if stale else 0
    for src in sources:
        print(f"{src.stem}: {build(src, args.timeout, args.notebooks, args.out):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
