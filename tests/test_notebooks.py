"""The committed notebooks are what their paired sources say, executed top to bottom, with no
errors, learning goals first, the shared Colab cell, exercises with hidden solutions, and no
downloads; `build_notebooks.py --check` names a stale one. (nbval, run by `make test` on
notebooks/, re-executes them and compares outputs.)"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]*_*.py"))
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
    path, _ = notebook
    src = ROOT / "notebooks" / "src" / (path.stem + ".py")
    assert src.exists(), f"{path.name} has no source {src.relative_to(ROOT)}"
    why = build_notebooks.staleness(src)
    assert why is None, f"{path.name}: {why}; rebuild: `python scripts/build_notebooks.py {path.name[:2]}`"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_source_is_paired_and_starts_with_the_colab_cell(src):
    nb = jupytext.read(src)
    assert nb.metadata.get("jupytext", {}).get("formats") == build_notebooks.FORMATS, \
        f"{src.name}: its jupytext header should say `formats: {build_notebooks.FORMATS}`"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown" and code[0] is nb.cells[1], \
        f"{src.name}: the title and goals, then the Colab set-up cell"
    assert code[0].source.strip() == build_notebooks.colab_cell().strip(), \
        f"{src.name}: the first code cell should be build_notebooks.colab_cell(); paste its output there"


def test_check_names_the_stale_notebook_and_ignores_outputs(tmp_path, capsys):
    def check(folder: Path) -> tuple[int, str]:
        code = build_notebooks.main(["--check", "--notebooks", str(folder)])
        return code, capsys.readouterr().out

    (tmp_path / "src").mkdir()
    for name, code in [("01_a", "x = 1\nprint(x)"), ("02_b", "print('b')")]:
        src = tmp_path / "src" / f"{name}.py"
        src.write_text(f"# %% [markdown]\n# # {name}\n\n# %%\n{code}\n")
        nb = jupytext.read(src)
        nb.metadata["jupytext"] = {"formats": build_notebooks.FORMATS}
        nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    code, out = check(tmp_path)
    assert code == 0 and "up to date" in out, out

    src = tmp_path / "src" / "02_b.py"
    src.write_text(src.read_text().replace("print('b')", "print('B')"))
    code, out = check(tmp_path)
    assert code == 1 and "stale: 02_b.ipynb" in out and "cell 1" in out and "01_a" not in out, out

    (tmp_path / "src" / "03_c.py").write_text("# %%\nprint(3)\n")
    assert "stale: 03_c.ipynb: not built yet" in check(tmp_path)[1]


@pytest.mark.slow  # a fresh interpreter importing jupytext and nbclient
def test_check_runs_as_a_script_and_exits_non_zero_when_stale(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "01_a.py").write_text("# %%\nprint(1)\n")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), "--check",
                             "--notebooks", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1 and "stale: 01_a.ipynb: not built yet" in result.stdout, result


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


def test_goals_first_exercises_last(notebook):
    path, nb = notebook
    first = source(nb["cells"][0])
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert re.search(r"learning goals|you will be able to|by the end", first, re.I), \
        f"{path.name}: the first cell should state the learning goals"
    text = "\n".join(source(c) for c in nb["cells"])
    assert "Exercise" in text and "<details>" in text and "nnlib.exercises" in text


def test_committed_notebooks_keep_no_widget_state(notebook):
    """Saved widget models name one ipywidgets' protocol; Colab (ipywidgets 7) logs errors for
    ipywidgets 8's, and a view without its model shows an error in JupyterLab: none are kept."""
    path, nb = notebook
    assert "widgets" not in nb["metadata"], f"{path.name} keeps saved widget state"
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            assert build_notebooks.WIDGET_VIEW not in output.get("data", {}), \
                f"{path.name}: a widget view in a committed output; rebuild with build_notebooks.py"


@pytest.mark.slow
def test_build_leaves_a_readable_line_where_a_widget_was(tmp_path):
    (tmp_path / "src").mkdir()
    src = tmp_path / "src" / "01_w.py"
    src.write_text("# %% [markdown]\n# # 01\n\n# %%\n"
                   "import ipywidgets\nipywidgets.VBox([ipywidgets.IntSlider()])\n")
    build_notebooks.build(src, timeout=60, notebooks=tmp_path)
    nb = nbformat.read(tmp_path / "01_w.ipynb", as_version=4)
    assert "widgets" not in nb.metadata
    assert nb.cells[1].outputs[0]["data"] == {"text/plain": build_notebooks.WIDGET_PLACEHOLDER}


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


@pytest.mark.slow
def test_build_executes_and_keeps_the_pairing(tmp_path):
    (tmp_path / "src").mkdir()
    src = tmp_path / "src" / "01_a.py"
    src.write_text("# %% [markdown]\n# # 01\n\n# %%\nprint(6 * 7)\n")
    build_notebooks.build(src, timeout=60, notebooks=tmp_path)
    nb = nbformat.read(tmp_path / "01_a.ipynb", as_version=4)
    assert nb.metadata["jupytext"]["formats"] == build_notebooks.FORMATS
    assert nb.cells[1].outputs[0]["text"] == "42\n"
    assert build_notebooks.staleness(src, tmp_path) is None
