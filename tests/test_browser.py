"""Real-browser test: Playwright drives Debian's Chromium against a JupyterLab on a free local port.

What it is: the check that the notebooks and their widgets work where learners meet them, in a
browser. A headless kernel test (nbval, tests/test_widgets_*.py) proves the Python side; only a
browser shows that widget views load, that displacy's SVG and the plots render, and that a slider
moved by a person reaches the kernel and comes back as a new picture.

What it is not: a pixel comparison. Screenshots are saved under ``test-artifacts/`` for a person to
look at; the assertions compare the page with itself (before and after a slider moves) or with the
committed notebook (how many plots and displacy pictures it should show).

Chromium: Playwright's own browser download is not reachable from our machines, so the test uses
Debian's package at /usr/bin/chromium (``scripts/ensure_chromium.sh`` installs it, ``make test``
runs that first), else ``chromium`` on the PATH, or the file named by ``NNLIB_CHROMIUM``.
Without it the tests skip, unless the environment variable ``CI`` is set, where a missing browser
is a failure.

JupyterLab runs from this Python (``sys.executable -m jupyter lab``) on a copy of ``notebooks/``
in a temporary folder, with its own settings, workspace and runtime folders, so a run never
changes the repository's notebooks nor a user's JupyterLab set-up.

What runs where (nbval has already executed every notebook in a kernel in the same ``make test``):
notebook 01 runs top to bottom in the browser, widget included; for 02 and 04 the browser runs an
*excerpt*: the cells that build the widget (and 02's displaCy pictures) together with the cells
they need, taken from the committed notebook itself and written next to it in the temporary lab;
every other committed notebook is opened without a kernel and must show its saved outputs. One
page with JupyterLab loaded serves every test; each closes its tab (and kernel) when done.
"""
from __future__ import annotations

import ast
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks  # noqa: E402  (its WIDGET_PLACEHOLDER marks a committed widget)

NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("NNLIB_CHROMIUM")
                or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
                or shutil.which("chromium") or "/usr/bin/chromium")

SERVER_START_TIMEOUT_S = 120
RUN_ALL_TIMEOUT_S = 240      # one notebook, top to bottom, on 2 busy cores
WIDGET_TIMEOUT_MS = 60_000   # one slider move or step coming back from the kernel


def _unavailable(reason: str) -> None:
    """Skip, or fail under CI, where the browser test must run rather than quietly skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser test must run).")
    pytest.skip(reason)


def _notebook(prefix: str) -> Path:
    """The committed notebook ``notebooks/<prefix>_*.ipynb``, or a skip while it does not exist."""
    found = sorted(NOTEBOOKS.glob(f"{prefix}_*.ipynb"))
    if not found:
        pytest.skip(f"notebooks/{prefix}_*.ipynb does not exist yet; build it with "
                    f"'python scripts/build_notebooks.py {prefix}' to run this browser test.")
    return found[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- fixtures: one JupyterLab and one Chromium for the whole session --------------------------


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"{CHROMIUM} not found: run 'bash scripts/ensure_chromium.sh' as root "
                     "(or 'apt-get install chromium') to run the browser tests.")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is missing: pip install -e '.[test]'.")
    return CHROMIUM


@pytest.fixture(scope="session")
def lab(chromium_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Start ``jupyter lab`` on a copy of notebooks/; yield its base URL and token; stop it."""
    base = tmp_path_factory.mktemp("lab")
    root_dir = base / "notebooks"
    shutil.copytree(NOTEBOOKS, root_dir, ignore=shutil.ignore_patterns(
        "src", "_scratch", ".ipynb_checkpoints"))
    settings = base / "settings"
    # Every cell stays in the page ("none"), so counting outputs sees the whole notebook; no
    # news or update check, which would only add toasts over the screenshots.
    for name, values in {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                        "checkForUpdates": False},
    }.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(base / "config"),
               JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root_dir}", "--LabApp.expose_app_in_browser=True"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        command.append("--allow-root")
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "jupyter-lab.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=base, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with code {server.returncode} before it "
                            f"answered; its log is {log_path}.")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer on {url} within "
                                f"{SERVER_START_TIMEOUT_S} s; its log is {log_path}.")
                time.sleep(0.5)
        yield {"url": url, "token": token, "root_dir": str(root_dir)}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(chromium_path), headless=True,
                                              args=["--disable-dev-shm-usage"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser: Any, lab: dict[str, str]) -> Iterator[Any]:
    """One page with JupyterLab loaded, shared by every test here: loading JupyterLab costs
    seconds each time. Each test opens its notebook in a tab and closes it (``_close``)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(WIDGET_TIMEOUT_MS)
    try:
        page = context.new_page()
        _load_lab(page, lab)
        yield page
    finally:
        context.close()


# ---- driving JupyterLab ---------------------------------------------------------------------


def _load_lab(page: Any, lab: dict[str, str]) -> None:
    """Load JupyterLab in ``page`` with no tabs restored, and wait until it can open documents."""
    page.goto(f"{lab['url']}/lab?reset&token={lab['token']}")  # reset: no tabs restored
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=120_000)
    page.evaluate("async () => { await window.jupyterapp.restored; }")


def _open_panel(page: Any, notebook: Path, *, kernel: bool) -> Any:
    """Open ``notebook`` (a file in the lab's root) in the JupyterLab already loaded in ``page``,
    with its saved outputs, as ``window.__nnlibPanel``; return a locator for its panel.

    ``kernel=True`` waits for its kernel to be idle. ``kernel=False`` asks JupyterLab not to
    start one (``kernelPreference.shouldStart``), so nothing executes and no kernel's start-up is
    waited for: the notebook is what a learner sees before running anything.
    """
    opened = page.evaluate(
        """async ([path, kernel]) => {
            const app = window.jupyterapp;
            const panel = await app.commands.execute('docmanager:open', {
                path, factory: 'Notebook',
                kernelPreference: kernel ? {} : {shouldStart: false}});
            await panel.context.ready;
            await panel.sessionContext.ready;  // resolves once it has started a kernel or not
            app.shell.activateById(panel.id);
            window.__nnlibPanel = panel;
            const session = panel.sessionContext.session;
            return {id: panel.id, kernel: Boolean(session && session.kernel)};
        }""",
        [notebook.name, kernel])
    assert opened["kernel"] == kernel, (
        f"{notebook.name}: JupyterLab {'started no' if kernel else 'started a'} kernel.")
    if kernel:
        page.wait_for_function(
            "() => window.__nnlibPanel.sessionContext.session.kernel.status === 'idle'",
            timeout=120_000)
    return page.locator(f"[id='{opened['id']}']")


def _open_and_run_all(page: Any, notebook: Path) -> Any:
    """Open ``notebook`` in JupyterLab, clear its outputs, run all cells, wait for the kernel.

    Returns a locator for the notebook's panel. Fails with the first error output if a cell
    raised, read from the notebook model in the page.
    """
    panel = _open_panel(page, notebook, kernel=True)
    finished = page.evaluate(
        """async (timeoutMs) => {
            const app = window.jupyterapp;
            await app.commands.execute('notebook:clear-all-cell-outputs');
            const run = app.commands.execute('notebook:run-all-cells');
            const late = new Promise(resolve => setTimeout(() => resolve('timeout'), timeoutMs));
            return await Promise.race([run, late]);
        }""",
        RUN_ALL_TIMEOUT_S * 1000)
    assert finished != "timeout", (
        f"{notebook.name}: 'Run All Cells' did not finish within {RUN_ALL_TIMEOUT_S} s.")
    page.wait_for_function(
        """() => window.__nnlibPanel.sessionContext.session.kernel.status === 'idle'
                 && ![...window.__nnlibPanel.node.querySelectorAll('.jp-InputPrompt')]
                        .some(p => p.textContent.includes('*'))""",
        timeout=120_000)
    cells = page.evaluate(
        """() => {
            const cells = window.__nnlibPanel.content.model.cells;
            const out = [];
            for (let i = 0; i < cells.length; i++) {
                const cell = cells.get(i).toJSON();
                if (cell.cell_type === 'code') out.push(cell);
            }
            return out;
        }""")
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                trace = "\n".join(output.get("traceback", []))[-2000:]
                source = "".join(cell["source"])  # an excerpt's index is not the notebook's
                pytest.fail(f"{notebook.name}: code cell {index} raised "
                            f"{output.get('ename')}: {output.get('evalue')}\n{trace}\n"
                            f"The cell:\n{source}")
    not_run = [i for i, cell in enumerate(cells)
               if cell.get("execution_count") is None and "".join(cell["source"]).strip()]
    assert not not_run, f"{notebook.name}: code cells {not_run} did not run (Run All stopped?)."
    assert finished is True, f"{notebook.name}: 'Run All Cells' reported a failure."
    # An error could also be printed by the front end (a widget that failed to load, say).
    tracebacks = panel.locator(".jp-OutputArea-output",
                               has_text="Traceback (most recent call last)")
    assert tracebacks.count() == 0, (
        f"{notebook.name}: an output shows a traceback: {tracebacks.first.inner_text()[:2000]}")
    broken_widgets = panel.get_by_text("Error displaying widget")
    assert broken_widgets.count() == 0, f"{notebook.name}: a widget view failed to load."
    return panel


def _close(page: Any) -> None:
    """Stop the open notebook's kernel, so the next notebook does not share 2 cores with it, and
    close its tab without asking to save (the lab's copy is thrown away). A dialog left open by a
    failure (a dead kernel, say) is dismissed, so it cannot cover the next test's widgets."""
    try:
        for _ in range(3):
            if not page.locator(".jp-Dialog").count():
                break
            page.keyboard.press("Escape")
        page.evaluate("""async () => {
            const panel = window.__nnlibPanel;
            window.__nnlibPanel = undefined;
            if (!panel) return;
            if (panel.sessionContext.session) await panel.sessionContext.shutdown();
            panel.dispose();
        }""")
    except Exception:  # the page may already be gone after a failure; the server stops it later
        pass


def _committed_outputs(notebook: Path) -> list[dict]:
    """The outputs saved in the committed notebook: what a run is expected to show."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [output for cell in cells for output in cell.get("outputs", [])]


def _count_committed(notebook: Path, mime: str, contains: str = "") -> int:
    count = 0
    for output in _committed_outputs(notebook):
        data = output.get("data", {}).get(mime)
        if data is not None:
            text = data if isinstance(data, str) else "".join(data)
            count += contains in text
    return count


def _assert_plots_render(page: Any, panel: Any, notebook: Path, stem: str) -> None:
    """Every PNG the committed notebook shows is drawn again, and decoded, in the browser."""
    expected = _count_committed(notebook, "image/png")
    images = panel.locator(".jp-OutputArea-output img")
    if expected:
        images.nth(expected - 1).wait_for(state="attached")
    shown = images.count()
    assert shown >= expected, (
        f"{notebook.name}: the committed notebook shows {expected} plots, the browser {shown}.")
    decoded = "imgs => imgs.map(img => img.complete ? img.naturalWidth : 0)"
    widths = images.evaluate_all(decoded)
    deadline = time.monotonic() + 10  # data-URI PNGs decode in milliseconds; allow a busy machine
    while not all(width > 0 for width in widths) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        widths = images.evaluate_all(decoded)
    assert all(width > 0 for width in widths), (
        f"{notebook.name}: a plot image did not decode in the browser (widths {widths}).")
    if shown:
        images.first.scroll_into_view_if_needed()
        images.first.screenshot(path=ARTIFACTS / f"{stem}_first_plot.png")
        page.screenshot(path=ARTIFACTS / f"{stem}_page.png")


# ---- excerpts: the cells a widget needs, taken from the committed notebook -----------------


class _TopLevelNames(ast.NodeVisitor):
    """The names a cell binds at the notebook's top level (assignments, imports, ``def``,
    ``class``, loop and ``with`` targets) and every name it reads, anywhere in the cell.

    Names bound inside a function, lambda, class body or comprehension are local to it and are not
    counted as bound; reads inside them are (a function's body reads the notebook's globals).
    """

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.read: set[str] = set()
        self._depth = 0  # > 0 inside a scope of its own

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.read.add(node.id)
        elif self._depth == 0:
            self.bound.add(node.id)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        if self._depth == 0:  # ``import a.b`` binds ``a``
            self.bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)

    visit_ImportFrom = visit_Import

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):  # ``x += 1`` reads x before it binds it
            self.read.add(node.target.id)
        self.generic_visit(node)

    def _scope(self, node: ast.AST) -> None:
        if self._depth == 0 and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                  ast.ClassDef)):
            self.bound.add(node.name)
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _scope
    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _scope


def _cells_needed(sources: list[str], targets: Iterable[int]) -> list[int]:
    """Indices of the ``targets`` and of every cell they need, in notebook order.

    A cell needs, for each name it reads, the last cell above it that binds that name (even when
    the cell binds it too: ``x = f(x)`` reads the earlier x), and what that cell needs in turn.
    Names no cell binds are builtins. A cell that only changes an object in place
    (``nlp.add_pipe(...)``) binds nothing and is not taken: an excerpt shows the objects as the
    cells that made them left them.
    """
    names = []
    for index, source in enumerate(sources):
        visitor = _TopLevelNames()
        try:
            visitor.visit(ast.parse(source))
        except SyntaxError as err:
            pytest.fail(f"code cell {index} is not plain Python ({err}); the browser test reads "
                        "the cells' names to pick a widget's cells and cannot read this one.")
        names.append(visitor)
    needed: set[int] = set()
    todo = list(targets)
    while todo:
        index = todo.pop()
        if index in needed:
            continue
        needed.add(index)
        for name in names[index].read:
            binders = [i for i in range(index) if name in names[i].bound]
            if binders:
                todo.append(binders[-1])
    return sorted(needed)


def _shows(cell: dict, mime: str, contains: str = "") -> bool:
    """Whether the committed ``cell`` has an output of type ``mime`` (holding ``contains``)."""
    for output in cell.get("outputs", []):
        data = output.get("data", {}).get(mime)
        if data is not None and contains in (data if isinstance(data, str) else "".join(data)):
            return True
    return False


def _widget_cells(cells: list[dict], widget_class: str) -> list[int]:
    """The first cell that calls ``widget_class(...)`` and the first cell from there on whose
    committed output is a widget's placeholder (build_notebooks keeps no widget views in a committed
    notebook; see ``drop_widget_state``): where the notebook builds the widget and shows it."""
    code = [i for i, cell in enumerate(cells) if cell["cell_type"] == "code"]
    built = next((i for i in code if f"{widget_class}(" in "".join(cells[i]["source"])), None)
    if built is None:
        pytest.fail(f"no code cell calls {widget_class}(...); the browser test looks for the "
                    "cell that builds it to run it in JupyterLab.")
    shown = next((i for i in code if i >= built
                  and _shows(cells[i], "text/plain", build_notebooks.WIDGET_PLACEHOLDER)), None)
    if shown is None:
        pytest.fail(f"no cell from code cell {built} on shows a widget in its committed output; "
                    "rebuild the notebook (scripts/build_notebooks.py) so it shows "
                    f"the {widget_class}.")
    return sorted({built, shown})


def _displacy_cells(cells: list[dict]) -> list[int]:
    """The cells whose committed output is a displaCy picture (dependency arcs or entities)."""
    return [i for i, cell in enumerate(cells)
            if _shows(cell, "text/html", 'class="displacy"')
            or _shows(cell, "text/html", 'class="entities"')]


def _write_excerpt(notebook: Path, lab: dict[str, str], targets: list[int], name: str) -> Path:
    """Write into the lab's root a notebook of ``notebook``'s cells ``targets`` and the cells they
    need (see ``_cells_needed``), verbatim and with their committed outputs, so that the checks
    which count a run's pictures against the committed ones apply to it as to a whole notebook.
    Markdown cells are left out: they do not run."""
    content = json.loads(notebook.read_text(encoding="utf-8"))
    cells = content["cells"]
    sources = ["".join(cell["source"]) if cell["cell_type"] == "code" else "" for cell in cells]
    content["cells"] = [cells[i] for i in _cells_needed(sources, targets)]
    excerpt = Path(lab["root_dir"]) / name
    excerpt.write_text(json.dumps(content, indent=1), encoding="utf-8")
    return excerpt


def test_excerpt_takes_the_last_binding_above_and_what_it_needs() -> None:
    """The excerpt picker on cells written by hand (no browser): a name read comes from the last
    cell above that binds it; names local to a function or comprehension bind nothing."""
    sources = ["import os.path",                              # 0 binds os
               "x = 1",                                       # 1
               "def f(a):\n    y = a + x\n    return y",     # 2 binds f (y is local), reads x
               "x = 2",                                       # 3 binds x again
               "y = [z for z in range(3)]",                   # 4 binds y only
               "z = 5",                                       # 5
               "print(f(x), os.sep)"]                         # 6 the target
    # 6 reads f (cell 2), x (cell 3, the last above 6) and os (cell 0); cell 2 reads x, which
    # above cell 2 is cell 1. Cells 4 and 5 are not needed.
    assert _cells_needed(sources, [6]) == [0, 1, 2, 3, 6]
    assert _cells_needed(sources, [4]) == [4]
    # A cell that rebinds a name from its old value needs the cell that made the old value.
    assert _cells_needed(["n = 1", "n += 1", "print(n)"], [2]) == [0, 1, 2]
    assert _cells_needed(["m = [1]", "m = m + [2]", "print(m)"], [2]) == [0, 1, 2]


# ---- notebook 01 runs top to bottom in the browser, widget included ------------------------


def test_notebook_runs_in_jupyterlab_without_errors(request: pytest.FixtureRequest) -> None:
    """Notebook 01, the quickest, runs whole in JupyterLab: no cell raises, every plot is drawn
    again, and its LearningRateExplorer answers a slider."""
    notebook = _notebook("01")  # skip before starting JupyterLab for a notebook not yet built
    page = request.getfixturevalue("page")
    try:
        panel = _open_and_run_all(page, notebook)
        _assert_plots_render(page, panel, notebook, notebook.stem)
        _check_learning_rate_explorer(page, panel, notebook)
    finally:
        _close(page)


# ---- every committed notebook renders as saved, without a kernel ---------------------------


# 01 runs whole above, so its plots are drawn there; every other committed notebook is opened here.
COMMITTED = tuple(sorted(prefix for path in NOTEBOOKS.glob("[0-9]*_*.ipynb")
                         if (prefix := path.name.split("_")[0]) != "01"))


@pytest.mark.parametrize("prefix", COMMITTED)
def test_committed_notebook_renders_in_jupyterlab(prefix: str, request: pytest.FixtureRequest) -> None:
    """A notebook as committed (executed, with outputs) opens in JupyterLab with every plot
    drawn and no traceback: what a learner sees before running anything. No kernel starts.
    (displaCy's inline SVG is not checked here: JupyterLab sanitises the HTML of a notebook it has
    not run, until the learner trusts or runs it; 02's excerpt below checks it live.)"""
    notebook = _notebook(prefix)
    page = request.getfixturevalue("page")
    try:
        panel = _open_panel(page, notebook, kernel=False)
        _assert_plots_render(page, panel, notebook, notebook.stem)
        tracebacks = panel.locator(".jp-OutputArea-output", has_text="Traceback (most recent call last)")
        assert tracebacks.count() == 0, f"{notebook.name}: a committed output shows a traceback."
    finally:
        _close(page)


def _check_learning_rate_explorer(page: Any, panel: Any, notebook: Path) -> None:
    """Notebook 01's widget: typing a new eta into its slider retrains and redraws the curves."""
    explorer = panel.locator(".jp-OutputArea-output",
                             has=page.locator(".widget-slider", has_text="eta")).first
    assert explorer.count() == 1, f"{notebook.name}: the LearningRateExplorer is not shown."
    curves = explorer.locator(".widget-output").first
    curves.locator("img").first.wait_for()
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=ARTIFACTS / f"{notebook.stem}_explorer_0_start.png")
    before = _fingerprint(curves)
    _set_slider(page, explorer.locator(".widget-slider", has_text="eta").first, 0.1)
    _wait_changed(page, curves, before, "the learning curves after moving eta to 0.1")
    explorer.screenshot(path=ARTIFACTS / f"{notebook.stem}_explorer_1_eta.png")


# ---- notebook 04: the GenerationExplorer answers a person's sliders and clicks ---------------


def _set_slider(page: Any, widget: Any, value: float) -> str:
    """Type ``value`` into an ipywidgets slider's readout, as a person would; return the readout."""
    readout = widget.locator(".widget-readout")
    readout.scroll_into_view_if_needed()
    readout.fill(f"{value:g}")
    readout.press("Enter")
    page.wait_for_function(
        "([el, want]) => Math.abs(parseFloat(el.textContent) - want) < 1e-6",
        arg=[readout.element_handle(), value])
    return readout.inner_text()


def _drag_slider(page: Any, widget: Any, fraction: float) -> str:
    """Drag an ipywidgets slider's handle with the mouse to ``fraction`` of its track; return the
    readout once it shows a new value."""
    handle, track = widget.locator(".noUi-handle").first, widget.locator(".noUi-base").first
    readout = widget.locator(".widget-readout")
    handle.scroll_into_view_if_needed()
    before = readout.inner_text()
    start, base = handle.bounding_box(), track.bounding_box()
    y = start["y"] + start["height"] / 2
    page.mouse.move(start["x"] + start["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(base["x"] + fraction * base["width"], y, steps=8)
    page.mouse.up()
    page.wait_for_function("([el, old]) => el.textContent.trim() !== old.trim()",
                           arg=[readout.element_handle(), before])
    return readout.inner_text()


def _click(widget: Any) -> None:
    """Click an ipywidgets Button (its element is the <button> itself, or holds one)."""
    (widget.locator("button") if widget.locator("button").count() else widget).click()


def _fingerprint(element: Any) -> tuple[str, bytes]:
    """What the element shows: its markup (img src, svg) and its pixels."""
    return element.inner_html(), element.screenshot()


def _wait_changed(page: Any, element: Any, before: tuple[str, bytes], what: str) -> None:
    """Wait until ``element`` looks different from ``before``, then until it stops changing
    (an Output widget is briefly empty while it redraws); fail after ``WIDGET_TIMEOUT_MS``."""
    deadline = time.monotonic() + WIDGET_TIMEOUT_MS / 1000
    while _fingerprint(element)[1] == before[1]:
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not change within {WIDGET_TIMEOUT_MS // 1000} s.")
        page.wait_for_timeout(250)
    last = _fingerprint(element)
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        now = _fingerprint(element)
        if now == last:
            return
        last = now


def _chart_reading(bars: Any) -> dict[str, Any]:
    """What the explorer's HTML chart shows as Chromium laid it out: the rows and which are kept,
    the cut's row, u, and the rendered pixel widths of the bars (zero if styles were lost)."""
    return bars.evaluate("""el => {
        const rows = [...el.querySelectorAll('[data-row]')];
        const cut = el.querySelector('[data-role=cut]');
        const u = el.querySelector('[data-role=u]');
        const cumulative = el.querySelector('[data-role=cumulative]');
        return {
            labels: rows.map(r => r.firstElementChild.textContent),
            kept: rows.map(r => r.dataset.kept === '1'),
            chosen: rows.findIndex(r => r.dataset.chosen === '1'),
            p: [...el.querySelectorAll('[data-row] [data-p]')].map(b => parseFloat(b.dataset.p)),
            px: [...el.querySelectorAll('[data-row] [data-p]')]
                    .map(b => b.getBoundingClientRect().width),
            cut_after: cut ? parseInt(cut.dataset.after) : null,
            u: u ? parseFloat(u.dataset.u) : null,
            cumulative_px: cumulative ? cumulative.getBoundingClientRect().width : 0,
            title: (el.querySelector('[data-role=title]') || {}).textContent,
        };
    }""")


def _assert_chart_drawn(chart: dict[str, Any], what: str) -> None:
    """The chart is laid out: one chosen row, bars as wide as their values (in proportion)."""
    assert chart["labels"] and chart["chosen"] >= 0, f"{what}: the chart shows no candidates."
    assert chart["cumulative_px"] > 300, f"{what}: the cumulative bar is not laid out."
    top = max(range(len(chart["p"])), key=lambda i: chart["p"][i])
    for p, px in zip(chart["p"], chart["px"]):  # widths in the ratio of the values, to 1.5 px
        assert abs(px - chart["px"][top] * p / chart["p"][top]) < 1.5, f"{what}: {chart}"


def test_generation_explorer_answers_sliders_and_step(request: pytest.FixtureRequest) -> None:
    """Notebook 04's GenerationExplorer, built by the notebook's own cells (its imports, the
    model, the prompt, the widget cell) run in JupyterLab, answers sliders, the sampler menu, step,
    branch and back one. (The rest of 04 runs under nbval; its committed outputs render above.)"""
    notebook = _notebook("04")
    lab, page = request.getfixturevalue("lab"), request.getfixturevalue("page")
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    excerpt = _write_excerpt(notebook, lab, _widget_cells(cells, "GenerationExplorer"),
                             f"{notebook.stem}_explorer_excerpt.ipynb")
    try:
        panel = _open_and_run_all(page, excerpt)
        explorer = panel.locator(".jp-OutputArea-output", has=page.locator(".nnlib-bars")).first
        explorer.wait_for()
        temperature = explorer.locator(".nnlib-temperature").first
        top_p = explorer.locator(".nnlib-top-p").first
        step = explorer.locator(".nnlib-step").first
        text = explorer.locator(".nnlib-text").first
        bars = explorer.locator(".nnlib-bars").first
        for name, part in [("temperature slider", temperature), ("top_p slider", top_p),
                           ("step button", step), ("text", text), ("bar chart", bars)]:
            assert part.count() == 1, f"notebook 04: the GenerationExplorer has no {name}."
        explorer.scroll_into_view_if_needed()
        explorer.screenshot(path=ARTIFACTS / f"{notebook.stem}_explorer_0_start.png")
        start = _chart_reading(bars)
        _assert_chart_drawn(start, "at the start")

        before = _fingerprint(bars)
        # dragged with the mouse, to about 0.7: with top_p 0.5 the cut shows
        shown = _drag_slider(page, temperature, 0.35)
        _wait_changed(page, bars, before, f"the bar chart after dragging temperature to {shown}")
        explorer.screenshot(path=ARTIFACTS / f"{notebook.stem}_explorer_1_temperature.png")
        dragged = _chart_reading(bars)
        _assert_chart_drawn(dragged, f"at temperature {shown}")
        # the same candidates (ranked by logit; the last row may be a draw from the tail) with
        # other probabilities
        assert dragged["labels"][:-1] == start["labels"][:-1] and dragged["p"] != start["p"], (
            f"a temperature move must redraw the candidates: {start} -> {dragged}")

        before = _fingerprint(bars)
        _set_slider(page, top_p, 0.5)  # typed into the readout
        _wait_changed(page, bars, before, "the bar chart after setting top_p to 0.5")
        explorer.screenshot(path=ARTIFACTS / f"{notebook.stem}_explorer_2_top_p.png")
        cut = _chart_reading(bars)
        _assert_chart_drawn(cut, "at top_p 0.5")
        assert cut["cut_after"] == sum(cut["kept"]) - 1 >= 0, f"top_p 0.5 shows no cut: {cut}"

        text_before, bars_before = _fingerprint(text), _fingerprint(bars)
        _click(step)
        _wait_changed(page, text, text_before, "the generated text after clicking step")
        _wait_changed(page, bars, bars_before, "the bar chart after clicking step")
        explorer.screenshot(path=ARTIFACTS / f"{notebook.stem}_explorer_3_step.png")
        stepped = _chart_reading(bars)
        _assert_chart_drawn(stepped, "after a step")
        assert stepped["title"] != cut["title"], "the chart still shows the old position"

        # The sampler selector, then top-k's own slider: other bars kept, another cut.
        info = explorer.locator(".nnlib-info").first
        before, info_before = _fingerprint(bars), _fingerprint(info)
        explorer.locator(".nnlib-sampler select").first.select_option("top-k")
        _wait_changed(page, bars, before, "the bar chart after choosing the top-k sampler")
        _wait_changed(page, info, info_before, "the readout after choosing the top-k sampler")
        assert "top_k = " in info.inner_text()
        before = _fingerprint(bars)
        _set_slider(page, explorer.locator(".nnlib-top-k").first, 3)
        _wait_changed(page, bars, before, "the bar chart after setting top_k to 3")
        assert "keeps 3 of" in info.inner_text()
        top_k = _chart_reading(bars)
        assert top_k["kept"][:4] == [True, True, True, False] and top_k["cut_after"] == 2, top_k
        explorer.screenshot(path=ARTIFACTS / f"{notebook.stem}_explorer_4_top_k.png")

        # Branch: take a candidate other than the first that shows as a letter or digit (a
        # forced newline or space would leave the text looking the same); back one undoes it.
        text_before, bars_before = _fingerprint(text), _fingerprint(bars)
        choice = explorer.locator(".nnlib-choice select").first
        labels = choice.locator("option").all_inner_texts()
        pick = next(i for i, label in enumerate(labels) if i > 0 and any(
            c.isascii() and c.isalnum() for c in label.split(".", 1)[1]))
        choice.select_option(index=pick)
        _click(explorer.locator(".nnlib-force").first)
        _wait_changed(page, text, text_before, "the generated text after taking a branch")
        _wait_changed(page, bars, bars_before, "the bar chart after taking a branch")
        assert text.locator("[style*=underline]").count() >= 1, "the forced token is not marked"
        explorer.screenshot(path=ARTIFACTS / f"{notebook.stem}_explorer_5_branch.png")
        branched = _fingerprint(text)
        _click(explorer.locator(".nnlib-back").first)
        _wait_changed(page, text, branched, "the generated text after back one")
        assert text.locator("[style*=underline]").count() == 0, "back one left the branch"
    finally:
        _close(page)


# ---- notebook 02: displaCy's pictures render; the SentenceExplorer answers typing, a checkbox ---


def test_sentence_explorer_and_displacy_in_jupyterlab(request: pytest.FixtureRequest) -> None:
    """Notebook 02's displaCy cells and SentenceExplorer, with the cells they need (loading the
    pipelines), run in JupyterLab: the pictures render live (a run notebook's HTML is not
    sanitised away) and the explorer answers typing and a component checkbox."""
    notebook = _notebook("02")
    lab, page = request.getfixturevalue("lab"), request.getfixturevalue("page")
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    targets = _displacy_cells(cells) + _widget_cells(cells, "SentenceExplorer")
    excerpt = _write_excerpt(notebook, lab, targets, f"{notebook.stem}_explorer_excerpt.ipynb")
    try:
        panel = _open_and_run_all(page, excerpt)
        _assert_displacy_renders(panel, excerpt, notebook.stem)
        _check_sentence_explorer(page, panel, notebook)
    finally:
        _close(page)


def _assert_displacy_renders(panel: Any, notebook: Path, stem: str) -> None:
    """As many displaCy pictures as ``notebook`` has committed are drawn, with arcs and entity
    marks; their screenshots go to ``test-artifacts/<stem>_displacy_*.png``."""
    dep = _count_committed(notebook, "text/html", 'class="displacy"')
    ents = _count_committed(notebook, "text/html", 'class="entities"')
    assert dep and ents, f"{notebook.name}: the committed cells show no displaCy picture to check."
    pictures = panel.locator(".jp-OutputArea-output svg.displacy, "
                             ".jp-OutputArea-output div.entities")
    shown = pictures.count()
    assert shown >= dep + ents, (
        f"{notebook.name}: the committed notebook shows {dep + ents} displacy pictures, the "
        f"browser {shown}.")
    arcs = panel.locator(".jp-OutputArea-output svg.displacy .displacy-arc")
    entities = panel.locator(".jp-OutputArea-output div.entities mark.entity")
    assert arcs.count() > 0, f"{notebook.name}: displacy's SVG has no arcs."
    arcs.first.locator("xpath=ancestor::*[local-name()='svg'][1]").screenshot(
        path=ARTIFACTS / f"{stem}_displacy_dep.png")
    assert entities.count() > 0, f"{notebook.name}: no entity is highlighted."
    entities.first.locator("xpath=ancestor::div[contains(@class,'entities')][1]").screenshot(
        path=ARTIFACTS / f"{stem}_displacy_ents.png")


def _check_sentence_explorer(page: Any, panel: Any, notebook: Path) -> None:
    """Notebook 02's SentenceExplorer answers typing and a component checkbox."""
    explorer = panel.locator(".nnlib-sentence-explorer").first
    explorer.wait_for()
    box = explorer.locator(".nnlib-sentence input").first
    table = explorer.locator(".nnlib-token-table").first
    tagger = explorer.locator(".nnlib-component-tagger input").first
    for name, part in [("sentence box", box), ("token table", table),
                       ("tagger checkbox", tagger)]:
        assert part.count() == 1, f"notebook 02: the SentenceExplorer has no {name}."
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=ARTIFACTS / f"{notebook.stem}_sentence_0_start.png")

    before = _fingerprint(table)
    box.fill("Tim Cook visited Tokyo on Monday.")
    box.press("Enter")  # the Text widget sends its value on Enter (continuous_update=False)
    _wait_changed(page, table, before, "the token table after typing a sentence")
    assert "Tokyo" in table.inner_text() and "GPE" in table.inner_text()
    explorer.screenshot(path=ARTIFACTS / f"{notebook.stem}_sentence_1_typed.png")

    before = _fingerprint(table)
    assert tagger.is_checked()
    tagger.click()
    _wait_changed(page, table, before, "the token table after unticking the tagger")
    header = table.locator("th").all_inner_texts()
    assert any("tag_" in h and "empty" in h for h in header), (
        f"notebook 02: after unticking the tagger the table header says {header}.")
    explorer.screenshot(path=ARTIFACTS / f"{notebook.stem}_sentence_2_no_tagger.png")
