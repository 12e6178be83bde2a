"""nnlib.check_setup: what a workshop learner runs first."""
from __future__ import annotations

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


def test_present_needs_are_met():
    assert check_setup.Need("numpy", "module:numpy", "").met()
    assert check_setup.Need("labelled set", "file:textcat/train.jsonl", "").met()


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
