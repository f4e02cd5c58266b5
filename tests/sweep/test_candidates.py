"""A model bound per candidate: `kmlc run --candidate`, and a run of every candidate,
on examples/diabetes (a real sqlite store, real Kedro runs)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from kmlc.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "diabetes"


def _project(root: Path) -> Path:
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(
        "mlflow.db", "mlruns", ".kmlc", "__pycache__", "06_models"))
    return root / "mlproject.yml"


def test_run_candidate_runs_one_candidate_and_logs_its_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    path = _project(tmp_path / "diabetes")
    root = path.parent
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["run", "training", "-f", str(path),
                                       "--candidate", "forst"])
    assert result.exit_code == 1
    assert "candidate 'forst' is not one of sweep.candidates (ridge, forest)" in result.output
    assert "did you mean 'forest'?" in result.output
    assert not (root / "mlflow.db").exists()
    # every candidate: trained and logged, but no model (which one would it hold?)
    result = CliRunner().invoke(main, ["run", "training", "-f", str(path)])
    assert result.exit_code == 0, result.output
    assert "no model logged: the model depends on the candidate" in result.output
    assert "--candidate ridge" in result.output
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("diabetes")
    assert client.search_logged_models([experiment.experiment_id]) == []
    for name in ("ridge", "forest"):
        (root / f"data/06_models/{name}_regressor.pkl").unlink()
    # one candidate: its nodes only, its model, its gate read by the sweep's metric name
    result = CliRunner().invoke(main, ["run", "training", "-f", str(path), "--candidate",
                                       "ridge", "--params", "ridge.model_options.alpha=0.1"])
    assert result.exit_code == 0, result.output
    assert (root / "data/06_models/ridge_regressor.pkl").is_file()
    assert not (root / "data/06_models/forest_regressor.pkl").exists()
    (model,) = client.search_logged_models([experiment.experiment_id])
    run = client.get_run(model.source_run_id)
    assert "forest.r2" not in run.data.metrics and "ridge.r2" in run.data.metrics
    version = client.get_model_version_by_alias("diabetes", "champion")
    assert version.run_id == run.info.run_id
    rows = pd.read_csv(root / "data/01_raw/patients.csv")
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")  # restored by conftest
    predicted = mlflow.pyfunc.load_model(f"models:/{model.model_id}").predict(rows)
    with open(root / "data/06_models/ridge_regressor.pkl", "rb") as f:
        regressor = pickle.load(f)
    assert regressor.alpha == 0.1
    assert predicted["progression"].tolist() == pytest.approx(regressor.predict(rows).tolist())
