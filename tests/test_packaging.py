"""The set-up files agree with each other: pyproject.toml, environment.yml (Binder), requirements/,
the Makefile, and the repository address used by the Colab cells and the README badges."""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def split_requirement(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def pins(path: Path) -> dict[str, str]:
    """``{name: version}`` of a file of ``name==version`` lines (comments skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[name.lower().replace("_", "-").replace(".", "-")] = version.split()[0]
    return out


LOCK = pins(ROOT / "requirements" / "lock.txt")
COLAB_FREEZE = ROOT / "tests" / "colab" / "pip-freeze.txt"
#: Where the Colab set-up cell must install another version than `make test` does, and why.
COLAB_DIFFERS = {"ginza": "GiNZA 5.3 needs spaCy >= 3.8.16 and Colab holds spaCy 3.8.15",
                 "ja-ginza": "follows GiNZA"}


def test_binder_installs_exactly_what_make_test_tests():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if not isinstance(d, dict)]
    assert sorted(conda) == ["pip", "python=3.11"] and len(conda) == len(env["dependencies"]), \
        "environment.yml brings Python and pip only; every package comes from postBuild under the lock"
    post_build = (ROOT / "postBuild").read_text()
    assert (ROOT / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    for needed in ("-c requirements/lock.txt -e '.[lab]' -r requirements/ja.txt",
                   "--no-deps -r requirements/models.txt",
                   "download.pytorch.org/whl/cpu -r requirements/setup.txt"):
        assert needed in post_build, f"postBuild should install {needed!r}"
    sys.path.insert(0, str(ROOT / "scripts"))
    import install

    plan = install.TorchPlan(True, None, "")
    for use in ("lab", "test"):
        series = next(c for c in install.install_commands(Path("py"), use, plan, []) if "-e" in c)
        assert series[series.index("-c") + 1].endswith("requirements/lock.txt"), \
            "make lab / make test install under the same constraints"


def test_the_lock_holds_every_dependency_and_satisfies_pyproject():
    from packaging.specifiers import SpecifierSet

    reqs = PYPROJECT["project"]["dependencies"] + [
        r for extra in ("lab", "test", "dev") for r in PYPROJECT["project"]["optional-dependencies"][extra]]
    for req in reqs:
        name, spec = split_requirement(req)
        assert name in LOCK, f"{name} is a dependency but requirements/lock.txt lacks it: run `make lock`"
        assert LOCK[name] in SpecifierSet(spec), f"{name}: the lock's {LOCK[name]} is outside {spec}"
    assert LOCK["torch"] == "2.13.0"


def test_every_floor_is_a_tested_version():
    """Each lower bound in pyproject.toml is a version some test run installs: Colab's (the twin)
    or the lock's (`make test`). torch's floor is Colab's 2.11, which the twin runs as 2.13."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from colab_twin import colab_versions

    colab = colab_versions(COLAB_FREEZE.read_text())
    for req in PYPROJECT["project"]["dependencies"]:
        name, spec = split_requirement(req)
        floor = spec.removeprefix(">=")
        tested = {colab.get(name), LOCK.get(name)} - {None}
        if name == "torch":
            assert floor == "2.11" and "2.11.0" in COLAB_FREEZE.read_text(), "torch's floor is Colab's torch"
            continue
        assert floor in tested, f"{name}>={floor}: not a tested version (Colab twin / lock: {sorted(tested)})"
        if name in colab:
            assert floor == min(tested, key=lambda v: [int(x) for x in re.findall(r"\d+", v)]), \
                f"{name}: the floor should be the older tested version"
    for extra in ("lab", "test", "dev"):
        for req in PYPROJECT["project"]["optional-dependencies"][extra]:
            name, spec = split_requirement(req)
            assert spec == ">=" + LOCK[name], f"{name} ({extra}): the floor should be the lock's {LOCK[name]}"


def test_colab_pins_are_the_locks_but_where_colab_forces_otherwise():
    colab_pins = pins(ROOT / "requirements" / "colab.txt")
    assert "gguf" in colab_pins, "the cell installs gguf, which Colab lacks, at a tested version"
    differ = {n for n, v in colab_pins.items() if LOCK.get(n) != v}
    assert differ == set(COLAB_DIFFERS), (
        f"requirements/colab.txt differs from the lock for {sorted(differ)}; "
        f"the documented reasons cover {sorted(COLAB_DIFFERS)}")


def test_torch_is_pinned_only_in_the_setup_path_and_installed_first():
    deps = dict(split_requirement(r) for r in PYPROJECT["project"]["dependencies"])
    assert deps["torch"].startswith(">="), \
        "the package metadata keeps torch loosely bounded (Colab brings its own)"
    assert "torch==2.13.0" in (ROOT / "requirements" / "setup.txt").read_text()
    sys.path.insert(0, str(ROOT / "scripts"))
    import install

    commands = install.install_commands(Path("py"), "lab", install.TorchPlan(True, None, ""), [])
    torch_at = next(i for i, c in enumerate(commands) if any(a.endswith("setup.txt") for a in c))
    series_at = next(i for i, c in enumerate(commands) if "-e" in c)
    assert torch_at < series_at, "torch must be installed before the package, or pip resolves a CUDA build"


def test_every_pyproject_dependency_has_a_lower_bound_only():
    for req in PYPROJECT["project"]["dependencies"]:
        name, spec = split_requirement(req)
        assert spec.startswith(">=") and "<" not in spec and "==" not in spec, f"{name}: {spec}"


def test_ci_runs_the_readme_test_command_then_the_colab_twin():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    ci = [line.strip() for line in lines if line and not line.startswith("#")]
    assert ci[-3:] == ["make test", "make test-colab", "make test-hub"]


def test_readme_badges_come_from_the_one_repository_address():
    sys.path.insert(0, str(ROOT / "scripts"))
    import build_notebooks

    readme = (ROOT / "README.md").read_text()
    assert build_notebooks.binder_url() in readme
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    assert len(notebooks) >= 4
    for nb in notebooks:
        assert build_notebooks.colab_url(nb) in readme, f"no Colab badge for {nb}"


def test_the_teachers_guide_links_every_handout_on_colab_and_binder():
    sys.path.insert(0, str(ROOT / "scripts"))
    import build_notebooks

    guide = (ROOT / "docs" / "teaching.md").read_text()
    assert "docs/teaching.md" in (ROOT / "README.md").read_text(), "the README links the teacher's guide"
    for nb in sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb")):
        assert build_notebooks.colab_url(nb, "handouts") in guide, f"no Colab hand-out link for {nb}"
        assert build_notebooks.binder_url(nb, "handouts") in guide, f"no Binder hand-out link for {nb}"
        assert (ROOT / "handouts" / nb).exists()
