"""End to end: the README commands of examples/iris, then what they left in MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from readme_commands import copy_example, readme_commands, run_commands

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("iris") / "iris"
    copy_example("iris", root)
    run_commands(root, readme_commands("iris"), timeout=180)
    return root


def test_training_run_is_complete(project: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    experiment = client.get_experiment_by_name("iris")
    (run,) = client.search_runs([experiment.experiment_id], "tags.`kmlc.pipeline` = 'training'")
    assert run.info.status == "FINISHED"
    assert {"split", "model.c", "model.max_iter"} <= set(run.data.params)
    assert run.data.metrics["accuracy"] > 0.8
    assert any(key.startswith("test.") for key in run.data.metrics)
    assert [a.path for a in client.list_artifacts(run.info.run_id, "reports")] == [
        "reports/confusion_matrix.png"]
    models = client.search_logged_models([experiment.experiment_id])
    assert [m.name for m in models] == ["model"]


def test_logged_model_equals_kmlc_run_inference(project: Path) -> None:
    import mlflow

    expected = pd.read_csv(project / "data/07_model_output/predictions.csv", index_col=0)
    exported = pd.read_csv(project / "data/07_model_output/exported_predictions.csv",
                           index_col=0)  # kmlc predict keeps the named index as a column
    pd.testing.assert_frame_equal(exported, expected)
    mlflow.set_tracking_uri(f"sqlite:///{project}/mlflow.db")
    model = mlflow.pyfunc.load_model(str(project / "build/iris-model"))
    got = model.predict(pd.read_csv(project / "data/01_raw/instances.csv"))
    assert list(got.columns) == list(expected.columns)
    assert got.iloc[:, 0].tolist() == expected.iloc[:, 0].tolist()
    assert got.iloc[:, 1].tolist() == pytest.approx(expected.iloc[:, 1].tolist())
