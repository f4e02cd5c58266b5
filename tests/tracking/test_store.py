"""kmlc.tracking (client, retry, batch, datasets) against a real sqlite MLflow store."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mini_project import kmlc_exe, write_mini
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from kmlc.config.target import resolve_tracking_uri
from kmlc.errors import TrackingError
from kmlc.tracking import active, batch, retry
from kmlc.tracking import client as clients
from kmlc.tracking.datasets import (
    MlflowMetricDataset,
    MlflowMetricHistoryDataset,
    MlflowMetricsDataset,
    MlflowModelDataset,
    TrackedArtifactDataset,
)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MlflowClient, str]]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = clients.open_client(uri)
    experiment = clients.ensure_experiment(client, "t", tmp_path / "mlartifacts")
    run_id = client.create_run(experiment).info.run_id
    monkeypatch.setenv(active.RUN_ID_ENV, run_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # MLflow's own log_model uses the global URI
    yield client, run_id
    mlflow.set_tracking_uri(previous)


def test_resolve_tracking_uri(tmp_path: Path) -> None:
    assert resolve_tracking_uri("sqlite:///mlflow.db", tmp_path) == (
        f"sqlite:///{tmp_path.resolve()}/mlflow.db")
    assert resolve_tracking_uri("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert resolve_tracking_uri("http://h:5000", tmp_path) == "http://h:5000"
    with pytest.raises(TrackingError, match="file store"):
        resolve_tracking_uri("./mlruns", tmp_path)
    with pytest.raises(TrackingError, match="file store"):
        resolve_tracking_uri("file:///tmp/mlruns", tmp_path)


def _log_params(client, run_id: str, params: dict, **options) -> int:
    """What the tracking hook and the worker do: prepare the pairs, log them in batches."""
    pairs, tags = batch.param_pairs(params, **options)
    batch.log_param_pairs(client, run_id, pairs, tags)
    return len(pairs)


def test_params_are_batched_and_long_values_handled(store) -> None:
    client, run_id = store
    params = {f"p{i}": i for i in range(250)}
    assert _log_params(client, run_id, params) == 250
    assert len(client.get_run(run_id).data.params) == 250
    long = {"long": "x" * 7000}
    with pytest.raises(TrackingError, match="over MLflow's limit"):
        _log_params(client, run_id, long)
    _log_params(client, run_id, {"cut": "y" * 7000}, long_values="truncate")
    _log_params(client, run_id, long, long_values="tag")
    run = client.get_run(run_id)
    assert len(run.data.params["cut"]) == batch.MAX_PARAM_VALUE
    assert run.data.tags["param.long"] == "x" * 7000
    _log_params(client, run_id, {"nested": {"a": 1, "b": {"c": 2}}}, flatten=True,
                sep="/", secrets=("2",))
    run = client.get_run(run_id)
    assert run.data.params["nested/a"] == "1"
    assert run.data.params["nested/b/c"] == "***"


# MLflow 3's sqlite sessions wait this long on a lock (PRAGMA busy_timeout) before they
# answer "database is locked"; only a lock held longer reaches kmlc's retry
MLFLOW_BUSY_TIMEOUT = 20.0


@contextlib.contextmanager
def write_lock(db: Path, seconds: float | None) -> Iterator[threading.Event]:
    """A second sqlite connection holding a write transaction on ``db`` (BEGIN IMMEDIATE).

    Released after ``seconds``, or (None) when the block ends; yields the event that
    releases it.
    """
    locked, release = threading.Event(), threading.Event()
    problems: list[BaseException] = []

    def hold() -> None:
        try:
            connection = sqlite3.connect(db, isolation_level=None)
            try:
                connection.execute("BEGIN IMMEDIATE")
                locked.set()
                release.wait(seconds)
                connection.execute("ROLLBACK")
            finally:
                connection.close()
        except BaseException as exc:  # reported by the test, not lost in the thread
            problems.append(exc)
            locked.set()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert locked.wait(30) and not problems, problems
    try:
        yield release
    finally:
        release.set()
        thread.join(30)
    assert not problems, problems


def test_a_short_sqlite_lock_is_waited_out_by_mlflow(
        store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A lock shorter than MLflow's busy timeout: the write waits, no retry is needed."""
    client, run_id = store
    caplog.set_level(logging.DEBUG, logger="kmlc.tracking.retry")
    started = time.perf_counter()
    with write_lock(tmp_path / "mlflow.db", 1.5):
        batch.log_param_pairs(client, run_id, [("a", "1")])
        waited = time.perf_counter() - started
    assert client.get_run(run_id).data.params == {"a": "1"}
    assert waited >= 1.4  # it did wait for the lock
    assert not [r for r in caplog.records if r.name == "kmlc.tracking.retry"]


@pytest.mark.slow
def test_a_write_blocked_by_a_held_sqlite_lock_is_retried(
        store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The lock outlasts MLflow's own wait, then goes: kmlc's retry lands the parameters."""
    client, run_id = store
    caplog.set_level(logging.DEBUG, logger="kmlc.tracking.retry")
    started = time.perf_counter()
    with write_lock(tmp_path / "mlflow.db", MLFLOW_BUSY_TIMEOUT + 1.5):
        batch.log_param_pairs(client, run_id, [("a", "1"), ("b", "2")])
        waited = time.perf_counter() - started
    assert client.get_run(run_id).data.params == {"a": "1", "b": "2"}
    retries = [r.getMessage() for r in caplog.records if r.name == "kmlc.tracking.retry"]
    assert len(retries) >= 1, "the write succeeded without kmlc retrying it"
    assert retries[0].startswith("tracking store busy ((sqlite3.OperationalError) database "
                                 "is locked) in log_batch; attempt 1 of 12 failed")
    assert waited > MLFLOW_BUSY_TIMEOUT


def test_other_store_errors_are_not_retried(store, caplog: pytest.LogCaptureFixture) -> None:
    client, _ = store
    caplog.set_level(logging.DEBUG, logger="kmlc.tracking.retry")
    calls = []

    def get_missing_run() -> None:
        calls.append(1)
        client.get_run("0" * 32)

    with pytest.raises(MlflowException, match="not found"):
        retry.with_retry(get_missing_run)
    assert len(calls) == 1
    assert not [r for r in caplog.records if r.name == "kmlc.tracking.retry"]


@pytest.mark.slow
def test_a_lock_held_past_the_retry_budget_fails_the_run_clearly(tmp_path: Path) -> None:
    """``kmlc run`` with one attempt (``KMLC_STORE_ATTEMPTS=1``) against a locked store:
    one located line, no traceback (not even MLflow's logged one), nothing run."""
    root = tmp_path / "proj"
    write_mini(root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    clients.ensure_experiment(clients.open_client(uri), "mini", root / "mlartifacts")
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
           retry.ATTEMPTS_ENV: "1"}
    with write_lock(root / "mlflow.db", None):
        done = subprocess.run([kmlc_exe(), "run", "training"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=240)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"error: the tracking store is busy: \(sqlite3\.OperationalError\) database is "
        r"locked \(gave up after 1 attempt in \d+ s\) \(another process holds a lock on the "
        r"store; try again when it is done \(more attempts: KMLC_STORE_ATTEMPTS\), or use a "
        r"tracking server for many concurrent writers\) \[KMLC601\]", last), done.stderr
    assert not (root / "data" / "06_models" / "classifier.pkl").exists()
    assert MlflowClient(uri).search_runs(
        [MlflowClient(uri).get_experiment_by_name("mini").experiment_id]) == []


def test_metric_datasets_round_trip(store) -> None:
    client, run_id = store
    metric = MlflowMetricDataset(key="acc")
    metric.save(0.5)
    metric.save(0.75)
    assert metric.load() == 0.75
    assert [m.step for m in client.get_metric_history(run_id, "acc")] == [0, 1]
    history = MlflowMetricHistoryDataset(key="loss")
    history.save({0: 3.0, 2: 1.0, 1: 2.0})
    assert history.load() == [3.0, 2.0, 1.0]
    metrics = MlflowMetricsDataset(prefix="val")
    metrics.save({"f1": 0.9, "auc": {"value": 0.8, "step": 3}, "curve": [1, 2]})
    assert metrics.load() == {"f1": 0.9, "auc": 0.8, "curve": 2.0}
    with pytest.raises(Exception, match="expected a number"):
        metric.save("not a number")
    # datasets pickle without their client (the parallel runner ships them)
    clone = pickle.loads(pickle.dumps(metric))
    assert clone.load() == 0.75
    # a given run_id reads from that run
    assert MlflowMetricDataset(key="acc", run_id=run_id).load() == 0.75


def test_model_dataset_logs_and_loads(store) -> None:
    from sklearn.linear_model import LinearRegression

    client, run_id = store
    dataset = MlflowModelDataset(flavor="mlflow.sklearn", artifact_path="reg")
    dataset.save(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]))
    assert client.get_run(run_id).info.status == "RUNNING"  # the run stays open
    loaded = MlflowModelDataset(flavor="mlflow.sklearn", artifact_path="reg",
                                run_id=run_id).load()
    assert loaded.predict([[2.0]])[0] == pytest.approx(4.0)
    with pytest.raises(Exception, match="cannot be imported"):
        MlflowModelDataset(flavor="mlflow.nope")


def test_tracked_artifact_saves_locally_and_logs(store, tmp_path: Path) -> None:
    client, run_id = store
    target = tmp_path / "out" / "table.csv"
    dataset = TrackedArtifactDataset(
        dataset={"type": "pandas.CSVDataset", "filepath": str(target)}, artifact_path="tables")
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2]})
    dataset.save(frame)
    assert target.exists()
    assert [a.path for a in client.list_artifacts(run_id, "tables")] == ["tables/table.csv"]
    target.unlink()
    past = TrackedArtifactDataset(
        dataset={"type": "pandas.CSVDataset", "filepath": str(target)}, artifact_path="tables",
        run_id=run_id)
    pd.testing.assert_frame_equal(past.load(), frame)


def test_versioned_tracked_artifact(store, tmp_path: Path) -> None:
    client, run_id = store
    target = tmp_path / "v" / "obj.pkl"
    dataset = TrackedArtifactDataset(
        dataset={"type": "pickle.PickleDataset", "filepath": str(target), "versioned": True},
        save_version="2026-01-01T00.00.00.000Z")
    dataset.save({"x": 1})
    assert (target / "2026-01-01T00.00.00.000Z" / "obj.pkl").exists()
    assert [a.path for a in client.list_artifacts(run_id)] == ["obj.pkl"]
    assert dataset.load() == {"x": 1}


def test_datasets_outside_a_run_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(active.RUN_ID_ENV, raising=False)
    with pytest.raises(Exception, match="no MLflow run"):
        MlflowMetricDataset(key="a").save(1.0)


def test_tracked_folder_dataset_logs_the_folder(store, tmp_path: Path) -> None:
    client, run_id = store
    folder = tmp_path / "parts"
    dataset = TrackedArtifactDataset(
        dataset={"type": "partitions.PartitionedDataset", "path": str(folder),
                 "dataset": "json.JSONDataset", "filename_suffix": ".json"},
        artifact_path="tables")
    dataset.save({"a": {"x": 1}, "b": {"x": 2}})
    assert sorted(p.name for p in folder.iterdir()) == ["a.json", "b.json"]
    logged = [a.path for a in client.list_artifacts(run_id, "tables/parts")]
    assert logged == ["tables/parts/a.json", "tables/parts/b.json"]
