"""End to end: the README commands of examples/reviews, then what they left in MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from readme_commands import copy_example, readme_commands, run_commands

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example after running every README command."""
    root = tmp_path_factory.mktemp("reviews") / "reviews"
    copy_example("reviews", root)
    commands = readme_commands("reviews")
    assert [c[:2] for c in commands] == [
        ["kmlc", "validate"], ["kmlc", "run"], ["kmlc", "run"], ["kmlc", "run"], ["kmlc", "run"],
        ["kmlc", "run"]]
    assert [c[2] for c in commands[1:]] == ["etl_instances", "etl_labels", "training",
                                            "inference", "user_app"]
    run_commands(root, commands, timeout=120)
    return root


def _runs(client, pipeline: str) -> list:
    experiment = client.get_experiment_by_name("reviews")
    assert experiment is not None
    return client.search_runs([experiment.experiment_id], f"tags.`kmlc.pipeline` = '{pipeline}'")


def test_etl_outputs(project: Path) -> None:
    instances = pd.read_csv(project / "data" / "02_intermediate" / "instances.csv")
    labels = pd.read_csv(project / "data" / "02_intermediate" / "labels.csv")
    assert list(instances.columns) == ["id", "text"]
    assert list(labels.columns) == ["id", "sentiment"]
    assert len(instances) == len(labels) == 400
    assert set(instances["id"]) == set(labels["id"])
    assert labels["sentiment"].value_counts().to_dict() == {"positive": 200, "negative": 200}


def test_training_run(client) -> None:
    (run,) = _runs(client, "training")
    assert run.info.status == "FINISHED"
    assert run.data.params == {  # flattened; only what the training nodes read
        "split.test_size": "0.25", "split.seed": "42",
        "vectorizer.ngram_max": "2", "vectorizer.min_df": "1",
        "classifier.c": "10.0", "classifier.max_iter": "1000"}
    metrics = run.data.metrics
    assert {"accuracy", "f1", "precision", "recall", "roc_auc", "test_rows"} <= set(metrics)
    assert metrics["test_rows"] == 100
    assert metrics["accuracy"] > 0.8
    assert 0.5 < metrics["roc_auc"] <= 1.0
    for other in ("etl_instances", "etl_labels", "inference", "user_app"):
        assert [r.info.status for r in _runs(client, other)] == ["FINISHED"]
    (etl,) = _runs(client, "etl_instances")
    assert etl.data.params == {"corpus.n_reviews": "400", "corpus.seed": "42",
                               "corpus.mixed_rate": "0.2"}


def test_logged_model_matches_inference_run(project: Path, client) -> None:
    import mlflow.pyfunc

    (run,) = _runs(client, "training")
    mlflow.set_tracking_uri(f"sqlite:///{project}/mlflow.db")
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    instances = pd.read_csv(project / "data" / "02_intermediate" / "instances.csv")
    predicted = model.predict(instances)
    expected = pd.read_csv(project / "data" / "07_model_output" / "predictions.csv")
    assert list(expected.columns) == ["id", "sentiment", "probability"]
    assert set(expected["sentiment"]) == {"positive", "negative"}
    pd.testing.assert_frame_equal(pd.DataFrame(predicted).reset_index(drop=True), expected,
                                  check_dtype=False, check_exact=False, atol=1e-6)


def test_registered_model_and_alias(client) -> None:
    (run,) = _runs(client, "training")
    versions = client.search_model_versions("name = 'reviews'")
    assert [str(v.version) for v in versions] == ["1"]
    assert versions[0].run_id == run.info.run_id
    champion = client.get_model_version_by_alias("reviews", "champion")
    assert str(champion.version) == "1"


def test_user_app(project: Path, client) -> None:
    follow_ups = pd.read_csv(project / "data" / "08_reporting" / "follow_ups.csv")
    new_reviews = pd.read_csv(project / "data" / "01_raw" / "new_reviews.csv")
    assert list(follow_ups["id"]) == list(new_reviews["id"])
    assert {"sentiment", "probability", "follow_up", "priority"} <= set(follow_ups.columns)
    flagged = follow_ups[follow_ups["follow_up"]]
    assert len(flagged) > 0
    assert (flagged["sentiment"] == "negative").all()
    assert (follow_ups.loc[~follow_ups["follow_up"], "priority"] == "none").all()
    (run,) = _runs(client, "user_app")
    assert run.data.metrics["flagged_reviews"] == len(flagged)
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "reports")]
    assert artifacts == ["reports/follow_ups.csv"]
