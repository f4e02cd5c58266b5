"""End to end: the README commands of examples/diabetes (candidates and a sweep), then
what they left in MLflow and on disk."""

from __future__ import annotations

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
