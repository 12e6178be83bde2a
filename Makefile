# The two commands a new user types (see README.md):
#   make lab    install what learners need into .venv and open the series in JupyterLab
#   make test   install that and the test tools, then lint and run every test (pytest, nbval)
# A second run installs nothing: the stamp file is named after a hash of the dependency files.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PORT   ?= 8888
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 300

.PHONY: install install-lab lab test test-half test-fast test-colab test-hub colab-pins lock notebooks check-notebooks check-setup device-check benchmarks wheelhouse clean

# The installer is scripts/install.py (standard library only), so a learner without make runs the
# same steps: `python scripts/install.py lab` (Windows: `py scripts/install.py lab`). It picks the
# torch build for the machine (CPU-only on Linux without an NVIDIA GPU), installs everything under
# requirements/lock.txt, reads wheelhouse/ alone when it holds wheels (a workshop's USB copy), and
# does nothing when a stamp file named after the dependency files' content says it is done.
# `install-lab` is what learners need; `install` adds the test and developer tools.
#
# pip would compile every installed module to bytecode, one file after another: about two
# minutes of one core, mostly for modules nothing here imports. The installer passes --no-compile
# and Python writes each module's bytecode the first time something imports it. Where the
# environment sets PYTHONDONTWRITEBYTECODE (as CI machines often do), that would mean recompiling
# torch and transformers in every process, so make's recipes run without it.
unexport PYTHONDONTWRITEBYTECODE

install:
	$(PYTHON) scripts/install.py install --for test --venv $(VENV)

install-lab:
	$(PYTHON) scripts/install.py install --for lab --venv $(VENV)

# NOTEBOOKS=handouts opens the notebooks without their solutions (a workshop's hand-outs).
NOTEBOOKS ?= notebooks
lab: install-lab
	$(VENV)/bin/jupyter lab --notebook-dir=$(NOTEBOOKS) --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root,)

LINTED := nnlib tests scripts benchmarks

# Everything: lint, then every test (slow and browser ones included) and nbval on every notebook.
# Two workers, one per core, each test file (and each notebook) kept on one worker; torch uses one
# thread per worker so the two do not fight over the cores; the notebooks, the longest items,
# are handed out first, so neither worker is left with one of them at the end. Then the
# notebooks that run a Llama again in half precision (NNLIB_DTYPE), as a CUDA (bfloat16) or Mac
# (float16) learner runs them.
# 03b is left out of those reruns to keep `make test` within ten minutes: a third of its minute is
# transformers reading the GGUF in float32 whatever the dtype, and its half-precision checks are
# also a test (test_llama_gguf.py, ..._in_half_precision_...). `make test-half` reruns all four.
HALF_NOTEBOOKS := $(wildcard notebooks/03_*.ipynb notebooks/04*_*.ipynb notebooks/05*_*.ipynb)
ALL_HALF_NOTEBOOKS := $(wildcard notebooks/03*_*.ipynb notebooks/04*_*.ipynb notebooks/05*_*.ipynb)
PYTEST_2 := OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile
# Two workers again, one per dtype (xdist's env: spec), each running every notebook given
# (--dist each): a failure's [gw0] is bfloat16, [gw1] float16.
PYTEST_HALF := OMP_NUM_THREADS=1 $(PY) -m pytest --dist each \
	--tx 'popen//env:NNLIB_DTYPE=bfloat16' --tx 'popen//env:NNLIB_DTYPE=float16'

test: install
	$(PY) -m ruff check $(LINTED)
	bash scripts/ensure_chromium.sh
	$(PYTEST_2) -m "not hub" $(NBVAL) notebooks tests
	$(PYTEST_HALF) -q $(NBVAL) $(HALF_NOTEBOOKS)

# The series as Colab runs it: Colab's own package versions (tests/colab/pip-freeze.txt) in a twin
# venv, the notebooks' set-up cell run there as on Colab (it must change none of them), then nbval
# on every notebook in the twin. CI runs it after `make test`; see tests/colab/README.md.
test-colab: install
	$(PY) scripts/colab_twin.py

# The hosted fallback of docs/jupyterhub.md, tried: JupyterHub on loopback with three simulated
# learners running notebook 04 at once through their own servers; writes the sizing measurements
# to test-artifacts/jupyterhub-sizing.json. JupyterHub's proxy comes from npm, into .hub-proxy/.
HUB_PROXY := .hub-proxy/node_modules/.bin
test-hub: install
	@test -x $(HUB_PROXY)/configurable-http-proxy || npm install --silent --prefix .hub-proxy configurable-http-proxy@5.3.0
	PATH="$(CURDIR)/$(HUB_PROXY):$$PATH" NNLIB_HUB_TEST=1 OMP_NUM_THREADS=1 $(PY) -m pytest -m hub tests/test_jupyterhub.py -v

# Rewrite requirements/colab.txt from what the set-up cell adds in the twin (after a new Colab list).
colab-pins: install
	$(PY) scripts/colab_twin.py --update-pins --no-notebooks

# Rewrite requirements/lock.txt: a fresh venv, the set-up path without constraints, pip freeze.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q -r requirements/setup.txt
	.lock-venv/bin/pip install -q -e '.[lab,test,dev]' -r requirements/ja.txt
	.lock-venv/bin/python scripts/write_lock.py .lock-venv/bin/python requirements/lock.txt
	rm -rf .lock-venv

# Every notebook that runs a Llama (03b included) in both half precisions, under nbval.
test-half: install
	$(PYTEST_HALF) -q $(NBVAL) $(ALL_HALF_NOTEBOOKS)

# The quick loop while working on nnlib: lint, pytest without the slow and browser tests, no nbval.
test-fast: install
	$(PY) -m ruff check $(LINTED)
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 tests -q -m "not slow and not browser"

# Sync each notebook with its paired source (jupytext: the newer file wins), then execute them
# all from notebooks/src/ and write them with their outputs. NB=01 builds one. One torch thread,
# as under make test's nbval: more threads add sums in another order (model.Linear), and the
# committed outputs are what nbval compares.
notebooks: install
	$(VENV)/bin/jupytext --sync notebooks/src/[0-9][0-9]*_*.py
	OMP_NUM_THREADS=1 $(PY) scripts/build_notebooks.py $(NB)

# Which committed notebooks no longer match their sources (exit 1 if any).
check-notebooks: install
	$(PY) scripts/build_notebooks.py --check

# The pre-flight a teacher sends out: runs on a bare Python, before (and after) the install.
check-setup:
	$(PYTHON) scripts/check_setup.py --venv $(VENV)

# On a machine with a CUDA GPU or an Apple MPS device: each shipped model on the device against
# CPU float32, the seed's torchrun command and notebooks 03, 03b, 04 and 05 under nbval there
# (exit 0 without one).
device-check: install
	$(PY) scripts/device_check.py

benchmarks: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# A room's wheelhouse: every wheel a learner's install needs, for each platform and Python the
# room has, in one folder (see scripts/wheelhouse.py and docs/teaching.md).
wheelhouse:
	$(PYTHON) scripts/wheelhouse.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
