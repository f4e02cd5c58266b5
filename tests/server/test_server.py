"""kmlc against a real, shared MLflow tracking server (sqlite and PostgreSQL backends).

Every run here is a real ``kmlc run training`` subprocess talking HTTP to a real
``mlflow server`` that proxies the artifacts (``mlflow-artifacts:``).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from faults import GATED, write_gate_hook
from mlflow.tracking import MlflowClient
from tracking_servers import (
    MINI_YAML,
    HangingServer,
    MlflowServer,
    check_run,
    free_port,
    kmlc_argv,
    model_line,
    postgres_unavailable_reason,
    quiet_env,
    run_concurrently,
    with_http,
    write_mini,
)

pytestmark = pytest.mark.slow

TRACEBACK = "Traceback (most recent call last)"
RAW = {"data/01_raw/instances.csv", "data/01_raw/labels.csv"}
SLEEP = 10  # seconds the check node sleeps in the killed-server test, after the kill
LOAD_SCRIPT = """\
import json, sys
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
data = pd.read_csv(sys.argv[2])
out = {}
for uri in sys.argv[3:]:
    prediction = mlflow.pyfunc.load_model(uri).predict(data)
    out[uri] = [len(prediction), list(prediction.columns),
                sorted(set(prediction["label"].tolist()))]
print(json.dumps(out))
"""


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / "data").rglob("*") if p.is_file()}


def _timed_run(path: Path, uri: str, timeout: float
               ) -> tuple[subprocess.CompletedProcess[str], float, str]:
    """``kmlc run training`` against ``uri``: the process, its wall seconds, its output."""
    started = time.perf_counter()
    done = subprocess.run(kmlc_argv(path, uri), env=quiet_env(), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return done, time.perf_counter() - started, done.stdout + done.stderr


def load_models(server: MlflowServer, instances: Path, uris: list[str], cwd: Path
                ) -> dict[str, list]:
    """Load and predict every model through the server, in a fresh process elsewhere."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in quiet_env().items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, server.uri, str(instances), *uris],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- one run


def test_training_run_on_sqlite_server(sqlite_server: MlflowServer, project, tmp_path: Path
                                       ) -> None:
    path = project()
    started = time.perf_counter()
    (done,) = run_concurrently([("single", kmlc_argv(path, sqlite_server.uri,
                                                     ["model.c=0.5"], "single"))], timeout=180)
    print(f"\n[server] one training run on the sqlite-backed server: "
          f"{time.perf_counter() - started:.1f} s")
    assert TRACEBACK not in done.stderr
    client = MlflowClient(sqlite_server.uri)
    assert check_run(client, done, "0.5") == []
    run_id = done.run_id
    assert run_id is not None
    run = client.get_run(run_id)

    # artifacts went through the server: its log has the uploads, its folder has the files,
    # and the project folder has no local artifact store
    assert sqlite_server.requests_seen(
        f'"PUT /api/2.0/mlflow-artifacts/artifacts/{run.info.experiment_id}/{run_id}'
        '/artifacts/reports/report.json') == 1
    stored = sqlite_server.artifacts / run.info.experiment_id / run_id / "artifacts"
    assert (stored / "reports" / "report.json").is_file()
    assert (stored / "mlproject.yml").is_file()
    assert not any((path.parent / name).exists() for name in ("mlartifacts", "mlruns",
                                                              "mlflow.db"))

    model_uri = model_line(done)
    assert model_uri is not None
    out = load_models(sqlite_server, path.parent / "data/01_raw/instances.csv", [model_uri],
                      tmp_path / "elsewhere")
    length, columns, labels = out[model_uri]
    assert (length, columns) == (40, ["proba", "label"])
    assert set(labels) <= {0, 1}


# --------------------------------------------------------------------------- load


def _load(server: MlflowServer, tmp_path: Path, runs: int, backend: str) -> dict:
    values = [str(round(0.1 * (i + 1), 1)) for i in range(runs)]
    jobs = []
    for i, c in enumerate(values):
        path = write_mini(tmp_path / f"user{i:02d}")  # one checkout per concurrent user
        jobs.append((f"{backend}-{i:02d}", kmlc_argv(path, server.uri, [f"model.c={c}"],
                                                     f"load-{backend}-{i:02d}")))
    started = time.perf_counter()
    results = run_concurrently(jobs, timeout=270)
    wall = time.perf_counter() - started

    checking = time.perf_counter()
    client = MlflowClient(server.uri)
    problems = [p for done, c in zip(results, values, strict=True)
                for p in check_run(client, done, c)]
    assert problems == [], "\n".join(problems)
    assert len({done.run_id for done in results}) == runs
    assert all(TRACEBACK not in done.stderr for done in results)
    uris = [model_line(done) or "" for done in results]
    loaded = load_models(server, tmp_path / "user00/data/01_raw/instances.csv", uris,
                         tmp_path / "elsewhere")
    assert {uri: value[:2] for uri, value in loaded.items()} == {
        uri: [40, ["proba", "label"]] for uri in uris}

    checked_in = time.perf_counter() - checking
    slowest = max(results, key=lambda r: r.seconds)
    figures = {
        "backend": backend,
        "runs": runs,
        "cpus": os.cpu_count(),
        "server_workers": server.workers,
        "wall_seconds": round(wall, 2),
        "runs_per_minute": round(runs / wall * 60, 2),
        "slowest_run": {"label": slowest.label, "run_id": slowest.run_id,
                        "seconds": round(slowest.seconds, 2)},
        "median_run_seconds": round(statistics.median(r.seconds for r in results), 2),
        "fastest_run_seconds": round(min(r.seconds for r in results), 2),
        "check_and_load_seconds": round(checked_in, 2),
    }
    report = tmp_path / f"server_load_{backend}.json"
    report.write_text(json.dumps(figures, indent=2))
    print(f"\n[load] {runs} concurrent runs on the {backend}-backed server: "
          f"{figures['runs_per_minute']} runs/minute ({wall:.1f} s wall); slowest run "
          f"{slowest.seconds:.1f} s ({slowest.label}), median "
          f"{figures['median_run_seconds']} s; checked and loaded all in {checked_in:.1f} s; "
          f"figures in {report}")
    return figures


@pytest.mark.postgres
@pytest.mark.timeout(420)
def test_load_postgres_server_16_runs(postgres_server: MlflowServer, tmp_path: Path) -> None:
    figures = _load(postgres_server, tmp_path, 16, "postgres")
    assert figures["runs_per_minute"] > 0


@pytest.mark.timeout(300)
def test_load_sqlite_server_4_runs(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The lighter load, only when the PostgreSQL load test cannot run."""
    reason = postgres_unavailable_reason()
    postgres_selected = any(item.name == "test_load_postgres_server_16_runs"
                            for item in request.session.items)
    if reason is None and postgres_selected:
        pytest.skip("PostgreSQL is available: test_load_postgres_server_16_runs does the load")
    print(f"\n[load] sqlite fallback: "
          f"{reason or 'the postgres load test is not selected'}")
    server: MlflowServer = request.getfixturevalue("sqlite_server")
    _load(server, tmp_path, 4, "sqlite")


# --------------------------------------------------------------------------- faults


def test_unreachable_server_at_start_fails_fast_and_writes_nothing(project) -> None:
    path = project()
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done, elapsed, output = _timed_run(path, uri, 60)
    assert done.returncode == 1, output
    # MLflow's own retries would take minutes; 45 s holds on a loaded 2-core machine
    assert elapsed < 45, f"{elapsed:.1f} s"
    assert uri in output
    assert "unreachable" in output
    assert TRACEBACK not in output
    assert _files(path.parent) == RAW  # no node ran, no output written


@dataclass
class KilledRun:
    """A training run whose server was SIGKILLed while its ``check`` node slept."""

    path: Path
    server: MlflowServer
    returncode: int
    stdout: str
    stderr: str
    exited_after_kill: float
    before: dict[str, str]
    after: dict[str, str]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tracked_before_the_kill(server: MlflowServer) -> bool:
    """The running run's accuracy is in the server's store and its report in its artifacts."""
    client = MlflowClient(server.backend_uri)
    experiment = client.get_experiment_by_name("mini")
    runs = client.search_runs([experiment.experiment_id]) if experiment is not None else []
    return any("accuracy" in run.data.metrics and (
        server.artifacts / run.info.experiment_id / run.info.run_id / "artifacts" / "reports"
        / "report.json").is_file() for run in runs)


@pytest.fixture(scope="module")
def killed_run(doomed_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[KilledRun]:
    server = doomed_server
    root = tmp_path_factory.mktemp("killed")
    # the project's gate hook holds the run before the node check (which then sleeps SLEEP
    # seconds) until the test has killed the server
    path = write_mini(root / "proj", with_http(GATED, max_retries=1, timeout=5))
    write_gate_hook(path.parent)
    gate = root / "gate"
    gate.mkdir()
    watched = [path.parent / "data/06_models/classifier.pkl",
               path.parent / "data/08_reporting/report.json"]
    proc = subprocess.Popen(kmlc_argv(path, server.uri, [f"sleep={SLEEP}"]),
                            env=quiet_env(KMLC_TEST_GATE=str(gate),
                                          KMLC_TEST_MOMENT="before_node_run:check"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        # the run waits before check; what it tracked before: the report on the server, the
        # metric in its store (no fixed wait: however long a loaded machine takes)
        while not ((gate / "reached").exists() and _tracked_before_the_kill(server)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never reached check with its report"
            time.sleep(0.2)
        before = {p.name: _digest(p) for p in watched}
        server.kill()
        killed = time.perf_counter()
        (gate / "go").write_text("")
        out, err = proc.communicate(timeout=90)  # the rest of the sleep + the failure
        exited = time.perf_counter() - killed
        after = {p.name: _digest(p) for p in watched if p.exists()}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
        server.stop()
    print(f"\n[fault] server killed mid-run: kmlc exited {proc.returncode} "
          f"{exited:.1f} s after the kill (the check node slept {SLEEP} s of it)")
    yield KilledRun(path, server, proc.returncode, out, err, exited, before, after)


def test_server_killed_mid_run_exits_and_keeps_local_outputs(killed_run: KilledRun) -> None:
    run = killed_run
    assert run.returncode != 0, run.stdout
    assert run.exited_after_kill < SLEEP + 30  # the rest of the sleep, then a bounded failure
    assert run.after == run.before  # outputs written before the kill are intact
    with open(run.path.parent / "data/06_models/classifier.pkl", "rb") as file:
        assert hasattr(pickle.load(file), "predict_proba")
    report = json.loads((run.path.parent / "data/08_reporting/report.json").read_text())
    assert set(report) == {"accuracy"}
    # what reached the store before the kill is still there (read the database directly)
    client = MlflowClient(run.server.backend_uri)
    (stored,) = client.search_runs([client.get_experiment_by_name("mini").experiment_id])
    assert stored.info.status == "RUNNING"  # nobody could close it: the server was dead
    assert "accuracy" in stored.data.metrics
    assert stored.data.params["sleep"] == str(SLEEP)
    assert (run.server.artifacts / stored.info.experiment_id / stored.info.run_id /
            "artifacts" / "reports" / "report.json").is_file()


def test_server_killed_mid_run_says_so_without_traceback(killed_run: KilledRun) -> None:
    output = killed_run.stdout + killed_run.stderr
    assert TRACEBACK not in output, output[-3000:]
    assert "could not be" in output and killed_run.server.uri in output, output[-3000:]
    assert killed_run.returncode == 1


# --------------------------------------------------------------------------- tracking.http


def test_silent_port_fails_within_seconds(project) -> None:
    """A port that accepts TCP and never answers: the /health probe times out."""
    silent = HangingServer(health=False)
    try:
        path = project(with_http(MINI_YAML, max_retries=0, timeout=3))
        done, elapsed, output = _timed_run(path, silent.uri, 120)
    finally:
        silent.close()
    print(f"\n[http] silent port: exit {done.returncode} after {elapsed:.1f} s")
    assert done.returncode == 1, output
    assert elapsed < 12, f"{elapsed:.1f} s"
    assert silent.uri in output and "unreachable" in output
    assert TRACEBACK not in output
    assert _files(path.parent) == RAW


@pytest.mark.parametrize(("max_retries", "timeout"), [(0, 3), (1, 2)])
def test_http_settings_bound_each_request(project, max_retries: int, timeout: int) -> None:
    """/health answers, every API request hangs: MLflow's client gives up as configured.

    MLflow's defaults (120 s, 7 retries with backoff) would hang for many minutes.
    """
    hanging = HangingServer(health=True)
    try:
        path = project(with_http(MINI_YAML, max_retries=max_retries, timeout=timeout))
        done, elapsed, output = _timed_run(path, hanging.uri, 120)
    finally:
        hanging.close()
    held = [round(seconds, 1) for _line, seconds in hanging.hung]
    print(f"\n[http] max_retries={max_retries} timeout={timeout}: exit {done.returncode} "
          f"after {elapsed:.1f} s; requests held {held}")
    assert done.returncode == 1, output
    assert hanging.uri in output
    assert TRACEBACK not in output
    assert len(hanging.hung) == max_retries + 1, hanging.hung  # one try + the retries
    for _line, seconds in hanging.hung:
        assert timeout - 0.5 < seconds < timeout + 2
    assert elapsed < 10 + (max_retries + 1) * timeout
    assert _files(path.parent) == RAW
