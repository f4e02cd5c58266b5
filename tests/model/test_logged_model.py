"""The LoggedModel of a training run as MLflow 3 shows it: the run's parameters and
metrics on the model, and the data it was trained on as the run's dataset inputs, read
back from the real sqlite store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient

from kmlc.config.loader import load_project
from kmlc.config.target import tracking_target

# what inference imports by name at run time, which no code scan sees, and a constraint
# that replaces auto's pin
EXTRA = "  extra_pip_requirements: [pyarrow>=15, 'scikit-learn>=1.0']\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[MlflowClient, Path, str]:
    """One training run of the mini project with extra requirements: (client, file, run)."""
    from mini_project import MINI_YAML, write_mini

    from kmlc import RunOptions, run_pipeline

    text = MINI_YAML.replace("model:\n  input: instances\n",
                             "model:\n  input: instances\n" + EXTRA)
    path = write_mini(tmp_path_factory.mktemp("logged") / "proj", text)
    spec = load_project(path)
    result = run_pipeline(spec, "training", RunOptions(progress=False))
    return MlflowClient(tracking_target(spec).uri), path, str(result.run_id)


def _model(client: MlflowClient, run_id: str):
    """The bound model (``model.artifact_path``: model), not the sk_model dataset's."""
    run = client.get_run(run_id)
    models = [client.get_logged_model(o.model_id) for o in run.outputs.model_outputs]
    (model,) = [m for m in models if m.name == "model"]
    return model


@pytest.mark.slow
def test_the_model_carries_its_runs_params_and_metrics(trained) -> None:
    client, _, run_id = trained
    run = client.get_run(run_id)
    model = _model(client, run_id)
    assert model.status == LoggedModelStatus.READY and model.source_run_id == run_id
    assert model.params == run.data.params
    assert {"model.c": "0.5", "model.max_iter": "200"}.items() <= model.params.items()
    latest = {m.key: m.value for m in model.metrics}
    assert latest == run.data.metrics  # every metric, at its latest value
    assert latest["loss"] == 0.25  # the last point of a history, not the first
    # the run's own history gained no point
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [1.0, 0.5, 0.25]
    accuracy = latest["accuracy"]
    found = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                        filter_string=f"metrics.accuracy > {accuracy - 0.01}")
    assert [m.model_id for m in found] == [model.model_id]
    assert not client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                           filter_string=f"metrics.accuracy > {accuracy}")
    found = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                        filter_string="params.`model.c` = '0.5'")
    assert [m.model_id for m in found] == [model.model_id]


@pytest.mark.slow
def test_the_runs_persisted_inputs_are_its_dataset_inputs(trained) -> None:
    client, path, run_id = trained
    inputs = client.get_run(run_id).inputs.dataset_inputs
    by_name = {i.dataset.name: i for i in inputs}
    assert sorted(by_name) == ["instances", "labels"]  # not the memory or MLflow datasets
    for name in ("instances", "labels"):
        entry = by_name[name]
        file = (path.parent / "data" / "01_raw" / f"{name}.csv").resolve()
        content = hashlib.sha256(file.read_bytes()).hexdigest()
        tags = {t.key: t.value for t in entry.tags}
        assert tags["kmlc.content_hash"] == f"sha256:{content}"
        assert tags["mlflow.data.context"] == "training" and tags["kmlc.digest_of"] == "content"
        assert entry.dataset.digest == content[:36]
        assert json.loads(entry.dataset.source) == {"uri": file.as_uri()}
        assert entry.dataset.source_type == "local"
    schema = json.loads(by_name["instances"].dataset.schema)["mlflow_colspec"]
    assert [(c["name"], c["type"]) for c in schema] == [("id", "long"), ("x1", "double"),
                                                        ("x2", "double")]
    assert json.loads(by_name["instances"].dataset.profile)["num_rows"] == 40
    # the model's metrics name the data the model was trained on (model.input)
    model = _model(client, run_id)
    assert {(m.dataset_name, m.dataset_digest) for m in model.metrics} == {
        ("instances", by_name["instances"].dataset.digest)}


def test_plan_lists_the_dataset_inputs_a_run_logs(mini) -> None:
    from click.testing import CliRunner

    from kmlc.cli import main

    path = mini()
    result = CliRunner().invoke(main, ["plan", "training", "-f", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["pipelines"]["training"]["dataset_inputs"] == [
        "instances", "labels"]
    result = CliRunner().invoke(main, ["plan", "inference", "-f", str(path), "--format",
                                       "text"])
    assert "dataset inputs (lineage): classifier, instances" in result.output


@pytest.mark.slow
def test_extra_requirements_are_added_to_the_inferred_ones(trained) -> None:
    from importlib.metadata import version

    client, _, run_id = trained
    model = _model(client, run_id)
    location = Path(model.artifact_location.removeprefix("file://"))
    lines = (location / "requirements.txt").read_text().split()
    assert f"pandas=={version('pandas')}" in lines  # auto's, pinned
    assert f"kedro=={version('kedro')}" in lines
    assert "pyarrow>=15" in lines  # the extra one
    assert "scikit-learn>=1.0" in lines  # replaces auto's pin
    assert not any(line.startswith("scikit-learn==") for line in lines)


def test_explicit_and_extra_requirements_in_the_spec_and_the_plan(mini) -> None:
    from click.testing import CliRunner
    from mini_project import MINI_YAML

    from kmlc.cli import main

    path = mini(MINI_YAML.replace("model:\n  input: instances\n",
                                  "model:\n  input: instances\n  pip_requirements: "
                                  "[scikit-learn, pandas]\n" + EXTRA))
    spec = load_project(path)
    assert spec.model.pip_requirements == ("scikit-learn", "pandas")
    assert spec.model.extra_pip_requirements == ("pyarrow>=15", "scikit-learn>=1.0")
    result = CliRunner().invoke(main, ["plan", "-f", str(path), "--format", "json"])
    assert json.loads(result.output)["model"]["requirements"] == [
        "pandas", "pyarrow>=15", "scikit-learn>=1.0"]


@pytest.mark.slow
def test_a_run_without_a_model_logs_its_inputs_too(trained) -> None:
    from kmlc import RunOptions, run_pipeline

    client, path, _ = trained
    result = run_pipeline(load_project(path), "inference", RunOptions(progress=False))
    inputs = client.get_run(str(result.run_id)).inputs.dataset_inputs
    tags = {i.dataset.name: {t.key: t.value for t in i.tags} for i in inputs}
    assert sorted(tags) == ["classifier", "instances"]  # the packed model file is read too
    assert {t["mlflow.data.context"] for t in tags.values()} == {"inference"}
    file = path.parent / "data" / "06_models" / "classifier.pkl"
    assert tags["classifier"]["kmlc.content_hash"] == (
        "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest())
    assert next(i for i in inputs if i.dataset.name == "classifier").dataset.schema is None
