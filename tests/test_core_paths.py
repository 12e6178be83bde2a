"""A learner may skip every optional section: each notebook's core path must then still run.

``core_path(path)`` removes every section whose heading says "(optional" (the cells from that
heading to the next heading of the same or a higher level), and the test executes what is left
with nbclient and asserts that no cell raised. A variable that a core cell reads but only an
optional section sets (a ``NameError`` on the core path) fails here.
"""
from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
FENCE = re.compile(r"^\s*(```|~~~)")


def headings(markdown: str) -> list[tuple[int, str]]:
    """The markdown headings of a cell, in order, as (level, text); fenced code is skipped, so a
    ``# comment`` inside a solution's code block is no heading."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := HEADING.match(line)):
            found.append((len(m.group(1)), m.group(2)))
    return found


def core_path(path: Path | str) -> nbformat.NotebookNode:
    """The notebook at ``path`` (an ``.ipynb`` or a jupytext source) without its optional
    sections: a heading whose text contains "(optional" starts one, and the next heading of the
    same or a higher level (fewer ``#``) ends it. A markdown cell that contains such a heading is
    dropped (its text before the heading is prose only); every code cell that follows it is
    dropped until the section ends."""
    nb = jupytext.read(str(path))
    kept = []
    skipping_from: int | None = None  # the level of the optional heading being skipped
    for cell in nb.cells:
        starts_here = False
        if cell.cell_type == "markdown":
            for level, text in headings(cell.source):
                if skipping_from is not None and level <= skipping_from:
                    skipping_from = None
                if skipping_from is None and "(optional" in text.lower():
                    skipping_from, starts_here = level, True
        if skipping_from is None and not starts_here:
            kept.append(cell)
    nb.cells = kept
    return nb


def test_core_path_drops_optional_sections_up_to_the_next_heading_of_their_level(tmp_path):
    src = tmp_path / "toy.py"
    src.write_text(
        "# %% [markdown]\n# ## 1 · Core\n\n# %%\na = 1\n\n"
        "# %% [markdown]\n# ### 1b · Extra (optional, 2 min)\n\n# %%\nb = 2\n\n"
        "# %% [markdown]\n# ```python\n# # not a heading\n# ```\n\n# %%\nc = 3\n\n"
        "# %% [markdown]\n# ### 1c · Core again\n\n# %%\nd = 4\n\n"
        "# %% [markdown]\n# ## 2 · Optional part (optional, 5 min)\n# ### Exercise\n\n# %%\ne = 5\n\n"
        "# %% [markdown]\n# ## 3 · Core\n\n# %%\nf = 6\n")
    code = [c.source for c in core_path(src).cells if c.cell_type == "code"]
    assert code == ["a = 1", "d = 4", "f = 6"]


@pytest.mark.slow  # executes every notebook once more (about a minute each on two cores)
@pytest.mark.parametrize("stem", sorted(p.stem for p in (ROOT / "notebooks" / "src").glob("*.py")))
def test_the_core_path_runs_without_the_optional_sections(stem):
    from nbclient import NotebookClient

    nb = core_path(ROOT / "notebooks" / "src" / f"{stem}.py")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    errors = [(cell.source.splitlines()[:2], out.get("ename"), out.get("evalue"))
              for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, f"{stem}'s core path raised: {errors}"
