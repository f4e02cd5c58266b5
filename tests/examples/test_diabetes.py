"""End to end: the README commands of examples/diabetes (candidates and a sweep), then
what they left in MLflow and on disk."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from readme_commands import copy_example, readme_commands, run_commands

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("diabetes") / "diabetes"
    copy_example("diabetes", root)
    run_commands(root, readme_commands("diabetes"), timeout=300)
    return root


def test_the_sweep_compares_both_candidates_in_nested_runs(project: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    experiment = client.get_experiment_by_name("diabetes")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = sorted((r for r in runs if r.data.tags.get("mlflow.parentRunId")
                       == parent.info.run_id), key=lambda r: int(r.data.tags["kmlc.sweep.trial"]))
    assert parent.info.status == "FINISHED" and parent.info.run_name == "sweep-training"
    assert [c.data.tags["kmlc.sweep.candidate"] for c in children] == ["ridge"] * 3 + [
        "forest"] * 3
    assert [c.data.params.get("ridge.model_options") is not None for c in children] == [
        True] * 3 + [False] * 3  # a trial runs and logs only its own candidate
    # a namespaced copy logs its metrics under its namespace
    assert all(c.info.status == "FINISHED"
               and f"{c.data.tags['kmlc.sweep.candidate']}.r2" in c.data.metrics
               for c in children)
    # the split ran once, in the parent, with the shared parameters
    assert parent.data.metrics["rows"] == 442.0
    assert "split" in parent.data.params and "rows" not in children[0].data.metrics
    def r2(child):  # type: ignore[no-untyped-def]
        return child.data.metrics[f"{child.data.tags['kmlc.sweep.candidate']}.r2"]

    best = max(children, key=r2)
    tags = parent.data.tags
    assert tags["kmlc.sweep.best_run_id"] == best.info.run_id
    assert (tags["kmlc.sweep.trials"], tags["kmlc.sweep.failed"]) == ("6", "0")
    assert parent.data.metrics["best.r2"] == r2(best)
    assert parent.data.params["best.candidate"] == best.data.tags["kmlc.sweep.candidate"]
    board = pd.read_csv(client.download_artifacts(parent.info.run_id, "leaderboard.csv",
                                                  str(project)))
    assert list(board["candidate"]) == ["ridge"] * 3 + ["forest"] * 3


def test_the_best_candidate_file_is_in_place(project: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("diabetes").experiment_id], "tags.kmlc.sweep = 'grid'")
    best = client.get_run(parent.data.tags["kmlc.sweep.best_run_id"])
    candidate = best.data.tags["kmlc.sweep.candidate"]
    trial = int(best.data.tags["kmlc.sweep.trial"])
    kept = (project / ".kmlc/sweeps" / parent.info.run_id / f"trial-{trial:03d}"
            / f"data/06_models/{candidate}_regressor.pkl")
    assert (project / f"data/06_models/{candidate}_regressor.pkl").read_bytes() == (
        kept.read_bytes())


PREDICT = """\
import json, sys
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
rows = pd.read_csv(sys.argv[2])
print(json.dumps({uri: mlflow.pyfunc.load_model(uri).predict(rows)["progression"].tolist()
                  for uri in sys.argv[3:]}))
"""


def test_the_best_trial_model_is_logged_once_promoted_and_predicts_like_its_rerun(
        project: Path) -> None:
    """The sweep logs one model, from the best trial (the winning candidate's inference
    nodes), through model.promote's gate; `kmlc run training --candidate C --params <best>`
    (the command the sweep printed) logs a model that predicts raw rows the same, both
    loaded with mlflow.pyfunc.load_model in a fresh process."""
    import pickle

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{project}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("diabetes")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.kmlc.sweep = 'grid'")
    best = client.get_run(parent.data.tags["kmlc.sweep.best_run_id"])
    candidate = best.data.tags["kmlc.sweep.candidate"]
    models = client.search_logged_models([experiment.experiment_id])
    assert [m.source_run_id for m in models] == [best.info.run_id]  # once, from the best
    version = client.get_model_version_by_alias("diabetes", "champion")
    assert version.run_id == best.info.run_id  # the gate read the sweep's metric: r2
    assert client.get_run(best.info.run_id).data.tags["kmlc.promotion"] == "promoted"
    command = parent.data.tags["kmlc.sweep.command"]
    assert command.startswith(f"kmlc run training --candidate {candidate} --params ")
    run_commands(project, [shlex.split(command)], timeout=300)
    (rerun,) = [m for m in client.search_logged_models([experiment.experiment_id])
                if m.source_run_id != best.info.run_id]
    rerun_run = client.get_run(rerun.source_run_id)
    assert "mlflow.parentRunId" not in rerun_run.data.tags
    assert {k: v for k, v in rerun_run.data.params.items() if k.startswith(candidate)} == {
        k: v for k, v in best.data.params.items() if k.startswith(candidate)}
    raw = project / "data/01_raw/patients.csv"
    swept_uri, rerun_uri = f"models:/{models[0].model_id}", f"models:/{rerun.model_id}"
    done = subprocess.run([sys.executable, "-c", PREDICT, uri, str(raw), swept_uri, rerun_uri],
                          capture_output=True, text=True, timeout=300, cwd=project.parent)
    assert done.returncode == 0, done.stderr
    predicted = json.loads(done.stdout.splitlines()[-1])
    assert len(predicted[swept_uri]) == 442
    assert predicted[swept_uri] == pytest.approx(predicted[rerun_uri])
    # the winning candidate's regressor, not the other one's
    with open(project / f"data/06_models/{candidate}_regressor.pkl", "rb") as f:
        regressor = pickle.load(f)
    rows = pd.read_csv(raw)
    assert predicted[swept_uri] == pytest.approx(regressor.predict(rows).tolist())
    (other,) = client.search_runs([experiment.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}' and "
                                  f"tags.kmlc.sweep.candidate != '{candidate}'",
                                  max_results=1)
    name = other.data.tags["kmlc.sweep.candidate"]
    trial = int(other.data.tags["kmlc.sweep.trial"])
    with open(project / ".kmlc/sweeps" / parent.info.run_id / f"trial-{trial:03d}"
              / f"data/06_models/{name}_regressor.pkl", "rb") as f:
        assert predicted[swept_uri] != pytest.approx(pickle.load(f).predict(rows).tolist())
