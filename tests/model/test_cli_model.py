"""`kmlc export-model` and `kmlc predict` options through the CLI, checked by effect."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from kmlc import RunOptions, load_project, run_pipeline
from kmlc.cli import main
from kmlc.config.selection import Selection
from kmlc.run import NodeFailure


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.output


def _plan_params(folder: Path) -> dict:
    return json.loads((folder / "artifacts" / "kmlc_plan.json").read_text())["params"]


@pytest.mark.slow
def test_export_env_and_params_reach_the_exported_model(trained_copy, tmp_path) -> None:
    path = trained_copy
    with path.open("a") as fh:
        fh.write("environments:\n  strict:\n    parameters: {threshold: 0.9}\n")
    out = tmp_path / "env"
    code, _, output = _cli("export-model", "-f", str(path), "--from-local", "--no-check",
                           "-o", str(out), "--env", "strict")
    assert code == 0, output
    assert "fresh process" not in output  # --no-check: not loaded before writing
    assert _plan_params(out) == {"params:threshold": 0.9}
    out = tmp_path / "params"
    code, _, output = _cli("export-model", "-f", str(path), "--from-local", "-o", str(out),
                           "--env", "strict", "--params", "threshold=0.25")
    assert code == 0, output
    assert "loaded and predicted its input example in a fresh process" in output
    assert _plan_params(out) == {"params:threshold": 0.25}  # --params over --env


@pytest.mark.slow
def test_alias_without_register_is_a_usage_error(trained_template, tmp_path) -> None:
    path, run_id = trained_template
    code, _, output = _cli("export-model", "-f", str(path), "--run-id", run_id, "-o",
                           str(tmp_path / "x"), "--alias", "champion")
    assert code == 2 and "--alias needs --register NAME" in output
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_predict_csv_to_stdout_and_explicit_types(trained_template, tmp_path) -> None:
    path, run_id = trained_template
    uri = f"sqlite:///{path.parent / 'mlflow.db'}"
    instances = path.parent / "data/01_raw/instances.csv"
    code, stdout, output = _cli("predict", "-m", f"runs:/{run_id}/model", "-i",
                                str(instances), "--tracking-uri", uri)
    assert code == 0, output
    frame = pd.read_csv(io.StringIO(stdout))  # stdout is the CSV and nothing else
    assert list(frame.columns) == ["id", "proba", "label"] and len(frame) == 40
    # a suffix that says nothing: the types come from the options
    odd_in = tmp_path / "instances.data"
    odd_in.write_bytes(instances.read_bytes())
    odd_out = tmp_path / "predictions.out"
    code, _, output = _cli("predict", "-m", f"runs:/{run_id}/model", "-i", str(odd_in),
                           "--input-type", "pandas.CSVDataset", "-o", str(odd_out),
                           "--output-type", "pandas.JSONDataset", "--tracking-uri", uri)
    assert code == 0, output
    written = pd.read_json(odd_out)
    assert list(written.columns) == ["id", "proba", "label"]
    pd.testing.assert_series_equal(written["proba"], frame["proba"], check_exact=False)
    code, _, output = _cli("predict", "-m", f"runs:/{run_id}/model", "-i", str(odd_in),
                           "--tracking-uri", uri)
    assert code == 1 and "pass --input-type" in output


@pytest.mark.slow
def test_latest_picks_the_newest_finished_training_run_with_a_model(mini, tmp_path) -> None:
    # a project of its own: this test adds runs to the store (the shared one is only read)
    path = mini()
    spec = load_project(path)
    first = run_pipeline(spec, "training", RunOptions(progress=False)).run_id
    newest = run_pipeline(spec, "training", RunOptions(progress=False)).run_id
    with pytest.raises(NodeFailure):  # newer, but FAILED
        run_pipeline(load_project(path, params=("fail=true",)), "training",
                     RunOptions(progress=False))
    no_model = run_pipeline(spec, "training",
                            RunOptions(Selection(to_nodes=("clean",)), progress=False))
    assert no_model.status == "FINISHED" and no_model.model_uri is None
    run_pipeline(spec, "inference", RunOptions(progress=False))  # newest of all
    code, _, output = _cli("export-model", "-f", str(path), "--latest", "--no-check", "-o",
                           str(tmp_path / "latest"))
    assert code == 0, output
    assert f"model: runs:/{newest}/model" in output and newest != first
    # --tracking-uri: another store, with one training run, is where --latest looks
    other = f"sqlite:///{tmp_path / 'other.db'}"
    elsewhere = run_pipeline(load_project(path, tracking_uri=other), "training",
                             RunOptions(progress=False))
    code, _, output = _cli("export-model", "-f", str(path), "--latest", "--tracking-uri",
                           other, "--register", "mini-elsewhere")
    assert code == 0, output
    assert f"model: runs:/{elsewhere.run_id}/model" in output
    version = MlflowClient(other).get_model_version("mini-elsewhere", "1")
    assert version.run_id == elsewhere.run_id
    project_client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")
    assert not project_client.search_registered_models("name = 'mini-elsewhere'")
