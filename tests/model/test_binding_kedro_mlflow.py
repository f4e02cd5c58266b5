"""The binding as kedro-mlflow users write it: ``input_name`` read only by inference, and
``signature: none`` with the default input example (issue 23, items 4 and 5)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mini_project import MINI_YAML

from kmlc import RunOptions, load_project, run_pipeline
from kmlc.config.loader import check_project

# training reads `instances`; inference reads `future_instances` only (kedro-mlflow's
# pipeline_ml_factory(training, inference, input_name="future_instances"))
INFER_ONLY = MINI_YAML.replace(
    "  labels: {type: pandas.CSVDataset",
    "  future_instances: {type: pandas.CSVDataset, filepath: data/01_raw/future.csv}\n"
    "  labels: {type: pandas.CSVDataset").replace(
    """  - name: predict
    func: mini_nodes.predict
    inputs: [classifier, features, params:threshold]
""", """  - name: clean_future
    func: mini_nodes.clean
    inputs: future_instances
    outputs: future_features
    tags: [inference]
  - name: predict
    func: mini_nodes.predict
    inputs: [classifier, future_features, params:threshold]
""").replace("  - name: clean\n    func: mini_nodes.clean\n    inputs: instances\n"
             "    outputs: features\n    tags: [training, inference]",
             "  - name: clean\n    func: mini_nodes.clean\n    inputs: instances\n"
             "    outputs: features\n    tags: [training]").replace(
    "model:\n  input: instances\n", "model:\n  input: future_instances\n")


def _future(path: Path) -> pd.DataFrame:
    rows = pd.DataFrame({"id": [100, 101, 102], "x1": [0.1, 0.5, 0.9], "x2": [0.3, 0.2, 0.8]})
    rows.to_csv(path.parent / "data" / "01_raw" / "future.csv", index=False)
    return rows


@pytest.mark.slow
def test_a_model_input_only_inference_reads_is_accepted(mini) -> None:
    path = mini(INFER_ONLY)
    assert check_project(path).errors == []
    rows = _future(path)
    result = run_pipeline(load_project(path), "training", RunOptions(progress=False))
    assert result.status == "FINISHED" and result.model_uri
    mlflow.set_tracking_uri(result.tracking_uri)  # restored by the autouse fixture
    model = mlflow.pyfunc.load_model(result.model_uri)
    # the signature and the example come from the dataset as the catalog loads it
    assert [c.name for c in model.metadata.signature.inputs.inputs] == ["id", "x1", "x2"]
    example = model.metadata.load_input_example(_local(result.model_uri))
    pd.testing.assert_frame_equal(pd.DataFrame(example).reset_index(drop=True), rows,
                                  check_dtype=False)
    first = model.predict(rows)
    pd.testing.assert_frame_equal(model.predict(rows), first)
    assert list(first.index) == [100, 101, 102]


def _local(model_uri: str) -> str:
    return mlflow.artifacts.download_artifacts(model_uri)


@pytest.mark.slow
def test_a_missing_inference_only_input_gives_a_model_without_signature(mini) -> None:
    path = mini(INFER_ONLY)
    result = run_pipeline(load_project(path), "training", RunOptions(progress=False))
    assert result.status == "FINISHED" and result.model_uri
    assert any("no signature and no input example: its input 'future_instances'" in note
               for note in result.notes), result.notes
    mlflow.set_tracking_uri(result.tracking_uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    assert model.metadata.signature is None
    rows = _future(path)
    assert list(model.predict(rows).index) == [100, 101, 102]


@pytest.mark.slow
def test_signature_none_means_none_even_with_the_input_example(trained_copy: Path,
                                                               tmp_path: Path) -> None:
    from kmlc.model.export import save_pipeline_model

    path = trained_copy
    variant = path.with_name("no-signature.yml")
    variant.write_text(path.read_text().replace(
        "model:\n  input: instances\n", "model:\n  input: instances\n  signature: none\n"))
    out = tmp_path / "model"
    save_pipeline_model(load_project(variant), out,
                        pd.read_csv(path.parent / "data/01_raw/instances.csv"))
    assert (out / "input_example.json").exists()  # the example is kept
    model = mlflow.pyfunc.load_model(str(out))
    assert model.metadata.signature is None
    # raw rows a signature would refuse: ints for floats, an extra text column
    raw = pd.DataFrame({"id": [1, 2], "x1": [0, 1], "x2": [1, 0], "note": ["a", "b"]})
    assert list(model.predict(raw).columns) == ["proba", "label"]
