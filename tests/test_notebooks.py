"""The committed notebooks are what their sources say, executed top to bottom, with no errors,
learning goals first, the shared Colab cell, exercises with hidden solutions, and no downloads.
(nbval, run by `make test` on notebooks/, re-executes them and compares outputs.)"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DOWNLOAD = re.compile(r"spacy\.cli\.download|spacy download|hf_hub_download|snapshot_download|"
                      r"urlretrieve|requests\.get|wget |curl ")


def source(cell) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def notebook(request):
    return request.param, json.loads(request.param.read_text())


def test_there_are_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS][:2] == ["01", "02"]


def test_committed_notebook_matches_its_source(notebook):
    path, nb = notebook
    src = ROOT / "notebooks" / "src" / (path.stem + ".py")
    assert src.exists(), f"{path.name} has no source {src.relative_to(ROOT)}"
    expected = [source(c).strip() for c in jupytext.read(src).cells]
    expected.insert(1, build_notebooks.colab_cell())
    got = [source(c).strip() for c in nb["cells"]]
    assert got == expected, (f"{path.name} differs from its source: rebuild it with "
                             f"`python scripts/build_notebooks.py {path.name[:2]}`")


def test_executed_in_order_without_errors(notebook):
    path, nb = notebook
    count = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or not source(cell).strip():
            continue
        count += 1
        assert cell["execution_count"] == count, f"{path.name}: not executed top to bottom in one kernel"
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"{path.name}: error output in cell {count}"


def test_goals_first_exercises_last_and_colab_cell(notebook):
    path, nb = notebook
    first = source(nb["cells"][0])
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert re.search(r"learning goals|you will be able to|by the end", first, re.I), \
        f"{path.name}: the first cell should state the learning goals"
    assert source(nb["cells"][1]).strip() == build_notebooks.colab_cell().strip()
    text = "\n".join(source(c) for c in nb["cells"])
    assert "Exercise" in text and "<details>" in text and "nnlib.exercises" in text


def test_colab_cell_installs_from_the_one_repository_address():
    url = build_notebooks.repo_url()
    cell = build_notebooks.colab_cell()
    assert url in cell and "google.colab" in cell and "torch" not in cell.replace("# ", "")


def test_no_downloads_at_run_time(notebook):
    path, nb = notebook
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            for line in source(cell).splitlines():
                assert not (DOWNLOAD.search(line) and not line.lstrip().startswith("#")), line


def test_no_paths_of_the_machine_that_ran_it(notebook):
    path, _ = notebook
    assert not re.search(r"/root/|/home/[a-z]|/tmp/|/Users/", path.read_text()), \
        f"{path.name} shows a local path in its outputs"
