"""``kmlc import-kedro`` on the forms real kedro-mlflow projects have (issue 23, items 6, 8, 9)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from kedro_projects import FLAT, write_files
from mini_project import kmlc_exe

ENV = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}


def _import(project: Path, output: Path, seed: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kmlc_exe(), "import-kedro", str(project), "-o", str(output)],
                          env={**ENV, "PYTHONHASHSEED": seed}, capture_output=True, text=True,
                          timeout=300, cwd=project)


@pytest.mark.slow
def test_two_imports_of_one_project_write_the_same_bytes(tmp_path: Path) -> None:
    """Kedro merges a kind's config files in set order, which string hashing changes from
    process to process: the written file follows the files' own order instead."""
    files = dict(FLAT)
    for letter in "abcdefgh":  # several files per kind, as modular projects have
        files[f"conf/base/catalog_{letter}.yml"] = (
            f"extra_{letter}_one: {{type: json.JSONDataset, filepath: data/{letter}1.json}}\n"
            f"extra_{letter}_two: {{type: json.JSONDataset, filepath: data/{letter}2.json}}\n")
        files[f"conf/base/parameters_{letter}.yml"] = f"param_{letter}: {{value: 1}}\n"
    project = write_files(tmp_path / "project", files)
    texts = []
    for seed in ("1", "2", "3", "4"):
        done = _import(project, tmp_path / f"import-{seed}.yml", seed)
        assert done.returncode == 0, done.stdout + done.stderr
        texts.append((tmp_path / f"import-{seed}.yml").read_bytes())
    assert all(text == texts[0] for text in texts)
    text = texts[0].decode()
    # catalog.yml first, then catalog_a.yml ... in the order of the files and their lines
    positions = [text.index(f"  {name}:") for name in
                 ("raw_data", "report", "extra_a_one", "extra_a_two", "extra_b_one",
                  "extra_h_two")]
    assert positions == sorted(positions)


TRAIN_HOOK = '''\
import json
from pathlib import Path

from kedro.framework.hooks import hook_impl


class RegisterWhenTrained:
    """As the project's own hook: acts at the end of its `train` pipeline only."""

    @hook_impl
    def after_pipeline_run(self, run_params):
        if run_params["pipeline_name"] == "train":
            Path(run_params["project_path"], "trained.json").write_text(
                json.dumps({"pipeline": run_params["pipeline_name"]}))
'''


@pytest.mark.slow
def test_the_bound_pipeline_keeps_the_name_the_project_gave_it(tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    files = dict(FLAT)
    registry = "src/imp_flat/pipeline_registry.py"
    assert '"training": training' in files[registry]
    files[registry] = files[registry].replace('"training": training', '"train": training')
    files["src/imp_flat/train_hook.py"] = TRAIN_HOOK
    project = write_files(tmp_path / "project", files)
    done = _import(project, project / "mlproject.yml", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PipelineML" not in done.stdout + done.stderr  # nothing left to do by hand
    path = project / "mlproject.yml"
    doc = YAML(typ="safe", pure=True).load(path)
    assert doc["model"]["pipeline"] == "train"
    assert "train" in doc["pipelines"]
    path.write_text(path.read_text() + "hooks: [imp_flat.train_hook.RegisterWhenTrained]\n")
    for pipeline in ("etl", "train"):
        run = subprocess.run([kmlc_exe(), "run", pipeline, "-q"], cwd=project, env=ENV,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
    assert run.returncode == 0, run.stdout + run.stderr
    assert "model logged: " in run.stdout, run.stdout
    assert (project / "trained.json").read_text() == '{"pipeline": "train"}'


@pytest.mark.slow
def test_a_registry_importing_kedro_mlflow_imports_without_it(tmp_path: Path) -> None:
    """kedro-mlflow is not installed here (as for most kmlc users): the registry's
    `from kedro_mlflow.pipeline import pipeline_ml_factory` gets kmlc's stand-in."""
    import importlib.util

    assert importlib.util.find_spec("kedro_mlflow") is None
    files = dict(FLAT)
    registry = "src/imp_flat/pipeline_registry.py"
    files[registry] = files[registry].replace("from imp_flat.pipeline_ml import",
                                              "from kedro_mlflow.pipeline import")
    hook = "    from kedro_mlflow.framework.hooks import MlflowHook\n"
    files["src/imp_flat/settings.py"] = files["src/imp_flat/settings.py"].replace(
        "    import json\n", "    import json\n" + hook, 1)
    project = write_files(tmp_path / "project", files)
    done = _import(project, project / "mlproject.yml", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    text = (project / "mlproject.yml").read_text()
    assert "model:\n  input: instances\n" in text
    assert "valid" in done.stdout.splitlines()[-1]

    # a name the stand-in does not offer: said exactly, in one line
    files[registry] = files[registry].replace(
        "from kedro_mlflow.pipeline import pipeline_ml_factory",
        "from kedro_mlflow.pipeline import pipeline_ml_factory\n"
        "        from kedro_mlflow.io.metrics import MlflowMetricDataset")
    other = write_files(tmp_path / "other", files)
    done = _import(other, other / "mlproject.yml", "0")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "the project imports 'kedro_mlflow.io' from kedro-mlflow" in done.stderr, done.stderr
    assert "install kedro-mlflow" in done.stderr


@pytest.mark.slow
def test_artifact_path_of_kedro_mlflow_0x_names_the_model(tmp_path: Path) -> None:
    """kedro-mlflow 0.x projects (kedro-mlflow-tutorial) name the model with MLflow 2's
    `log_model_kwargs.artifact_path`; kedro-mlflow 2 takes it as the model's `name`, and so
    does the import: it was left as 'not converted' and the model named "model"."""
    files = dict(FLAT)
    registry = "src/imp_flat/pipeline_registry.py"
    files[registry] = files[registry].replace(
        "from imp_flat.pipeline_ml import", "from kedro_mlflow.pipeline import").replace(
        'log_model_kwargs={"name": "regressor",', 'log_model_kwargs={"artifact_path": "regressor",')
    assert '"artifact_path": "regressor"' in files[registry]
    project = write_files(tmp_path / "project", files)
    done = _import(project, project / "mlproject.yml", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "log_model_kwargs.artifact_path" not in done.stdout + done.stderr
    text = (project / "mlproject.yml").read_text()
    assert "model:\n  input: instances\n  artifact_path: regressor\n" in text, text


@pytest.mark.slow
def test_an_input_name_only_inference_reads_is_imported_and_valid(tmp_path: Path) -> None:
    """pipeline_ml_factory(..., input_name="future_instances"), data training never reads
    (issue 23, item 4): imported as model.input, and the file validates."""
    files = dict(FLAT)
    science = "src/imp_flat/pipelines/data_science/pipeline.py"
    files[science] = files[science].replace(
        'Node(predict, ["coefficients", "instances", "params:features"]',
        'Node(predict, ["coefficients", "future_instances", "params:features"]')
    registry = "src/imp_flat/pipeline_registry.py"
    files[registry] = files[registry].replace('input_name="instances"',
                                              'input_name="future_instances"')
    files["conf/base/catalog.yml"] += """
        future_instances:
          type: pandas.ParquetDataset
          filepath: data/02_intermediate/future.parquet
        """
    project = write_files(tmp_path / "project", files)
    done = _import(project, project / "mlproject.yml", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout.splitlines()[-1], done.stdout
    assert "model:\n  input: future_instances\n" in (project / "mlproject.yml").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("names", [("training", "__default__"), ("__default__",)])
def test_one_binding_registered_under_several_names_is_one_model(
        tmp_path: Path, names: tuple[str, ...]) -> None:
    """A registry returning one PipelineML under two names (kedrospaceship, a public
    kedro-mlflow project: `"training": ml, "__default__": ml`) was read as two bindings:
    "pipeline 'training' is a second PipelineML", `model.pipeline: __default__` written,
    and the written file refused (KMLC506: '__default__' is not a pipeline). Bound only as
    `__default__`, the model's pipeline is the one the file names (or the training tags)."""
    from ruamel.yaml import YAML

    files = dict(FLAT)
    registry = "src/imp_flat/pipeline_registry.py"
    old = ('"training": training, "inference": inference,\n'
           '                    "__default__": etl + training.training + inference}')
    assert old in files[registry]
    entries = ", ".join(f'"{name}": training' for name in names)
    files[registry] = files[registry].replace(
        old, f'"inference": inference, "etl": etl, {entries}}}')
    project = write_files(tmp_path / "project", files)
    done = _import(project, project / "mlproject.yml", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "second PipelineML" not in done.stdout + done.stderr
    assert "valid" in done.stdout.splitlines()[-1], done.stdout
    doc = YAML(typ="safe", pure=True).load(project / "mlproject.yml")
    # Kedro's __default__ (the training nodes) is not kmlc's (every node): kept apart
    assert doc["pipelines"]["kedro_default"]["nodes"] == ["split", "fit", "evaluate"]
    assert doc["model"].get("pipeline") == (None if "training" in names else "kedro_default")
    for pipeline in ("etl", doc["model"].get("pipeline", "training")):
        run = subprocess.run([kmlc_exe(), "run", pipeline, "-q"], cwd=project, env=ENV,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
    assert "model logged: " in run.stdout, run.stdout
