"""export-model and predict: real logged models, loaded in fresh processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from mlflow.tracking import MlflowClient

from kmlc.cli import main
from kmlc.compiler.inference_plan import plan_from_spec
from kmlc.config.loader import load_project


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.slow
def test_plan_is_ordered_and_explicit(trained_template) -> None:
    path, _ = trained_template
    plan = plan_from_spec(load_project(path))
    assert plan.input == "instances" and plan.output == "predictions"
    assert [s.name for s in plan.steps] == ["clean", "predict"]
    assert [a.name for a in plan.artifacts] == ["classifier"]
    assert plan.artifacts[0].config == {"type": "pickle.PickleDataset"}
    assert plan.params == {"params:threshold": 0.5}
    assert plan.modules == ("mini_nodes",)


@pytest.mark.slow
def test_export_run_to_folder_is_checked_and_path_free(trained_template, tmp_path) -> None:
    path, run_id = trained_template
    out = tmp_path / "exported"
    code, output = _cli("export-model", "-f", str(path), "--run-id", run_id, "-o", str(out))
    assert code == 0, output
    assert "loaded and predicted its input example in a fresh process" in output
    text = "\n".join(p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file())
    assert str(path.parent) not in text
    model = mlflow.pyfunc.load_model(str(out))
    frame = pd.read_csv(path.parent / "data/01_raw/instances.csv")
    assert list(model.predict(frame.head(3)).columns) == ["proba", "label"]
    # an existing, non-empty folder is refused unless --force
    code, output = _cli("export-model", "-f", str(path), "--run-id", run_id, "-o", str(out))
    assert code == 1 and "exists and is not empty" in output and "--force" in output
    code, output = _cli("export-model", "-f", str(path), "--latest", "-o", str(out), "--force")
    assert code == 0, output


@pytest.mark.slow
def test_export_from_local_and_register_with_alias(trained_copy: Path, tmp_path) -> None:
    path = trained_copy  # its own copy: the registration writes a store (the module's is read)
    out = tmp_path / "local"
    assert not (path.parent / "mlflow.db").exists()  # the copy has no store yet
    code, output = _cli("export-model", "-f", str(path), "--from-local", "-o", str(out),
                        "--register", "mini-local", "--alias", "champion")
    assert code == 0, output
    assert (out / "MLmodel").exists()
    client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")
    version = client.get_model_version_by_alias("mini-local", "champion")
    assert str(version.version) == "1"
    mlflow.set_tracking_uri(f"sqlite:///{path.parent / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/mini-local@champion")
    frame = pd.read_csv(path.parent / "data/01_raw/instances.csv")
    assert len(model.predict(frame)) == len(frame)


@pytest.mark.slow
def test_predict_command_on_a_file(trained_template, tmp_path) -> None:
    path, run_id = trained_template
    out = tmp_path / "pred.csv"
    exe = str(Path(sys.executable).parent / "kmlc")
    done = subprocess.run([exe, "predict", "-m", f"runs:/{run_id}/model", "-i",
                           str(path.parent / "data/01_raw/instances.csv"), "-o", str(out),
                           "--tracking-uri", f"sqlite:///{path.parent / 'mlflow.db'}",
                           "--param", "threshold=2.0"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(out)
    assert len(frame) == 40 and frame["label"].sum() == 0
    done = subprocess.run([exe, "predict", "-m", f"runs:/{run_id}/model", "-i",
                           str(path.parent / "data/01_raw/instances.csv"),
                           "--tracking-uri", f"sqlite:///{path.parent / 'mlflow.db'}",
                           "--param", "treshold=2.0"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert ("--param treshold: the model has no parameter 'treshold' (did you mean "
            "'threshold'? the model's parameters: threshold=0.5)") in done.stderr


@pytest.mark.slow
def test_usage_errors_are_clean(trained_template, tmp_path) -> None:
    path, _ = trained_template
    code, output = _cli("export-model", "-f", str(path), "-o", str(tmp_path / "x"))
    assert code == 2 and "exactly one of" in output
    code, output = _cli("export-model", "-f", str(path), "--run-id", "0" * 32, "-o",
                        str(tmp_path / "y"))
    assert code == 1 and "Traceback" not in output
    assert not (tmp_path / "y").exists()
    code, output = _cli("predict", "-m", str(tmp_path / "nope"), "-i", str(path))
    assert code == 1 and "Traceback" not in output


@pytest.mark.slow
def test_broken_model_is_reported_not_shipped(trained_template, tmp_path) -> None:
    from kmlc.errors import ExportError
    from kmlc.model.export import check_model, save_pipeline_model

    path, _ = trained_template
    spec = load_project(path)
    staged = tmp_path / "staged"
    save_pipeline_model(spec, staged, pd.read_csv(path.parent / "data/01_raw/instances.csv"))
    check_model(staged)  # a good model passes
    (staged / "code" / "mini_nodes.py").write_text("raise ImportError('gone')\n")
    with pytest.raises(ExportError, match="fails when loaded outside the project"):
        check_model(staged)


@pytest.mark.slow
def test_signature_none_example_off_and_explicit_requirements(trained_template,
                                                              tmp_path) -> None:
    from kmlc.model.export import save_pipeline_model

    path, _ = trained_template
    text = path.read_text().replace(
        "model:\n  input: instances\n",
        "model:\n  input: instances\n  signature: none\n  input_example: false\n"
        "  pip_requirements: [scikit-learn, pandas]\n")
    variant = path.with_name("variant.yml")
    variant.write_text(text)
    out = tmp_path / "variant-model"
    save_pipeline_model(load_project(variant), out,
                        pd.read_csv(path.parent / "data/01_raw/instances.csv"))
    model = mlflow.pyfunc.load_model(str(out))
    assert model.metadata.signature is None
    assert not (out / "input_example.json").exists()
    assert (out / "requirements.txt").read_text().split() == [
        "mlflow==" + mlflow.__version__, "scikit-learn", "pandas"]


# ------------------------------------------ predict: a user's mistakes are one-line errors


@pytest.fixture(scope="module")
def model_dir(trained_template: tuple[Path, str],
              tmp_path_factory: pytest.TempPathFactory) -> str:
    """The mini project's model, built from its trained artifacts into a folder (no tracking
    store, and nothing set in MLflow's process-wide state)."""
    from kmlc.model.export import export_model

    path, _ = trained_template
    out = tmp_path_factory.mktemp("predict") / "model"
    export_model(load_project(path), from_local=True, output=out, check=False)
    return str(out)


def _predict_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str, *args: str) -> Result:
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(main, ["predict", "-m", model, *args])


@pytest.mark.slow
def test_missing_input_file(model_dir: str, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    result = _predict_cli(tmp_path, monkeypatch, model_dir, "-i", "nothere.csv")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: -i nothere.csv: no such file (the input is read relative to {tmp_path}) "
        "[KMLC710]"]


@pytest.mark.slow
def test_input_lacking_the_signature_columns(model_dir: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "labels.csv").write_text("id,y\n1,0\n2,1\n")
    result = _predict_cli(tmp_path, monkeypatch, model_dir, "-i", "labels.csv")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: -i labels.csv lacks the columns the model expects: 'x1', 'x2' (it has: id, y; "
        "the model expects: id (long), x1 (double), x2 (double)) [KMLC711]"]


@pytest.mark.slow
def test_input_with_a_mistyped_column(model_dir: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.csv").write_text("id,x1,x2\n1,abc,0.5\n2,0.1,0.2\n")
    result = _predict_cli(tmp_path, monkeypatch, model_dir, "-i", "bad.csv")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: -i bad.csv does not fit the model's signature: Incompatible input types for "
        "column x1. Can not safely convert str to float64. [KMLC711]"]


@pytest.mark.slow
def test_unreadable_input(model_dir: str, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken.parquet").write_text("x")
    result = _predict_cli(tmp_path, monkeypatch, model_dir, "-i", "broken.parquet")
    assert result.exit_code == 1
    line, = result.stderr.splitlines()
    assert line.startswith("error: -i broken.parquet: cannot read it as ParquetDataset: ")
    assert line.endswith("(pass --input-type for another kedro-datasets type) [KMLC710]")


@pytest.mark.slow
def test_unknown_param_lists_the_models_params(model_dir: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               trained_template: tuple[Path, str]) -> None:
    instances = str(trained_template[0].parent / "data/01_raw/instances.csv")
    result = _predict_cli(tmp_path, monkeypatch, model_dir, "-i", instances,
                      "--param", "thresold=0.01")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: --param thresold: the model has no parameter 'thresold' (did you mean "
        "'threshold'? the model's parameters: threshold=0.5) [KMLC712]"]
    ok = _predict_cli(tmp_path, monkeypatch, model_dir, "-i", instances, "--param", "threshold=2")
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[0] == "id,proba,label"
