"""kmlc.tracking.store and kmlc.tracking.datasets against a real sqlite MLflow store."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from kmlc.errors import TrackingError
from kmlc.tracking import store as tracking
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
    client = tracking.open_client(uri)
    experiment = tracking.ensure_experiment(client, "t", tmp_path / "mlartifacts")
    run_id = client.create_run(experiment).info.run_id
    monkeypatch.setenv(tracking.RUN_ID_ENV, run_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # MLflow's own log_model uses the global URI
    yield client, run_id
    mlflow.set_tracking_uri(previous)


def test_resolve_tracking_uri(tmp_path: Path) -> None:
    assert tracking.resolve_tracking_uri("sqlite:///mlflow.db", tmp_path) == (
        f"sqlite:///{tmp_path.resolve()}/mlflow.db")
    assert tracking.resolve_tracking_uri("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert tracking.resolve_tracking_uri("http://h:5000", tmp_path) == "http://h:5000"
    with pytest.raises(TrackingError, match="file store"):
        tracking.resolve_tracking_uri("./mlruns", tmp_path)
    with pytest.raises(TrackingError, match="file store"):
        tracking.resolve_tracking_uri("file:///tmp/mlruns", tmp_path)


def _log_params(client, run_id: str, params: dict, **options) -> int:
    """What the tracking hook and the worker do: prepare the pairs, log them in batches."""
    pairs, tags = tracking.param_pairs(params, **options)
    tracking.log_param_pairs(client, run_id, pairs, tags)
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
    assert len(run.data.params["cut"]) == tracking.MAX_PARAM_VALUE
    assert run.data.tags["param.long"] == "x" * 7000
    _log_params(client, run_id, {"nested": {"a": 1, "b": {"c": 2}}}, flatten=True,
                sep="/", secrets=("2",))
    run = client.get_run(run_id)
    assert run.data.params["nested/a"] == "1"
    assert run.data.params["nested/b/c"] == "***"


def test_with_retry_retries_only_busy_errors() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert tracking.with_retry(flaky) == "ok" and len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise ValueError("no such thing")

    calls.clear()
    with pytest.raises(ValueError):
        tracking.with_retry(broken)
    assert len(calls) == 1


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
    monkeypatch.delenv(tracking.RUN_ID_ENV, raising=False)
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
