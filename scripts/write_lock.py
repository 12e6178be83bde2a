"""Write requirements/lock.txt from a venv's ``pip freeze`` (``make lock``).

    python scripts/write_lock.py VENV_PYTHON requirements/lock.txt

Editable installs (nnlib itself) and URL installs are left out; torch's local label (``+cpu``) is
dropped, so the pin also fits a Mac's or a CUDA machine's build of the same version.
"""
from __future__ import annotations

import datetime
import platform
import re
import subprocess
import sys
from pathlib import Path

HEADER = """\
# The exact versions `make lab` and `make test` install (pip constraints), and so the versions the
# test suite tests; Binder's postBuild installs with the same constraints.
# Made by `make lock` (a fresh venv, no constraints, then pip freeze) on {system}, Python {python},
# on {date}. torch's local label (+cpu) is left out so the pin also fits other platforms.
"""


def lock_lines(freeze: str) -> list[str]:
    """The ``name==version`` lines of a ``pip freeze``, local labels of torch removed."""
    lines = []
    for line in freeze.splitlines():
        if "==" not in line or line.startswith(("-e", "#")) or " @ " in line:
            continue
        lines.append(re.sub(r"^(torch==[^+]+)\+\w+$", r"\1", line.strip()))
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    python, out = argv
    freeze = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], check=True,
                            capture_output=True, text=True).stdout
    header = HEADER.format(system=f"{platform.system()} {platform.machine()}",
                           python=platform.python_version(), date=datetime.date.today().isoformat())
    Path(out).write_text(header + "\n".join(lock_lines(freeze)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
