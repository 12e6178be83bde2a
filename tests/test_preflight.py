"""scripts/check_setup.py, the pre-flight a teacher sends out: what each kind of laptop is told,
from the facts alone, and that it runs on a bare Python before anything is installed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import check_setup  # noqa: E402

GB = 10**9


def verdicts(**facts):
    base = dict(version=(3, 12), system="Linux", machine="x86_64", nvidia=False, memory=16 * GB,
                disk_free=50 * GB, cores=8, needed=(3, 11))
    return check_setup.checks(**{**base, **facts})


def test_a_good_laptop_is_ready():
    assert all(ok for ok, _ in verdicts())


def test_each_problem_is_named_with_its_fix():
    old = verdicts(version=(3, 10))
    assert not old[0][0] and "needs 3.11 or newer" in old[0][1]
    intel_mac = verdicts(system="Darwin", machine="x86_64")
    assert not intel_mac[1][0] and "Colab or Binder" in intel_mac[1][1]
    full_disk = verdicts(disk_free=2 * GB)
    assert not full_disk[2][0] and "Free some space" in full_disk[2][1]
    small = verdicts(memory=3 * GB)
    assert not small[3][0] and "one notebook at a time" in small[3][1]
    unknown = verdicts(memory=None)
    assert unknown[3][0], "memory that cannot be read is not a failure"


def test_the_python_floor_comes_from_pyproject():
    assert check_setup.required_python() == (3, 11)


def test_runs_on_a_bare_python_without_the_venv(tmp_path):
    """`python -I` (no site-packages of the project, nothing installed) and a venv that does not exist."""
    result = subprocess.run([sys.executable, "-I", str(ROOT / "scripts" / "check_setup.py"),
                             "--venv", str(tmp_path / "none")], capture_output=True, text=True)
    assert "not installed yet" in result.stdout and result.stdout.strip().splitlines()[-1].startswith(
        ("Ready to install.", "Not ready")), result.stdout + result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="compared with psutil on Linux")
def test_total_memory_is_this_machines():
    """On Linux the pre-flight knows the memory (never None): psutil, read independently, says
    the same total (both are the kernel's MemTotal)."""
    psutil = pytest.importorskip("psutil")
    total = check_setup.total_memory_bytes()
    assert isinstance(total, int) and total > GB
    assert total == pytest.approx(psutil.virtual_memory().total, rel=1e-3)
