"""The workshop hand-out script removes every solution block and nothing else."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))


def test_handout_has_no_solutions_and_keeps_everything_else(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "strip_solutions.py"), *map(str, NOTEBOOKS),
                    "--out", str(tmp_path)], check=True, capture_output=True, text=True)
    for path in NOTEBOOKS:
        original = json.loads(path.read_text())
        handout = json.loads((tmp_path / path.name).read_text())
        text = lambda nb: ["".join(c["source"]) for c in nb["cells"]]  # noqa: E731
        n_solutions = sum(t.count("<summary>Solution</summary>") for t in text(original))
        assert n_solutions > 0, f"{path.name} has no solution blocks to strip"
        assert not any("<summary>Solution" in t for t in text(handout))
        assert sum(t.count("The solution is in the teacher's copy of this notebook") for t in text(handout)) \
            == n_solutions
        assert len(handout["cells"]) == len(original["cells"])
        for a, b in zip(original["cells"], handout["cells"]):
            if a["cell_type"] == "code":
                assert a == b, "code cells (and the checkers they call) are untouched"


def test_refuses_to_overwrite_the_originals():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "strip_solutions.py"), str(NOTEBOOKS[0]),
                             "--out", str(NOTEBOOKS[0].parent)], capture_output=True, text=True)
    assert result.returncode != 0 and "originals" in result.stderr


def test_committed_handouts_are_the_notebooks_without_solutions_and_unpaired(tmp_path):
    """handouts/ (linked from the teacher's guide) is what strip_solutions makes of each committed
    notebook now; build_notebooks.py rewrites it with every build. Unpaired: with jupytext's header
    JupyterLab would restore a hand-out from its source, solutions and all."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "strip_solutions.py"), *map(str, NOTEBOOKS),
                    "--out", str(tmp_path)], check=True, capture_output=True, text=True)
    for path in NOTEBOOKS:
        handout = ROOT / "handouts" / path.name
        assert handout.exists(), f"no hand-out for {path.name}: run scripts/strip_solutions.py"
        assert json.loads(handout.read_text()) == json.loads((tmp_path / path.name).read_text()), \
            f"handouts/{path.name} is stale: rebuild the notebook or run scripts/strip_solutions.py"
        assert "jupytext" not in json.loads(handout.read_text())["metadata"]


@pytest.mark.slow  # imports jupyter_server
def test_a_handout_beside_the_sources_opens_without_solutions_in_jupytext(tmp_path):
    """What JupyterLab with jupytext does when it opens a hand-out copied into notebooks/, next to
    a newer src/ file: a paired copy was refused (HTTP 400) or rebuilt from the source, solutions
    and all; the unpaired hand-out opens as it is."""
    import os
    import shutil

    from jupytext import TextFileContentsManager

    name = "04_step_through_generation"
    shutil.copy(ROOT / "handouts" / f"{name}.ipynb", tmp_path / f"{name}.ipynb")
    (tmp_path / "src").mkdir()
    shutil.copy(ROOT / "notebooks" / "src" / f"{name}.py", tmp_path / "src" / f"{name}.py")
    later = (tmp_path / f"{name}.ipynb").stat().st_mtime + 60
    os.utime(tmp_path / "src" / f"{name}.py", (later, later))  # the source is newer
    opened = TextFileContentsManager(root_dir=str(tmp_path)).get(f"{name}.ipynb")["content"]
    assert not any("<summary>Solution" in "".join(c["source"]) for c in opened["cells"])
    assert sum("teacher's copy" in "".join(c["source"]) for c in opened["cells"]) >= 1


def test_a_handout_does_not_point_to_solutions_it_no_longer_has():
    """The teacher's copy says "the solution is hidden below"; in a hand-out that is false, so
    the sentence points to the teacher's copy instead (every committed hand-out, checked)."""
    import json

    for path in sorted((ROOT / "handouts").glob("*.ipynb")):
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                       if c["cell_type"] == "markdown")
        assert "hidden below" not in text.lower(), path.name
    nb = {"cells": [{"cell_type": "markdown", "metadata": {},
                     "source": "Solutions are hidden below each one; try first.\n\n"
                               "<details><summary>Solution</summary>x = 1</details>"}], "metadata": {}}
    sys.path.insert(0, str(ROOT / "scripts"))
    import strip_solutions

    out, removed = strip_solutions.strip_notebook(nb)
    assert removed == 1
    assert out["cells"][0]["source"].startswith("Solutions are in the teacher's copy; try first.")
