"""End to end: the README commands of examples/digits, then what they left in MLflow."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from readme_commands import copy_example, readme_commands, run_commands

EPOCHS = 12
HISTORIES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example after running every README command."""
    root = tmp_path_factory.mktemp("digits") / "digits"
    copy_example("digits", root)
    commands = readme_commands("digits")
    assert commands == [["kmlc", "validate"], ["kmlc", "run", "prepare"],
                        ["kmlc", "run", "training"], ["kmlc", "run", "inference"]]
    run_commands(root, commands, timeout=120, env={"MPLBACKEND": "Agg"})
    return root


def _run(client, pipeline: str):
    experiment = client.get_experiment_by_name("digits")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id],
                              f"tags.`kmlc.pipeline` = '{pipeline}'")
    assert len(runs) == 1
    return runs[0]


def test_prepare_writes_raw_images(project: Path) -> None:
    with open(project / "data" / "02_intermediate" / "digit_images.pkl", "rb") as handle:
        images = pickle.load(handle)
    with open(project / "data" / "02_intermediate" / "digit_labels.pkl", "rb") as handle:
        labels = pickle.load(handle)
    assert images.shape == (1797, 8, 8)
    assert labels.shape == (1797,)
    assert images.min() == 0 and images.max() == 16
    assert set(labels.tolist()) == set(range(10))


def test_training_run(client) -> None:
    run = _run(client, "training")
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["mlp.epochs"] == str(EPOCHS)
    assert params["mlp.hidden_layers"] == "[64]"
    assert params["split.validation_size"] == "0.25"
    metrics = run.data.metrics
    assert metrics["validation.accuracy"] > 0.9
    assert metrics["validation.roc_auc_ovr"] > 0.95
    assert metrics["validation.rows"] == 450
    assert _run(client, "prepare").info.status == "FINISHED"
    assert _run(client, "inference").info.status == "FINISHED"


def test_metric_histories_have_one_value_per_epoch(client) -> None:
    run = _run(client, "training")
    for key in HISTORIES:
        history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        assert [m.step for m in history] == list(range(EPOCHS)), key
        values = [m.value for m in history]
        assert run.data.metrics[key] == values[-1]
        if key.endswith("loss"):
            assert values[-1] < values[0], key
        else:
            assert all(0.0 <= v <= 1.0 for v in values) and values[-1] > values[0], key


def test_plots_are_artifacts(project: Path, client) -> None:
    run = _run(client, "training")
    plots = sorted(a.path for a in client.list_artifacts(run.info.run_id, "plots"))
    assert plots == ["plots/confusion_matrix.png", "plots/roc_curves.png"]
    for name in ("confusion_matrix.png", "roc_curves.png"):
        local = client.download_artifacts(run.info.run_id, f"plots/{name}",
                                          str(project / "downloaded"))
        assert Path(local).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_logged_model_matches_inference_run(project: Path, client) -> None:
    import mlflow.pyfunc

    run = _run(client, "training")
    mlflow.set_tracking_uri(f"sqlite:///{project}/mlflow.db")
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    inputs = model.metadata.get_input_schema().inputs
    assert inputs[0].shape == (-1, 8, 8)
    with open(project / "data" / "02_intermediate" / "digit_images.pkl", "rb") as handle:
        images = pickle.load(handle)
    predicted = model.predict(images)
    expected = pd.read_csv(project / "data" / "07_model_output" / "predictions.csv")
    assert list(expected.columns) == ["label", "confidence"]
    assert len(expected) == len(images)
    pd.testing.assert_frame_equal(pd.DataFrame(predicted).reset_index(drop=True), expected,
                                  check_dtype=False, check_exact=False, atol=1e-9)
    assert expected["confidence"].between(0.0, 1.0).all()
    with open(project / "data" / "02_intermediate" / "digit_labels.pkl", "rb") as handle:
        labels = pickle.load(handle)
    assert np.mean(expected["label"].to_numpy() == labels) > 0.9
