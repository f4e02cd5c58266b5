"""A public Kedro project imported with its code unchanged: kedro-starters' spaceflights-pandas.

The starter (see ``tests/data/kedro_starters/spaceflights-pandas/SOURCE.md``) is rendered
from its cookiecutter template by plain string substitution, imported with
``kmlc import-kedro``, then run by ``kedro run`` and by ``kmlc run``: every output dataset
must be the same.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML
from starters import render

from kmlc.cli import main

VALUES = {"project_name": "Spaceflights Pandas", "repo_name": "spaceflights-pandas",
          "python_package": "spaceflights_pandas", "kedro_version": "1.7.0",
          "tools": "['None']", "example_pipeline": "True"}
ENV = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}


@pytest.fixture
def spaceflights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path, modules = list(sys.path), set(sys.modules)
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    yield render("spaceflights-pandas", VALUES, tmp_path / "spaceflights-pandas")
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith("spaceflights_pandas"):
            del sys.modules[name]


def _run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_spaceflights_imports_and_runs_like_kedro(spaceflights: Path, tmp_path: Path) -> None:
    original = shutil.copytree(spaceflights, tmp_path / "original")
    result = CliRunner().invoke(main, ["import-kedro", str(spaceflights)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "valid" in result.output.splitlines()[-1]
    doc: Any = YAML(typ="safe", pure=True).load(spaceflights / "mlproject.yml")
    names = [n["name"] for n in doc["nodes"]]
    assert {"preprocess_companies_node", "split_data_node", "train_model_node",
            "evaluate_model_node"} <= set(names)
    assert len(names) == 9  # 3 processing, 3 science, 3 reporting (unnamed: Kedro's names)
    assert set(doc["pipelines"]) == {"data_processing", "data_science", "reporting"}
    assert doc["datasets"]["regressor"] == {"type": "pickle.PickleDataset",
                                            "filepath": "data/06_models/regressor.pickle",
                                            "versioned": True}
    assert doc["datasets"]["shuttles"]["type"] == "pandas.ExcelDataset"
    assert doc["parameters"]["model_options"]["test_size"] == 0.2

    kmlc = str(Path(sys.executable).with_name("kmlc"))
    run_id = next(line.split()[1] for line in _run([kmlc, "run"], spaceflights).splitlines()
                  if line.startswith("run "))
    _run([sys.executable, "-m", "kedro", "run"], original)
    for name in ("02_intermediate/preprocessed_companies.parquet",
                 "02_intermediate/preprocessed_shuttles.parquet",
                 "03_primary/model_input_table.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(original / "data" / name),
                                      pd.read_parquet(spaceflights / "data" / name))

    def regressor(root: Path) -> Any:
        versions = sorted((root / "data/06_models/regressor.pickle").iterdir())
        return pickle.loads((versions[-1] / "regressor.pickle").read_bytes())

    assert regressor(original).coef_.tolist() == regressor(spaceflights).coef_.tolist()
    for name in ("shuttle_passenger_capacity_plot_exp.json",
                 "shuttle_passenger_capacity_plot_go.json", "dummy_confusion_matrix.png"):
        assert len(list((spaceflights / "data/08_reporting" / name).iterdir())) == 1

    import mlflow
    from kedro.config import OmegaConfigLoader

    params = OmegaConfigLoader(str(original / "conf"), base_env="base",
                               default_run_env="local")["parameters"]
    logged = mlflow.MlflowClient(f"sqlite:///{spaceflights / 'mlflow.db'}").get_run(run_id)
    assert logged.data.params == {"model_options": str(params["model_options"])}
