"""The Colab set-up (scripts/colab_setup.py) can only add packages, and the Colab twin
(scripts/colab_twin.py) reads Colab's published list as Colab has it. The full run, the cell
in a venv of Colab's versions, is `make test-colab`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import colab_setup  # noqa: E402
import colab_twin  # noqa: E402


def test_constraints_hold_what_is_installed_and_pin_only_what_is_missing():
    preinstalled = {"ipywidgets": "7.7.1", "spacy": "3.8.15", "torch": "2.11.0+cpu", "nnlib": "0.1.0"}
    pins = {"gguf": "0.19.0", "spacy": "3.8.18"}  # a pin for a package Colab has must not win
    lines = colab_setup.constraints(preinstalled, pins)
    assert "ipywidgets==7.7.1" in lines and "torch==2.11.0+cpu" in lines and "gguf==0.19.0" in lines
    assert "spacy==3.8.15" in lines and "spacy==3.8.18" not in lines
    assert not any(line.startswith("nnlib") for line in lines), "nnlib itself is what gets installed"


def test_changed_sees_upgrades_and_removals_but_not_additions():
    before = {"ipywidgets": "7.7.1", "spacy": "3.8.15", "torch": "2.11.0"}
    after = {"ipywidgets": "8.1.9", "torch": "2.11.0", "gguf": "0.19.0"}
    assert colab_setup.changed(before, after) == {"ipywidgets": ("7.7.1", "8.1.9"), "spacy": ("3.8.15", None)}
    assert colab_setup.added(before, after) == {"gguf": "0.19.0"}
    assert colab_setup.changed(before, {**before, "gguf": "1"}) == {}


def test_names_compare_as_pip_compares_them():
    assert colab_setup.normalize("Jinja2") == colab_setup.normalize("jinja2") == "jinja2"
    assert colab_setup.normalize("typing_extensions") == colab_setup.normalize("typing.extensions")


def test_pins_file_takes_exact_pins_only(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("# a comment\n\nGGUF==0.19.0  # why\nja_ginza==5.2.0\n")
    assert colab_setup.read_pins(good) == {"gguf": "0.19.0", "ja-ginza": "5.2.0"}
    bad = tmp_path / "bad.txt"
    bad.write_text("gguf>=0.19\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: 'gguf>=0.19' is not a 'name==version' line"):
        colab_setup.read_pins(bad)


def test_the_shipped_pins_read_and_cover_what_colab_lacks():
    pins = colab_setup.read_pins(colab_setup.COLAB_PINS)
    colab = colab_twin.colab_versions(colab_twin.FREEZE.read_text())
    needed = colab_twin.series_packages((ROOT / "pyproject.toml").read_text())
    assert {n for n in needed if n not in colab} <= set(pins), "every dependency Colab lacks is pinned"
    assert not set(pins) & set(colab), "no pin for a package Colab already has: Colab's version wins"


def test_colabs_list_reads_with_its_url_installs_stood_in_or_left_out():
    colab = colab_twin.colab_versions(colab_twin.FREEZE.read_text())
    assert colab["ipywidgets"] == "7.7.1" and colab["widgetsnbextension"] == "3.6.10"
    assert colab["torch"] == colab_twin.STAND_INS["torch"]      # Colab's 2.11 has no CPU wheel here
    assert "en-core-web-sm" not in colab and "google-colab" not in colab
    with pytest.raises(ValueError, match="installed from a URL; add 'mystery'"):
        colab_twin.colab_versions("mystery @ https://example.invalid/mystery.whl\n")


@pytest.mark.slow  # pip list in a fresh interpreter
def test_dry_run_holds_this_environments_packages(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "colab_setup.py"), "--dry-run"],
                         capture_output=True, text=True, check=True).stdout
    import numpy
    assert f"numpy=={numpy.__version__}" in out.splitlines()
    assert "-c" in out and "requirements/ja.txt" in out and "--no-deps -r" in out


def test_the_set_up_cell_runs_the_setup_script_only_on_colab():
    import build_notebooks

    cell = build_notebooks.colab_cell()
    assert 'if "google.colab" in sys.modules' in cell and "scripts/colab_setup.py" in cell
    assert "pip install" not in cell, "the cell calls colab_setup.py, which holds Colab's packages"
    namespace: dict = {}
    exec(compile(cell, "colab-cell", "exec"), namespace)   # not on Colab here: it does nothing
    assert "subprocess" not in namespace
