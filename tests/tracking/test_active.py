"""Node code calling MLflow's fluent API lands in the kmlc run, under every runner."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

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
    return {"run_id": mlflow.active_run().info.run_id}


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
