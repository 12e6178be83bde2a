"""A hosted fallback for a workshop, tried on loopback: JupyterHub with simulated learners.

The hub runs on 127.0.0.1 only (hub, proxy and proxy API on ports the OS picks), with
``DummyAuthenticator`` and ``SimpleLocalProcessSpawner`` (each learner's home a folder under
pytest's tmp dir) and ``OMP_NUM_THREADS=1`` for every learner (``c.Spawner.environment``), as
docs/jupyterhub.md recommends for a real server. An admin service token creates three learners
through the hub's REST API, starts their servers and gives each learner a token of their own.
Each learner then starts a kernel through *their own* single-user server (the proxy's
``/user/<name>/api/kernels``) and runs the code cells of a notebook over that kernel's websocket,
as JupyterLab does. Per learner it measures, from /proc: the kernel's peak resident memory
(``VmHWM``), its CPU seconds (user + system), the single-user server's peak memory, and the wall
time. Runs: notebook 04 for one learner alone, then for three at once; and Binder's case, 03b then
04 in one server with both kernels alive (JupyterLab keeps the first one running).

The measurements go to test-artifacts/jupyterhub-sizing.json; docs/jupyterhub.md's sizing table
comes from them. Needs ``jupyterhub`` (pip) and ``configurable-http-proxy`` (npm) and Linux's
/proc; without them the tests skip, unless ``NNLIB_HUB_TEST=1`` (CI's ``make test-hub``), which
turns a missing piece into a failure.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NB_04 = NOTEBOOKS / "04_step_through_generation.ipynb"
NB_03B = NOTEBOOKS / "03b_real_llama_devices.ipynb"
ARTIFACT = ROOT / "test-artifacts" / "jupyterhub-sizing.json"
LEARNERS = ["learner1", "learner2", "learner3"]
HOST = "127.0.0.1"
#: Bounds on every wait (seconds): the whole file must stay within about five minutes on 2 cores.
HUB_START_S = 60
SERVER_START_S = 120
KERNEL_START_S = 90
CELL_S = 300
NOTEBOOK_S = 420
HTTP_S = 30

pytestmark = [pytest.mark.slow, pytest.mark.hub]


def missing_pieces() -> list[str]:
    """What this machine lacks to run the hub, each with how to get it."""
    missing = []
    if importlib.util.find_spec("jupyterhub") is None:
        missing.append("the Python package jupyterhub (`.venv/bin/pip install jupyterhub`)")
    if shutil.which("configurable-http-proxy") is None:
        missing.append("JupyterHub's proxy, configurable-http-proxy "
                       "(`npm install -g configurable-http-proxy`, needs Node.js)")
    for module in ("requests", "websocket"):
        if importlib.util.find_spec(module) is None:
            missing.append(f"the Python package {module} (it comes with JupyterLab)")
    if not Path("/proc/self/status").exists():
        missing.append("Linux's /proc, where the kernels' memory and CPU time are read")
    return missing


def require_hub() -> None:
    missing = missing_pieces()
    if not missing:
        return
    reason = "JupyterHub loopback test needs " + "; ".join(missing)
    if os.environ.get("NNLIB_HUB_TEST") == "1":
        pytest.fail(reason + " (NNLIB_HUB_TEST=1 asks for this test to run, so it fails)")
    pytest.skip(reason)


# --- /proc: what a process costs ------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_status(pid: int) -> dict[str, str]:
    """``/proc/<pid>/status`` as a dict (``VmHWM``: peak resident memory, ``PPid``: its parent)."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def kib(value: str) -> int:
    return int(value.split()[0])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (fields 14 and 15 of /proc/<pid>/stat, after the name)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw if item)


def pss_mib(pid: int) -> float | None:
    """Proportional set size now (shared library pages split between the processes that map them):
    the fair share when summing several kernels. None where smaps_rollup is missing."""
    path = Path(f"/proc/{pid}/smaps_rollup")
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        if line.startswith("Pss:"):
            return kib(line.partition(":")[2]) / 1024
    return None


def pids_whose_cmdline_has(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:  # the process ended while we looked
                continue
    return found


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (children, their children, ...), from /proc's PPid fields."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(proc_status(int(entry.name))["PPid"]), []).append(int(entry.name))
            except (OSError, KeyError, ValueError):
                continue
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def free_ports(count: int) -> list[int]:
    """Ports the OS hands out on 127.0.0.1, all held open until every one is chosen (no repeats)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# --- the hub --------------------------------------------------------------------------------------

HUB_CONFIG = """\
# Written by tests/test_jupyterhub.py: a loopback hub for simulated learners.
c = get_config()  # noqa: F821
c.JupyterHub.ip = {host!r}
c.JupyterHub.port = {proxy_port}
c.JupyterHub.hub_ip = {host!r}
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://{host}:{api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.ConfigurableHTTPProxy.pid_file = {pid_file!r}
c.JupyterHub.db_url = "sqlite:///{db}"
c.JupyterHub.cookie_secret_file = {cookie!r}
c.JupyterHub.authenticator_class = "jupyterhub.auth.DummyAuthenticator"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r} + "/{{username}}"
c.Spawner.ip = {host!r}
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.args = {args!r}
c.Spawner.environment = {{"OMP_NUM_THREADS": "1"}}
c.Spawner.start_timeout = {start_s}
c.Spawner.http_timeout = {start_s}
c.JupyterHub.services = [{{"name": "workshop-admin", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "admin", "services": ["workshop-admin"]}}]
"""


@dataclass
class Hub:
    process: subprocess.Popen
    base: str  # the proxy's address: what learners open
    token: str  # the admin service's token
    log: Path
    homes: Path
    known_pids: set[int] = field(default_factory=set)

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        """A request to the hub's REST API (``/hub/api/...``); raises with the body on an error."""
        return http(method, f"{self.base}/hub/api/{path}", token or self.token, **kwargs)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


_SESSION: Any = None


def http(method: str, url: str, token: str, expect: tuple[int, ...] = (200, 201, 202, 204),
         **kwargs: Any) -> Any:
    import requests

    global _SESSION
    if _SESSION is None:
        _SESSION = requests.Session()
        _SESSION.trust_env = False  # loopback only: never through a proxy from the environment
    response = _SESSION.request(method, url, headers={"Authorization": f"token {token}"},
                                timeout=HTTP_S, **kwargs)
    if response.status_code not in expect:
        raise AssertionError(f"{method} {url} answered {response.status_code}: {response.text[:500]}")
    return response.json() if response.content else None


def start_hub(workdir: Path) -> Hub:
    hub_port, proxy_port, api_port = free_ports(3)
    homes = workdir / "home"
    homes.mkdir()
    token = secrets.token_hex(32)
    config = workdir / "jupyterhub_config.py"
    config.write_text(HUB_CONFIG.format(
        host=HOST, proxy_port=proxy_port, hub_port=hub_port, api_port=api_port,
        chp=shutil.which("configurable-http-proxy"), pid_file=str(workdir / "proxy.pid"),
        db=workdir / "jupyterhub.sqlite", cookie=str(workdir / "cookie_secret"), homes=str(homes),
        python=sys.executable, args=["--allow-root"] if os.geteuid() == 0 else [],
        start_s=SERVER_START_S, token=token))
    log = workdir / "jupyterhub.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=workdir,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    hub = Hub(process, f"http://{HOST}:{proxy_port}", token, log, homes)
    deadline = time.monotonic() + HUB_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"JupyterHub exited with {process.returncode}:\n{hub.log_tail()}")
        try:
            hub.api("GET", "")
            return hub
        except Exception:  # not listening yet
            time.sleep(0.5)
    stop_hub(hub)
    raise AssertionError(f"JupyterHub did not answer within {HUB_START_S} s:\n{hub.log_tail()}")


def stop_hub(hub: Hub) -> None:
    """Stop every learner's server, then the hub (which stops its proxy); then end, by pid, any
    process the hub started that is still alive."""
    if hub.process.poll() is None:
        hub.known_pids.update(descendants(hub.process.pid))
        for name in LEARNERS:
            try:
                hub.api("DELETE", f"users/{name}/server", expect=(202, 204, 400, 404))
            except Exception:  # the hub may be the thing that failed; the kill below still runs
                pass
        hub.process.send_signal(signal.SIGTERM)
        try:
            hub.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hub.process.kill()
            hub.process.wait(timeout=10)
    for pid in sorted(hub.known_pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    require_hub()
    hub = start_hub(tmp_path_factory.mktemp("jupyterhub"))
    try:
        hub.api("POST", "users", json={"usernames": LEARNERS}, expect=(201, 409))
        for name in LEARNERS:
            hub.api("POST", f"users/{name}/server", expect=(201, 202))
        deadline = time.monotonic() + SERVER_START_S
        waiting = set(LEARNERS)
        while waiting and time.monotonic() < deadline:
            for name in sorted(waiting):
                server = hub.api("GET", f"users/{name}")["servers"].get("", {})
                if server.get("ready"):
                    waiting.discard(name)
            if waiting:
                time.sleep(1)
        assert not waiting, (f"servers of {sorted(waiting)} not ready within {SERVER_START_S} s:\n"
                             f"{hub.log_tail()}")
        hub.known_pids.update(descendants(hub.process.pid))
        yield hub
    finally:
        stop_hub(hub)


def learner_token(hub: Hub, name: str) -> str:
    """A token of the learner's own, as their browser session would hold."""
    return hub.api("POST", f"users/{name}/tokens", json={"note": "loopback test", "expires_in": 3600},
                   expect=(200, 201))["token"]


# --- one learner running a notebook through their server ------------------------------------------

@dataclass
class Run:
    learner: str
    notebook: str
    kernel_pid: int = 0
    server_pid: int = 0
    kernel_start_s: float = 0.0
    wall_s: float = 0.0
    kernel_cpu_s: float = 0.0
    kernel_peak_rss_mib: float = 0.0
    kernel_rss_at_end_mib: float = 0.0
    kernel_pss_at_end_mib: float | None = None
    server_peak_rss_mib: float = 0.0
    cells: int = 0
    errors: list[str] = field(default_factory=list)
    kernel_env: dict[str, str] = field(default_factory=dict)

    def measure(self) -> None:
        status = proc_status(self.kernel_pid)
        self.kernel_cpu_s = round(cpu_seconds(self.kernel_pid), 1)
        self.kernel_peak_rss_mib = round(kib(status["VmHWM"]) / 1024, 1)
        self.kernel_rss_at_end_mib = round(kib(status["VmRSS"]) / 1024, 1)
        pss = pss_mib(self.kernel_pid)
        self.kernel_pss_at_end_mib = None if pss is None else round(pss, 1)
        self.server_peak_rss_mib = round(kib(proc_status(self.server_pid)["VmHWM"]) / 1024, 1)


def code_cells(notebook: Path) -> list[str]:
    return [cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            for cell in json.loads(notebook.read_text())["cells"] if cell["cell_type"] == "code"]


class Kernel:
    """A kernel started through a learner's single-user server, driven over its websocket."""

    def __init__(self, hub: Hub, name: str, token: str, notebook: Path) -> None:
        self.hub, self.name, self.token = hub, name, token
        self.server = f"{hub.base}/user/{name}"
        self.run = Run(name, notebook.name)
        self.cells = code_cells(notebook)
        self.session = uuid.uuid4().hex
        self.id = ""
        self.ws: Any = None

    def start(self) -> None:
        import websocket

        started = time.monotonic()
        self.id = http("POST", f"{self.server}/api/kernels", self.token, json={"name": "python3"})["id"]
        deadline = started + KERNEL_START_S
        pids: list[int] = []
        while not pids and time.monotonic() < deadline:  # its command line names its connection file
            pids = pids_whose_cmdline_has(f"kernel-{self.id}.json")
            if not pids:
                time.sleep(0.2)
        assert len(pids) == 1, f"{self.name}: kernel {self.id} has processes {pids} after {KERNEL_START_S} s"
        self.run.kernel_pid = pids[0]
        self.run.server_pid = int(proc_status(self.run.kernel_pid)["PPid"])
        self.hub.known_pids.update([self.run.kernel_pid, self.run.server_pid])
        self.run.kernel_env = proc_environ(self.run.kernel_pid)
        url = self.server.replace("http://", "ws://") + f"/api/kernels/{self.id}/channels"
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {self.token}"],
                                              timeout=CELL_S, http_no_proxy=[HOST])
        self.execute("pass", deadline)  # the kernel answers: it is up
        self.run.kernel_start_s = round(time.monotonic() - started, 1)

    def execute(self, code: str, deadline: float) -> list[str]:
        """Run one cell; return its error outputs ("Name: value" each). Waits for the reply on the
        shell channel and the kernel's return to idle, within the cell's and the notebook's bounds."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.name,
                       "session": self.session, "version": "5.3",
                       "date": datetime.now(UTC).isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        errors: list[str] = []
        replied = idle = False
        cell_deadline = min(deadline, time.monotonic() + CELL_S)
        while not (replied and idle):
            left = cell_deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: a cell of {self.run.notebook} ran past its time "
                                     f"limit:\n{code[:300]}")
            self.ws.settimeout(left)
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "error":
                errors.append(f"{content['ename']}: {content['evalue']}")
            elif kind == "execute_reply":
                replied = True
                if content["status"] != "ok" and not errors:
                    errors.append(f"{content.get('ename', content['status'])}: {content.get('evalue', '')}")
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        return errors

    def run_notebook(self) -> Run:
        started = time.monotonic()
        deadline = started + NOTEBOOK_S
        for number, code in enumerate(self.cells, 1):
            errors = self.execute(code, deadline)
            self.run.cells = number
            if errors:
                self.run.errors = [f"code cell {number}: {error}" for error in errors]
                break
        self.run.wall_s = round(time.monotonic() - started, 1)
        self.run.measure()
        return self.run

    def shutdown(self) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.id:
            http("DELETE", f"{self.server}/api/kernels/{self.id}", self.token, expect=(204, 404))


def run_at_once(hub: Hub, notebook: Path, names: list[str]) -> list[Run]:
    """Every learner in ``names`` starts a kernel, then all run ``notebook`` at the same moment,
    each in a thread of its own; every kernel is shut down afterwards."""
    tokens = {name: learner_token(hub, name) for name in names}
    kernels = [Kernel(hub, name, tokens[name], notebook) for name in names]
    runs: dict[str, Run] = {}
    failures: dict[str, BaseException] = {}
    try:
        for kernel in kernels:
            kernel.start()
        barrier = threading.Barrier(len(kernels), timeout=HTTP_S)

        def learner(kernel: Kernel) -> None:
            try:
                barrier.wait()
                runs[kernel.name] = kernel.run_notebook()
            except BaseException as error:  # reported below, in the test's thread
                failures[kernel.name] = error

        threads = [threading.Thread(target=learner, args=(kernel,), daemon=True) for kernel in kernels]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=NOTEBOOK_S + 60)
        stuck = [thread.name for thread in threads if thread.is_alive()]
        assert not stuck, f"learner threads still running after {NOTEBOOK_S + 60} s"
        assert not failures, f"learners failed: {failures}"
    finally:
        for kernel in kernels:
            try:
                kernel.shutdown()
            except Exception:  # stop_hub ends whatever is left
                pass
    return [runs[name] for name in names]


# --- the measurements file ------------------------------------------------------------------------

def record(section: str, value: Any) -> None:
    """Add ``section`` to test-artifacts/jupyterhub-sizing.json, with when and where it was measured."""
    import jupyterhub

    ARTIFACT.parent.mkdir(exist_ok=True)
    data = json.loads(ARTIFACT.read_text()) if ARTIFACT.exists() else {}
    chp = subprocess.run([shutil.which("configurable-http-proxy") or "configurable-http-proxy",
                          "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    mem_kib = kib(dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
                  ["MemTotal"])
    data["machine"] = {"cpus": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
                       "python": platform.python_version(), "jupyterhub": jupyterhub.__version__,
                       "configurable-http-proxy": chp, "OMP_NUM_THREADS (learners)": "1"}
    data[section] = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), **value}
    ARTIFACT.write_text(json.dumps(data, indent=2) + "\n")


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: above the core count, wall times say more about the
    machine's other work than about the notebook."""
    return [float(value) for value in Path("/proc/loadavg").read_text().split()[:3]]


def hub_and_proxy_mib(hub: Hub) -> dict[str, float]:
    """Peak resident memory of the hub process and of the proxy: paid once per server, not per learner."""
    sizes = {"hub_peak_rss_mib": round(kib(proc_status(hub.process.pid)["VmHWM"]) / 1024, 1)}
    pid_file = hub.log.parent / "proxy.pid"
    if pid_file.exists():
        proxy = int(pid_file.read_text().strip())
        sizes["proxy_peak_rss_mib"] = round(kib(proc_status(proxy)["VmHWM"]) / 1024, 1)
    return sizes


def check_runs(runs: list[Run]) -> None:
    for run in runs:
        assert not run.errors, f"{run.learner} hit errors in {run.notebook}: {run.errors}"
        assert run.kernel_env.get("OMP_NUM_THREADS") == "1", (
            f"{run.learner}'s kernel runs without OMP_NUM_THREADS=1 (c.Spawner.environment)")
        assert run.kernel_env.get("JUPYTERHUB_USER") == run.learner, (
            f"the kernel run for {run.learner} belongs to {run.kernel_env.get('JUPYTERHUB_USER')}'s server")
        assert run.kernel_peak_rss_mib > 0 and run.kernel_cpu_s > 0


def summary(runs: list[Run]) -> dict[str, float]:
    return {"max_kernel_peak_rss_mib": max(run.kernel_peak_rss_mib for run in runs),
            "max_kernel_cpu_s": max(run.kernel_cpu_s for run in runs),
            "max_wall_s": max(run.wall_s for run in runs),
            "max_server_peak_rss_mib": max(run.server_peak_rss_mib for run in runs)}


def public(run: Run) -> dict[str, Any]:
    data = asdict(run)
    data["kernel_env"] = {key: data["kernel_env"].get(key) for key in ("OMP_NUM_THREADS", "JUPYTERHUB_USER")}
    return data


# --- the tests ------------------------------------------------------------------------------------

def test_learners_run_notebook_04_alone_then_three_at_once(hub: Hub) -> None:
    load_before = load_average()
    alone = run_at_once(hub, NB_04, LEARNERS[:1])
    check_runs(alone)
    load_between = load_average()
    together = run_at_once(hub, NB_04, LEARNERS)
    check_runs(together)
    assert all(run.cells == len(code_cells(NB_04)) for run in alone + together)
    record("notebook_04", {
        "how": "each learner: a kernel started through their own single-user server behind the proxy, "
               "every code cell of notebook 04 sent over the kernel's websocket; memory is the kernel's "
               "VmHWM, CPU its utime+stime, from /proc",
        "alone": {"summary": summary(alone), "runs": [public(run) for run in alone]},
        "three_at_once": {"summary": summary(together), "runs": [public(run) for run in together]},
        "load_average_before_alone_between_after": [load_before, load_between, load_average()],
        **hub_and_proxy_mib(hub)})


def test_binder_case_03b_then_04_with_both_kernels_alive(hub: Hub) -> None:
    """JupyterLab keeps a notebook's kernel running after the learner opens the next one: measure
    03b's kernel, left alive, plus 04's, in one learner's server (Binder gives 2 GB in all)."""
    name = LEARNERS[0]
    token = learner_token(hub, name)
    first, second = Kernel(hub, name, token, NB_03B), Kernel(hub, name, token, NB_04)
    load_before = load_average()
    try:
        first.start()
        run_03b = first.run_notebook()
        second.start()
        run_04 = second.run_notebook()
        run_03b.measure()  # 03b's kernel as it sat idle while 04 ran
    finally:
        for kernel in (first, second):
            try:
                kernel.shutdown()
            except Exception:  # stop_hub ends whatever is left
                pass
    check_runs([run_03b, run_04])
    server_mib = max(run_03b.server_peak_rss_mib, run_04.server_peak_rss_mib)
    record("binder_03b_then_04", {
        "how": "one learner's server; kernel A runs 03b and stays alive, then kernel B runs 04",
        "kernel_03b_peak_rss_mib": run_03b.kernel_peak_rss_mib,
        "kernel_03b_rss_while_idle_mib": run_03b.kernel_rss_at_end_mib,
        "kernel_04_peak_rss_mib": run_04.kernel_peak_rss_mib,
        "sum_of_peaks_mib": round(run_03b.kernel_peak_rss_mib + run_04.kernel_peak_rss_mib, 1),
        "idle_03b_plus_peak_04_mib": round(run_03b.kernel_rss_at_end_mib + run_04.kernel_peak_rss_mib, 1),
        "plus_server_mib": server_mib,
        "binder_limit_mib": 2048,
        "load_average_before_after": [load_before, load_average()],
        "runs": [public(run_03b), public(run_04)]})
