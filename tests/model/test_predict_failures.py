"""``kmlc predict`` when the model itself fails: the step, its exception, a code; never a
traceback, never called a signature problem (issue 23, items 10 and 11)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from mini_project import project_copy

from kmlc import load_project
from kmlc.cli import main
from kmlc.tracking.client import create_sqlite_store

EXTRA_NODES = '''\
import mlflow

from mini_nodes import clean


def clean_checked(instances):
    if "lookup" in instances.columns:  # the model's own call to the tracking store
        mlflow.MlflowClient().get_registered_model("no-such-model")
    return clean(instances)
'''


@pytest.fixture(scope="module")
def unsigned_model(trained_template: tuple[Path, str],
                   tmp_path_factory: pytest.TempPathFactory) -> str:
    """The mini project's model with `signature: none`, its clean step calling MLflow."""
    from kmlc.model.export import save_pipeline_model

    path = project_copy(trained_template[0], tmp_path_factory.mktemp("unsigned") / "proj")
    (path.parent / "extra_nodes.py").write_text(EXTRA_NODES)
    variant = path.with_name("unsigned.yml")
    variant.write_text(path.read_text().replace(
        "model:\n  input: instances\n", "model:\n  input: instances\n  signature: none\n")
        .replace("func: mini_nodes.clean", "func: extra_nodes.clean_checked"))
    out = tmp_path_factory.mktemp("unsigned") / "model"
    save_pipeline_model(load_project(variant), out,
                        pd.read_csv(path.parent / "data/01_raw/instances.csv"))
    return str(out)


def _predict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["predict", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.mark.slow
def test_a_missing_column_without_signature_is_the_steps_failure(
        unsigned_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "part.csv").write_text("id,x1\n1,0.5\n2,0.1\n")
    result = _predict(tmp_path, monkeypatch, "-m", unsigned_model, "-i", "part.csv")
    assert result.exit_code == 1
    line, = result.stderr.splitlines()
    assert line.startswith("error: -i part.csv: step 'clean' (")
    assert " failed: KeyError: " in line and "'x2'" in line
    assert line.endswith("(the model has no signature to check the input against; -i "
                         "part.csv has the columns: id, x1; the full traceback: kmlc "
                         "predict -v) [KMLC714]")
    # and the whole file predicts
    (tmp_path / "full.csv").write_text("id,x1,x2\n1,0.5,0.1\n2,0.1,0.9\n")
    ok = _predict(tmp_path, monkeypatch, "-m", unsigned_model, "-i", "full.csv")
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[0] == "id,proba,label"


@pytest.mark.slow
def test_an_mlflow_error_inside_a_step_is_not_a_signature_problem(
        unsigned_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rows.csv").write_text("id,x1,x2,lookup\n1,0.5,0.1,a\n")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = _predict(tmp_path, monkeypatch, "-m", unsigned_model, "-i", "rows.csv",
                      "--tracking-uri", store)
    assert result.exit_code == 1
    line, = result.stderr.splitlines()
    assert line.startswith("error: -i rows.csv: step 'clean' (")
    assert line.endswith(" failed: MlflowException: Registered Model with name=no-such-model "
                         "not found (the full traceback: kmlc predict -v) [KMLC714]")
    assert (tmp_path / "store.db").exists()  # the model's call went to the store given


@pytest.mark.slow
def test_the_models_registry_calls_go_to_the_registry_given(
        unsigned_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--registry-uri: a step's own registry call (a models:/ lookup) reads that registry,
    not the tracking store's."""
    from mlflow.tracking import MlflowClient

    (tmp_path / "rows.csv").write_text("id,x1,x2,lookup\n1,0.5,0.1,a\n")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    registry = f"sqlite:///{tmp_path / 'registry.db'}"
    for db in ("store.db", "registry.db"):  # empty stores, copied from kmlc's seed: MLflow's
        create_sqlite_store(tmp_path / db)  # migrations would take seconds for each
    MlflowClient(store, registry).create_registered_model("no-such-model")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # restored after the test:
        monkeypatch.setenv(name, "")  # the command sets them for the model's own calls
        monkeypatch.delenv(name)
    args = ("-m", unsigned_model, "-i", "rows.csv", "--tracking-uri", store)
    without = _predict(tmp_path, monkeypatch, *args)
    assert without.exit_code == 1
    assert "Registered Model with name=no-such-model not found" in without.stderr
    found = _predict(tmp_path, monkeypatch, *args, "--registry-uri", registry)
    assert found.exit_code == 0, found.output
    assert found.stdout.splitlines()[0] == "id,proba,label"


# ------------------------------------------ export-model's check (issue 23, items 10 and 12)

REGISTRY_NODES = '''\
import mlflow

from mini_nodes import clean


def clean_with_registry(instances):
    """A step that reads the project's registry at predict time (a models:/ lookup)."""
    mlflow.MlflowClient().get_registered_model("base-model")
    return clean(instances)
'''


def _export(path: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.chdir(path.parent)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(main, ["export-model", "-f", str(path), "--from-local",
                                       "-o", str(out)])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.mark.slow
def test_the_fresh_process_check_keeps_the_projects_store_and_writes_no_bytecode(
        trained_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    path = trained_copy
    (path.parent / "registry_nodes.py").write_text(REGISTRY_NODES)
    variant = path.with_name("registry.yml")
    variant.write_text(path.read_text().replace("func: mini_nodes.clean",
                                                "func: registry_nodes.clean_with_registry"))
    create_sqlite_store(path.parent / "mlflow.db")  # the copy's store (from kmlc's seed)
    MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}").create_registered_model("base-model")
    out = tmp_path / "model"
    code, output = _export(variant, out, monkeypatch)
    assert code == 0, output
    assert f"written: {out} (loaded and predicted its input example in a fresh process)" \
        in output
    assert not [p for p in out.rglob("__pycache__")]
    assert not [p for p in out.rglob("*.pyc")]


@pytest.mark.slow
def test_export_says_what_it_checked_without_an_input_example(
        trained_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = trained_copy
    variant = path.with_name("no-example.yml")
    variant.write_text(path.read_text().replace(
        "model:\n  input: instances\n", "model:\n  input: instances\n  input_example: false\n"))
    out = tmp_path / "model"
    code, output = _export(variant, out, monkeypatch)
    assert code == 0, output
    assert f"written: {out} (loaded in a fresh process; no input example to predict)" in output
    assert "predicted" not in output
    assert not [p for p in out.rglob("__pycache__")]
