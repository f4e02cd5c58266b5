"""Node code calling MLflow's fluent API lands in the kmlc run, under every runner."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mini_project import kmlc_exe
from mlflow.tracking import MlflowClient

from kmlc import RunOptions, load_project, run_pipeline

PROJECT = """\
version: 1
name: active
parameters:
  c: 0.7
datasets:
  instances: {type: pandas.CSVDataset, filepath: data/instances.csv}
  seen: {type: json.JSONDataset, filepath: data/seen.json}
  fitted: {type: json.JSONDataset, filepath: data/fitted.json}
nodes:
  - name: log_inside
    func: active_nodes.log_inside
    inputs: instances
    outputs: seen
  - name: autolog_fit
    func: active_nodes.autolog_fit
    inputs: [instances, params:c]
    outputs: fitted
"""

NODES = '''\
import mlflow
from sklearn.linear_model import LogisticRegression


def log_inside(instances):
    mlflow.log_metric("inside", 1.5)
    mlflow.log_param("rows", len(instances))
    return {"run_id": mlflow.active_run().info.run_id, "registry": mlflow.get_registry_uri()}


def autolog_fit(instances, c):
    mlflow.sklearn.autolog(log_models=True, log_input_examples=False, silent=True)
    model = LogisticRegression(C=c).fit(instances[["x1", "x2"]], instances["y"])
    mlflow.sklearn.autolog(disable=True)
    return {"score": float(model.score(instances[["x1", "x2"]], instances["y"])),
            "run_id": mlflow.active_run().info.run_id}
'''

ROWS = "x1,x2,y\n" + "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(40))


def _project(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "instances.csv").write_text(ROWS)
    (root / "active_nodes.py").write_text(NODES)
    (root / "mlproject.yml").write_text(PROJECT)
    return root / "mlproject.yml"


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["sequential", "thread", "parallel"])
def test_fluent_calls_and_autolog_land_in_the_kmlc_run(tmp_path: Path, runner: str) -> None:
    path = _project(tmp_path / "proj")
    result = run_pipeline(load_project(path, runner=runner), options=RunOptions(progress=False))
    assert result.status == "FINISHED"
    root = path.parent
    assert json.loads((root / "data/seen.json").read_text())["run_id"] == result.run_id
    assert json.loads((root / "data/fitted.json").read_text())["run_id"] == result.run_id
    client = MlflowClient(result.tracking_uri)
    experiment = client.get_experiment_by_name("active")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [result.run_id]  # no stray second run
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["inside"] == 1.5
    assert run.data.params["rows"] == "40"
    assert run.data.params["C"] == "0.7"  # autolog's estimator params
    assert "training_score" in run.data.metrics  # autolog's metrics
    models = client.search_logged_models(experiment_ids=[experiment.experiment_id])
    assert [m.source_run_id for m in models] == [result.run_id]  # autolog's model


@pytest.mark.slow
def test_failed_run_stays_failed_when_node_code_used_mlflow(tmp_path: Path) -> None:
    """MLflow ends the active run as FINISHED at exit; kmlc's run must not be it."""
    path = _project(tmp_path / "proj")
    text = path.read_text().replace("    outputs: fitted\n",
                                    "    outputs: fitted\n  - name: boom\n"
                                    "    func: active_nodes.boom\n    inputs: seen\n"
                                    "    outputs: nothing\n")
    path.write_text(text)
    with (path.parent / "active_nodes.py").open("a") as handle:
        handle.write("\n\ndef boom(seen):\n    raise RuntimeError('boom')\n")
    done = subprocess.run([kmlc_exe(), "run", "-f", str(path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 1, done.stderr
    client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("active").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.metrics["inside"] == 1.5


def test_the_run_is_taken_off_mlflows_stack_after_each_node(tmp_path: Path) -> None:
    """In process, with the sequential runner: while a node runs kmlc's run is MLflow's
    active run, and once the run is over it is not (nor ended by MLflow at exit: the
    status stays what kmlc set)."""
    import mlflow

    path = _project(tmp_path / "proj")
    path.write_text(PROJECT.split("  - name: autolog_fit")[0])  # log_inside only
    assert mlflow.active_run() is None
    try:
        result = run_pipeline(load_project(path, runner="sequential"),
                              options=RunOptions(progress=False))
        leaked = mlflow.active_run()
    finally:
        from mlflow.tracking import fluent

        fluent._active_run_stack.get().clear()  # never leak into other tests
    assert result.status == "FINISHED"
    assert json.loads((path.parent / "data/seen.json").read_text())["run_id"] == result.run_id
    assert leaked is None
    run = MlflowClient(result.tracking_uri).get_run(str(result.run_id))
    assert run.info.status == "FINISHED" and run.data.metrics["inside"] == 1.5


@pytest.mark.slow
def test_node_code_logs_to_the_kmlc_run_when_the_process_set_another_tracking_uri(
        tmp_path: Path) -> None:
    """A notebook set MLflow's tracking and registry URIs (``mlflow.set_tracking_uri``,
    ``set_registry_uri``), then runs kmlc in process: MLflow's fluent API reads them before
    ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI``, so node code logged to the notebook's
    store, where kmlc's run is not (the node failed: run not found), and would register
    models in the notebook's registry, not the project's. During the run they are kmlc's;
    after it, the notebook's again."""
    import mlflow

    path = _project(tmp_path / "proj")
    # log_inside only; the project names a registry of its own
    path.write_text(PROJECT.split("  - name: autolog_fit")[0].replace(
        "name: active\n", "name: active\ntracking: {registry_uri: sqlite:///registry.db}\n"))
    notebook = f"sqlite:///{tmp_path / 'notebook.db'}"
    mlflow.set_tracking_uri(notebook)  # the autouse fixture restores both after the test
    mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'notebook-registry.db'}")
    store = f"sqlite:///{path.parent / 'mlflow.db'}"  # the project's store, not the notebook's
    result = run_pipeline(load_project(path, runner="sequential", tracking_uri=store),
                          options=RunOptions(progress=False))
    assert result.status == "FINISHED" and result.tracking_uri == store, result
    assert mlflow.get_tracking_uri() == notebook
    assert mlflow.get_registry_uri() == f"sqlite:///{tmp_path / 'notebook-registry.db'}"
    seen = json.loads((path.parent / "data/seen.json").read_text())
    # node code registering a model would register it in the project's registry, as kmlc
    # does (before: in the notebook's, which MLflow reads before MLFLOW_REGISTRY_URI)
    assert seen["run_id"] == result.run_id, seen
    assert seen["registry"] == f"sqlite:///{path.parent / 'registry.db'}", seen
    run = MlflowClient(result.tracking_uri).get_run(str(result.run_id))
    assert run.data.metrics["inside"] == 1.5 and run.data.params["rows"] == "40"


# ------------------------------------------------------------- the wrapper, in process


@pytest.fixture
def kmlc_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A run in a real sqlite store, named as the session names it for node code."""
    import mlflow
    from mlflow.tracking import fluent

    from kmlc.tracking.client import open_client

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = open_client(uri)  # kmlc's seeded store: no migrations to wait for
    run_id = client.create_run(client.create_experiment("active")).info.run_id
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    assert mlflow.active_run() is None
    yield client, run_id
    fluent._active_run_stack.get().clear()  # never leak into other tests


def _node(seen: list[Any]) -> Any:
    import mlflow

    def log_inside(x: float, *, scale: float = 1.0) -> float:
        """Node code that logs to the active run."""
        mlflow.log_metric("inside", x * scale)
        seen.append(mlflow.active_run().info.run_id)
        return x * scale

    return log_inside


def test_a_node_logs_to_the_kmlc_run_which_is_taken_off_but_not_ended(kmlc_run: Any) -> None:
    import mlflow

    from kmlc.tracking.active import ActiveRunNode

    client, run_id = kmlc_run
    seen: list[Any] = []
    node = ActiveRunNode(_node(seen))
    assert node.__name__ == "log_inside"
    assert node.__doc__ == "Node code that logs to the active run."
    assert node(2.0, scale=3.0) == 6.0
    assert node(1.0) == 1.0  # a second call, a second push and pop
    assert seen == [run_id, run_id]
    assert mlflow.active_run() is None
    run = client.get_run(run_id)
    assert run.info.status == "RUNNING"  # the session's to end
    assert [m.value for m in client.get_metric_history(run_id, "inside")] == [6.0, 1.0]


def test_the_nodes_own_run_is_left_alone(kmlc_run: Any) -> None:
    import mlflow

    from kmlc.tracking.active import ActiveRunNode

    client, run_id = kmlc_run
    other = client.create_run(client.get_experiment_by_name("active").experiment_id)
    own = mlflow.start_run(run_id=other.info.run_id)  # the node started a run of its own
    try:
        seen: list[Any] = []
        assert ActiveRunNode(_node(seen))(1.5) == 1.5
        assert seen == [own.info.run_id]
        assert mlflow.active_run().info.run_id == own.info.run_id  # not popped
    finally:
        mlflow.end_run()
    assert "inside" not in client.get_run(run_id).data.metrics


def test_without_a_kmlc_run_the_node_is_called_as_it_is(kmlc_run: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from kmlc.tracking.active import ActiveRunNode

    monkeypatch.setenv("MLFLOW_RUN_ID", "")
    node = ActiveRunNode(lambda x: (x, mlflow.active_run()))
    assert node(4) == (4, None)
    scaled = ActiveRunNode(lambda x, *, scale=1: (x * scale, mlflow.active_run()))
    assert scaled(4, scale=2) == (8, None)  # its keyword arguments too


def test_a_failing_node_still_takes_the_run_off_and_the_wrapper_pickles(kmlc_run: Any) -> None:
    import pickle

    import mlflow

    from kmlc.tracking.active import ActiveRunNode

    node = ActiveRunNode(json.loads)  # a module-level function: pickled by reference
    with pytest.raises(json.JSONDecodeError):
        node("{broken")
    assert mlflow.active_run() is None
    copy = pickle.loads(pickle.dumps(node))
    assert isinstance(copy, ActiveRunNode) and copy.func is json.loads
    assert copy('{"a": 1}') == {"a": 1}


def test_node_code_logs_to_the_kmlc_store_where_the_process_set_another_uri(
        kmlc_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the session does for the length of a run, in process: a notebook's
    ``mlflow.set_tracking_uri`` would send node code's fluent calls to its own store, where
    kmlc's run is not; within ``fluent_store`` they land in kmlc's run, and the notebook's
    URI is back after it."""
    import mlflow

    from kmlc.tracking.active import ActiveRunNode, fluent_store

    client, run_id = kmlc_run
    store = os.environ["MLFLOW_TRACKING_URI"]
    notebook = f"sqlite:///{tmp_path / 'notebook.db'}"
    mlflow.set_tracking_uri(notebook)  # the autouse fixture restores it after the test
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # as the session sets it
    seen: list[Any] = []
    with fluent_store(store):
        assert mlflow.get_tracking_uri() == store
        assert ActiveRunNode(_node(seen))(2.0) == 2.0
    assert mlflow.get_tracking_uri() == notebook
    assert seen == [run_id]
    assert client.get_run(run_id).data.metrics["inside"] == 2.0
    with pytest.raises(RuntimeError), fluent_store(store):
        raise RuntimeError("a node failed")
    assert mlflow.get_tracking_uri() == notebook  # set back after a failure too


def test_node_code_registers_in_the_kmlc_registry_where_the_process_set_another(
        kmlc_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A notebook's ``mlflow.set_registry_uri`` (read by MLflow before
    ``MLFLOW_REGISTRY_URI``) would have node code register models in the notebook's
    registry: within ``fluent_store`` it is the project's registry (its tracking store
    where it names no registry of its own), and the notebook's after the block."""
    import mlflow

    from kmlc.tracking.active import fluent_store

    store = os.environ["MLFLOW_TRACKING_URI"]
    notebook = f"sqlite:///{tmp_path / 'notebook-registry.db'}"
    own = f"sqlite:///{tmp_path / 'registry.db'}"
    mlflow.set_registry_uri(notebook)  # the autouse fixture restores it after the test
    with fluent_store(store):
        assert mlflow.get_registry_uri() == store
    assert mlflow.get_registry_uri() == notebook
    with pytest.raises(RuntimeError), fluent_store(store, own):
        assert mlflow.get_registry_uri() == own
        raise RuntimeError("a node failed")
    assert mlflow.get_registry_uri() == notebook  # set back after a failure too


def test_fluent_store_changes_nothing_where_no_uri_was_set(kmlc_run: Any) -> None:
    """Without ``mlflow.set_tracking_uri`` MLflow reads the variable the session set: the
    block leaves MLflow as it is (no process-wide URI is set by kmlc)."""
    import mlflow

    from kmlc.tracking.active import fluent_store

    store = os.environ["MLFLOW_TRACKING_URI"]
    with fluent_store("sqlite:///elsewhere.db"):
        assert mlflow.get_tracking_uri() == store
    assert mlflow.get_tracking_uri() == store


MODEL_PROJECT = """\
version: 1
name: modelled
parameters:
  c: 0.7
datasets:
  instances: {type: pandas.CSVDataset, filepath: data/instances.csv}
  sk_model: {type: mlflow.model, flavor: mlflow.sklearn}
  probe: {type: json.JSONDataset, filepath: data/probe.json}
nodes:
  - name: fit
    func: modelled_nodes.fit
    inputs: [instances, params:c]
    outputs: [sk_model, fitted]
  - name: probe
    func: modelled_nodes.probe
    inputs: fitted
    outputs: probe
"""

MODEL_NODES = '''\
import sys

import mlflow
from sklearn.linear_model import LogisticRegression


def fit(instances, c):
    model = LogisticRegression(C=c).fit(instances[["x1", "x2"]], instances["y"])
    return model, model


def probe(fitted):
    loaded = "mlflow.store.tracking.sqlalchemy_store" in sys.modules
    active = mlflow.active_run()  # kmlc's run, read from the store only now
    return {"store_loaded_before": loaded, "run_id": active.info.run_id,
            "artifact_uri": active.info.artifact_uri,
            "store_loaded_after": "mlflow.store.tracking.sqlalchemy_store" in sys.modules}
'''


@pytest.mark.slow
def test_a_model_dataset_is_logged_by_the_worker_and_the_run_read_only_when_asked(
        tmp_path: Path) -> None:
    """The main process writes the model's files; the tracking worker, which has the store
    open, logs them: the main process loads MLflow's database layer only when node code
    reads its active run, and then sees the real run."""
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "data" / "instances.csv").write_text(ROWS)
    (root / "modelled_nodes.py").write_text(MODEL_NODES)
    (root / "mlproject.yml").write_text(MODEL_PROJECT)
    done = subprocess.run([kmlc_exe(), "run", "-f", str(root / "mlproject.yml")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    probe = json.loads((root / "data" / "probe.json").read_text())
    assert probe["store_loaded_before"] is False  # the model was logged all the same
    assert probe["store_loaded_after"] is True
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("modelled")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert probe["run_id"] == run.info.run_id
    assert probe["artifact_uri"] == run.info.artifact_uri
    (model,) = client.search_logged_models(experiment_ids=[experiment.experiment_id])
    assert (model.name, model.source_run_id, str(model.status)) == (
        "sk_model", run.info.run_id, "READY")
    assert [o.model_id for o in run.outputs.model_outputs] == [model.model_id]
