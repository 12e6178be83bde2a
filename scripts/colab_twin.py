"""``make test-colab``: the series as Colab runs it, tested here.

What it is: it builds ``.colab-twin/``, a virtual environment holding Colab's own versions
(``tests/colab/pip-freeze.txt``, Google's published list) of every package the series uses;
copies the project into ``.colab-twin/content/sgd-to-llama`` as the set-up cell's ``git clone``
would; runs the notebooks' own set-up cell there with ``google.colab`` present, so it takes its
Colab branch; checks that the cell added packages and changed none Colab had (ipywidgets 7.7.1
above all: Colab's front end does not draw ipywidgets 8); and runs every notebook under nbval
in the twin, with the widgets' own tests. See tests/colab/README.md for what stands in for what.

What it is not: Colab's front end. The twin proves the kernel side (versions, the set-up cell,
every cell's output); the browser test covers the widgets' views in JupyterLab.

    python scripts/colab_twin.py                # build, set up, check, run the notebooks
    python scripts/colab_twin.py --no-notebooks # build, set up, check only
    python scripts/colab_twin.py --update-pins  # rewrite requirements/colab.txt from what the cell added
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from colab_setup import COLAB_PINS, added, changed, installed, normalize, read_pins  # noqa: E402

FREEZE = ROOT / "tests" / "colab" / "pip-freeze.txt"
TWIN = ROOT / ".colab-twin"
NAME = "sgd-to-llama"  # the folder the set-up cell clones into (build_notebooks.colab_cell)
#: Colab packages installed by URL (not on the package index): the stand-in version, or None to
#: leave the package out of the twin. tests/colab/README.md says why for each.
STAND_INS = {"torch": "2.13.0", "torchvision": None, "torchaudio": None, "torchcodec": None,
             "en-core-web-sm": None, "google-colab": None, "jupyter-kernel-gateway": None}
#: Colab versions the twin cannot hold, with why: left out of the twin's constraints.
UNHELD = {"setuptools": "torch 2.13 (the stand-in) needs setuptools >= 77; Colab has 75.2 for its torch 2.11"}
#: Colab packages the series' kernels use beyond nnlib's own dependencies: pip (which runs the
#: set-up), the kernel itself, the widgets' Python and front-end halves, and pytest (Colab has it).
KERNEL_PACKAGES = ["pip", "ipykernel", "ipython", "jupyter-client", "widgetsnbextension",
                   "jupyterlab-widgets", "nbformat", "pytest"]
#: The packages the twin's tests need that Colab lacks; installed after the check, holding the rest.
TEST_TOOLS = ["nbval", "pytest-xdist", "hypothesis"]
#: Besides every notebook: the widgets' and progress bars' own tests, on Colab's ipywidgets 7.
TWIN_TESTS = ["tests/test_widgets_generation.py", "tests/test_widgets_sentence.py",
              "tests/test_widgets_sgd.py", "tests/test_progress.py"]


def colab_versions(freeze_text: str) -> dict[str, str]:
    """``{normalized name: version}`` from a ``pip freeze``: ``name==version`` lines as they are,
    ``name @ url`` lines through ``STAND_INS`` (an unknown URL install is an error to decide on)."""
    versions = {}
    for line in freeze_text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "==" in line:
            name, version = line.split("==", 1)
            versions[normalize(name)] = version.strip()
        elif " @ " in line:
            name = normalize(line.split(" @ ", 1)[0])
            if name not in STAND_INS:
                raise ValueError(f"{FREEZE.name}: {line[:80]!r} is installed from a URL; add "
                                 f"{name!r} to STAND_INS in {Path(__file__).name} with a version "
                                 "from the package index to stand in for it, or None to leave it out.")
            if STAND_INS[name]:
                versions[name] = STAND_INS[name]
        else:
            raise ValueError(f"{FREEZE.name}: cannot read the line {line[:80]!r}")
    return versions


def series_packages(pyproject_text: str) -> list[str]:
    """The normalized names of nnlib's dependencies (``[project] dependencies``)."""
    deps = tomllib.loads(pyproject_text)["project"]["dependencies"]
    return [normalize(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in deps]


def run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def twin_python() -> str:
    return str(TWIN / "bin" / "python")


def build_twin(colab: dict[str, str]) -> list[str]:
    """Create the venv and install Colab's versions of what the series uses; returns the names."""
    if TWIN.exists():
        shutil.rmtree(TWIN)
    run([sys.executable, "-m", "venv", str(TWIN)])
    wanted = [n for n in series_packages((ROOT / "pyproject.toml").read_text()) + KERNEL_PACKAGES
              if n in colab]
    constraints = TWIN / "colab-constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(colab.items()) if n not in UNHELD))
    pip = [twin_python(), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check"]
    run(pip + ["-c", str(constraints)] + wanted)
    return wanted


def copy_project(dest: Path) -> None:
    """The files a ``git clone`` of this working tree would hold (tracked, plus new files git does
    not ignore), so uncommitted work is tested too."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_setup_cell(content: Path) -> None:
    """The first code cell of notebook 01, run by the twin's Python in Colab's working folder,
    with ``google.colab`` imported as it is in every Colab kernel, and ``pip`` meaning the twin's."""
    import build_notebooks

    (content / "setup_cell.py").write_text(build_notebooks.colab_cell() + "\n")
    bootstrap = ("import sys, types; sys.modules['google.colab'] = types.ModuleType('google.colab'); "
                 "exec(compile(open('setup_cell.py').read(), 'setup_cell', 'exec'))")
    env = {**os.environ, "PATH": f"{TWIN / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    run([twin_python(), "-c", bootstrap], cwd=content, env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-notebooks", action="store_true", help="stop after the set-up check")
    parser.add_argument("--update-pins", action="store_true",
                        help="write what the set-up cell added to requirements/colab.txt")
    args = parser.parse_args(argv)

    colab = colab_versions(FREEZE.read_text())
    build_twin(colab)
    before = installed(twin_python())
    wrong = {n: (v, colab[n]) for n, v in before.items()
             if n in colab and colab[n] != v.split("+")[0] and n not in UNHELD}
    if wrong:
        print(f"the twin does not hold Colab's versions: {wrong}", file=sys.stderr)
        return 1
    content = TWIN / "content"
    project = content / NAME
    project.mkdir(parents=True)
    copy_project(project)
    run_setup_cell(content)
    after = installed(twin_python())
    (TWIN / "report.json").write_text(json.dumps({"before": before, "after": after}, indent=1))

    moved = changed(before, after)
    new = {n: v for n, v in added(before, after).items() if n != "nnlib"}
    model_wheels = {normalize(line.split("==")[0]) for line in
                    (ROOT / "requirements" / "models.txt").read_text().splitlines()
                    if "==" in line and not line.startswith("#")}
    print(f"Colab twin: the set-up cell added {len(new)} packages: "
          + ", ".join(f"{n} {v}" for n, v in sorted(new.items())))
    if args.update_pins:
        pins = {n: v for n, v in new.items() if n not in model_wheels}
        header = [line for line in COLAB_PINS.read_text().splitlines() if line.startswith("#")]
        COLAB_PINS.write_text("\n".join(header + [f"{n}=={v}" for n, v in sorted(pins.items())]) + "\n")
        print(f"wrote {COLAB_PINS.relative_to(ROOT)}")
    problems = []
    if moved:
        problems.append("the set-up cell changed packages Colab preinstalls: "
                        + ", ".join(f"{n} {a} -> {b or 'removed'}" for n, (a, b) in sorted(moved.items())))
    unpinned = {n: v for n, v in new.items()
                if n not in model_wheels and read_pins(COLAB_PINS).get(n) != v}
    if unpinned:
        problems.append("the set-up cell added versions requirements/colab.txt does not pin (run "
                        "`make colab-pins` to record them after checking the twin passes): "
                        + ", ".join(f"{n} {v}" for n, v in sorted(unpinned.items())))
    for problem in problems:
        print("FAIL:", problem, file=sys.stderr)
    print(f"set-up check: {0 if problems else 1} passed, {len(problems)} failed")
    if problems or args.no_notebooks:
        return 1 if problems else 0

    # nbval and xdist, held to what is installed now so the notebooks run on Colab's versions.
    held = TWIN / "after-constraints.txt"
    held.write_text("".join(f"{n}=={v}\n" for n, v in sorted(after.items()) if n != "nnlib"))
    run([twin_python(), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
         "-c", str(held)] + TEST_TOOLS)
    still = changed(after, installed(twin_python()))
    if still:
        print(f"FAIL: installing {TEST_TOOLS} changed {still}", file=sys.stderr)
        return 1
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    env.pop("NNLIB_DTYPE", None)
    env.pop("NNLIB_DEVICE", None)
    result = subprocess.run(
        [twin_python(), "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile",
         "--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
         "--nbval-cell-timeout", "300", "notebooks", *TWIN_TESTS], cwd=project, env=env)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
