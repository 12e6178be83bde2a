"""scripts/class_summary.py reads the checkers' verdicts out of learners' notebooks and counts
them per exercise, with the mistakes most learners made."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import class_summary  # noqa: E402


def learner_notebook(path: Path, printed: list[str]) -> None:
    """A notebook with one exercise cell per entry of ``printed`` (what its checker printed; a
    string starting 'ERROR' makes the cell an error output)."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# 04"))
    for i, text in enumerate(printed):
        cell = nbformat.v4.new_code_cell(f"def f{i}():\n    raise NotImplementedError\n\n\ncheck_ex{i}(f{i})")
        if text.startswith("ERROR"):
            cell.outputs = [nbformat.v4.new_output("error", ename="NameError", evalue=text[6:], traceback=[])]
        elif text:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text + "\n")]
        nb.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_saved_verdicts_are_counted_per_exercise_with_the_common_mistakes(tmp_path):
    name = "04_step_through_generation.ipynb"
    learner_notebook(tmp_path / "ana" / name, ["Right! well done", "Not yet: you kept p == top_p", ""])
    learner_notebook(tmp_path / "ben" / name, ["Not attempted yet: replace ...",
                                               "Not yet: you kept p == top_p", "ERROR x is not defined"])
    learner_notebook(tmp_path / "cho" / name, ["Right! yes", "Right! yes", "Right! yes"])
    script = str(ROOT / "scripts" / "class_summary.py")
    out = subprocess.run([sys.executable, script, str(tmp_path), "--saved"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("3 learner(s)")
    rows = {line.split()[1]: line.split()[2:] for line in out.splitlines() if line.startswith("04_")}
    assert rows["check_ex0"] == ["2", "0", "1", "0"]          # right, not yet, not attempted, error
    assert rows["check_ex1"] == ["1", "2", "0", "0"]
    assert rows["check_ex2"] == ["1", "0", "0", "2"]          # an error, and a cell never run
    assert "2 x you kept p == top_p" in out and "1 x NameError: x is not defined" in out


def test_an_empty_folder_says_what_to_put_there(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "class_summary.py"), str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "one folder per learner" in result.stderr


@pytest.mark.slow  # executes notebook 01's hand-out in a kernel
def test_rerunning_a_handout_finds_every_exercise_not_attempted(tmp_path):
    handout = json.loads((ROOT / "handouts" / "01_sgd_from_scratch.ipynb").read_text())
    n_exercises = len(class_summary.verdicts(handout))
    assert n_exercises >= 2
    (tmp_path / "dee").mkdir()
    (tmp_path / "dee" / "01_sgd_from_scratch.ipynb").write_text(json.dumps(handout))
    results = class_summary.verdicts(class_summary.run(tmp_path / "dee" / "01_sgd_from_scratch.ipynb", 300))
    assert [v for _, v, _ in results] == ["not attempted"] * n_exercises
