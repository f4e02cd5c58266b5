"""Real tracking servers for the server tests and the load benchmark.

``mlflow server`` in its own process group (sqlite or PostgreSQL backend, artifacts
proxied through the server), a throwaway PostgreSQL cluster, the mini project written
into a folder, and ``kmlc run training`` subprocesses with their timings.

Plain functions and classes, no pytest: ``conftest.py`` turns ``Unavailable`` into
``pytest.skip`` and ``bench_server_load.py`` falls back to sqlite on it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import forkserver
from mini_project import MINI_YAML as MINI_YAML  # re-exported to the tests
from mini_project import kmlc_exe
from mini_project import write_mini as write_mini

RUN_LINE = re.compile(r"^run ([0-9a-f]{32}) (\w+)", re.MULTILINE)
QUIET_ENV = {"DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
             "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONDONTWRITEBYTECODE": "1"}


class Unavailable(RuntimeError):
    """What a backend needs is missing here; the message says what."""


def free_port() -> int:
    """A TCP port nobody listens on right now (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quiet_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLFLOW_") and k != "KMLC_RUN_ID"}
    return {**env, **QUIET_ENV, **extra}


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- PostgreSQL


def postgres_unavailable_reason() -> str | None:
    """Why a throwaway PostgreSQL cluster cannot be started here, or None."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return ("psycopg2 is not installed (pip install psycopg2-binary): MLflow cannot "
                "talk to PostgreSQL")
    if _pg_bindir() is None:
        return ("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb, "
                "pg_ctl, createdb; Debian package 'postgresql')")
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root and 'runuser' is missing: initdb refuses to run as root"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run initdb as"
    return None


def _pg_bindir() -> Path | None:
    def version(path: str) -> tuple[int, ...]:
        parts = Path(path).parts[-3].split(".")
        return tuple(int(p) for p in parts if p.isdigit())

    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version,
                         reverse=True):
        bindir = Path(initdb).parent
        if all((bindir / tool).exists() for tool in ("pg_ctl", "createdb", "postgres")):
            return bindir
    return None


@dataclass
class Postgres:
    """A PostgreSQL cluster in a temporary folder, trust auth, listening on 127.0.0.1."""

    folder: Path
    port: int
    bindir: Path
    database: str = "mlflow"

    @property
    def uri(self) -> str:
        # MLflow 3.17 maps plain postgresql:// to psycopg 3; name the driver installed
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{self.database}"

    @classmethod
    def start(cls) -> Postgres:
        reason = postgres_unavailable_reason()
        if reason:
            raise Unavailable(reason)
        bindir = _pg_bindir()
        assert bindir is not None
        # not under pytest's tmp folder: its parents are 0700 root, unreadable by postgres
        folder = Path(tempfile.mkdtemp(prefix="kmlc-pg-"))
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        server = cls(folder, free_port(), bindir)
        try:
            server._pg("initdb", "-D", str(folder / "data"), "-A", "trust", "-U", "postgres",
                       "-E", "UTF8", "--no-sync", timeout=120)
            server._pg("pg_ctl", "-D", str(folder / "data"), "-l", str(folder / "postgres.log"),
                       "-w", "-t", "60", "-o",
                       f"-p {server.port} -k {folder} -h 127.0.0.1 -F -c max_connections=200",
                       "start", timeout=90)
            server._pg("createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres",
                       server.database, timeout=60)
        except BaseException:
            server.stop()
            raise
        return server

    def _pg(self, tool: str, *args: str, timeout: float) -> None:
        argv = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, cwd=self.folder, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}\n"
                               f"{_tail(self.folder / 'postgres.log')}")

    def stop(self) -> None:
        if (self.folder / "data" / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
                self._pg("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w",
                         "stop", timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


# --------------------------------------------------------------------------- mlflow server


@dataclass
class MlflowServer:
    """``mlflow server`` in its own process group; artifacts proxied (mlflow-artifacts:)."""

    backend_uri: str
    folder: Path
    port: int = 0
    workers: int = 2
    proc: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0
    _launched: float = 0.0
    log: Path = field(init=False)
    artifacts: Path = field(init=False)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = self.folder / "server.log"
        self.artifacts = self.folder / "artifacts"
        self.port = self.port or free_port()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> MlflowServer:
        """Start the process and return at once (see ``wait``)."""
        if self.proc is not None:
            return self
        argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                "--port", str(self.port), "--backend-store-uri", self.backend_uri,
                "--artifacts-destination", str(self.artifacts), "--serve-artifacts",
                "--workers", str(self.workers)]
        self._launched = time.perf_counter()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=self.folder, env=quiet_env(),
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def wait(self, timeout: float = 180) -> MlflowServer:
        """Block until GET /health answers 200; stop the server and raise if it never does."""
        if self.started_in:
            return self
        self.launch()
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.perf_counter() - self._launched
        return self

    def start(self, timeout: float = 180) -> MlflowServer:
        return self.launch().wait(timeout)

    def _wait_healthy(self, timeout: float) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode} before "
                                   f"answering /health:\n{_tail(self.log)}")
            try:
                if requests.get(self.uri + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"mlflow server on {self.uri} not healthy after {timeout:.0f} s:\n"
                           f"{_tail(self.log)}")

    def kill(self) -> None:
        """SIGKILL the whole process group at once (the server and its workers)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self) -> None:
        """SIGTERM the process group; ``stop`` waits for it."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, grace: float = 3) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; idempotent."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace)
        # the leader is gone or stuck; no worker of the group survives it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def requests_seen(self, needle: str) -> int:
        """How many access-log lines of the server contain ``needle``."""
        return sum(needle in line for line in self.log.read_text(errors="replace").splitlines())


# --------------------------------------------------------------------------- the project


def with_http(text: str, max_retries: int, timeout: int) -> str:
    """``text`` with ``tracking: {http: {max_retries, timeout}}`` set."""
    assert "tracking:\n" in text
    setting = f"  http: {{max_retries: {max_retries}, timeout: {timeout}}}\n"
    return text.replace("tracking:\n", "tracking:\n" + setting, 1)


@dataclass
class KmlcRun:
    """One finished ``kmlc run`` subprocess."""

    label: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def run_id(self) -> str | None:
        match = RUN_LINE.search(self.stdout)
        return match.group(1) if match else None

    @property
    def status(self) -> str | None:
        match = RUN_LINE.search(self.stdout)
        return match.group(2) if match else None


def kmlc_argv(path: Path, uri: str, params: Sequence[str] = (), run_name: str | None = None,
              pipeline: str = "training") -> list[str]:
    argv = [kmlc_exe(), "run", pipeline, "-f", str(path), "--tracking-uri", uri]
    for item in params:
        argv += ["--params", item]
    if run_name:
        argv += ["--run-name", run_name]
    return argv


def run_concurrently(jobs: Sequence[tuple[str, list[str]]], timeout: float) -> list[KmlcRun]:
    """Start every ``(label, argv)`` at once; wait for all; each with its own wall time."""
    env = quiet_env()
    started: list[tuple[str, float, subprocess.Popen[str]]] = []
    for label, argv in jobs:
        # a fork of tests/forkserver.py where it can be: the load is on the store, and the
        # runs start at once rather than after 2 x 16 interpreters have loaded MLflow
        proc = subprocess.Popen(forkserver.kmlc_argv(argv, env), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        started.append((label, time.perf_counter(), proc))
    deadline = time.perf_counter() + timeout
    results: list[KmlcRun] = []
    try:
        # threads drain the pipes of all processes at once (no pipe-buffer deadlock)
        from concurrent.futures import ThreadPoolExecutor

        def wait(item: tuple[str, float, subprocess.Popen[str]]) -> KmlcRun:
            label, t0, proc = item
            out, err = proc.communicate(timeout=max(1.0, deadline - time.perf_counter()))
            return KmlcRun(label, proc.returncode, out, err, time.perf_counter() - t0)

        with ThreadPoolExecutor(max_workers=len(started) or 1) as pool:
            results = list(pool.map(wait, started))
    finally:
        for _label, _t0, proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return results


# --------------------------------------------------------------------------- fake servers


class HangingServer:
    """A TCP port that accepts and never answers, for timeouts.

    ``health=False``: nothing ever answers (connections wait in the listen backlog).
    ``health=True``: ``GET /health`` answers 200 OK; every other request is read and then
    left hanging; ``hung`` records ``(request line, seconds until the client gave up)``.
    """

    def __init__(self, health: bool):
        import threading

        self.health = health
        self.hung: list[tuple[str, float]] = []
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self._threads: list[threading.Thread] = []
        if health:
            self._sock.settimeout(0.2)
            self._spawn(self._accept)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, target: object, *args: object) -> None:
        import threading

        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        data = b""
        with conn:
            while b"\r\n\r\n" not in data and not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                data += chunk
            line = data.split(b"\r\n", 1)[0].decode(errors="replace")
            if line.startswith("GET /health"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: 2\r\nConnection: close\r\n\r\nOK")
                return
            started = time.perf_counter()
            while not self._stop.is_set():  # hang until the client closes its end
                try:
                    if not conn.recv(65536):
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
            self.hung.append((line, time.perf_counter() - started))

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        for thread in self._threads:
            thread.join(timeout=2)


# --------------------------------------------------------------------------- checks


def _expected_params(c: str) -> dict[str, str]:
    return {"model.c": c, "model.max_iter": "200", "fail": "False", "sleep": "0"}


def model_line(run: KmlcRun) -> str | None:
    for line in run.stdout.splitlines():
        if line.startswith("model logged: "):
            return line.removeprefix("model logged: ").strip()
    return None


def check_run(client: Any, done: KmlcRun, c: str) -> list[str]:
    """Everything one training run must have landed on the server; [] when all is there."""
    problems: list[str] = []

    def need(ok: bool, what: str) -> None:
        if not ok:
            problems.append(f"{done.label}: {what}")

    need(done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}")
    need(done.status == "FINISHED", f"printed status {done.status!r}")
    if done.run_id is None:
        return problems
    run = client.get_run(done.run_id)
    need(run.info.status == "FINISHED", f"store status {run.info.status}")
    need(run.info.artifact_uri.startswith("mlflow-artifacts:"),
         f"artifacts not proxied by the server: {run.info.artifact_uri}")
    need(run.data.params == _expected_params(c), f"params {run.data.params}")
    metrics = run.data.metrics
    need("accuracy" in metrics and metrics.get("accuracy") == metrics.get("eval.accuracy"),
         f"metrics {metrics}")
    loss = [m.value for m in client.get_metric_history(done.run_id, "loss")]
    need(loss == [1.0, 0.5, 0.25], f"loss history {loss}")
    curve = [m.step for m in client.get_metric_history(done.run_id, "eval.curve")]
    need(curve == [0, 1], f"eval.curve steps {curve}")
    need(run.data.tags.get("team") == "tests", "tag team=tests missing")
    top = {a.path for a in client.list_artifacts(done.run_id)}
    need({"mlproject.yml", "reports"} <= top, f"artifacts {top}")
    reports = [a.path for a in client.list_artifacts(done.run_id, "reports")]
    need(reports == ["reports/report.json"], f"reports {reports}")
    models = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{done.run_id}'")
    by_name = {m.name: m for m in models}
    need(set(by_name) == {"model", "sk_model"}, f"logged models {sorted(by_name)}")
    for model in models:
        need(str(model.status).endswith("READY"), f"model {model.name} is {model.status}")
        need(model.artifact_location.startswith("mlflow-artifacts:"),
             f"model {model.name} stored at {model.artifact_location}")
    if "model" in by_name:
        need(model_line(done) == f"models:/{by_name['model'].model_id}",
             f"printed {model_line(done)!r}, logged {by_name['model'].model_id}")
    return problems
