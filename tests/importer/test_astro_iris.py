"""A second public Kedro project, code unchanged: kedro-starters' astro-airflow-iris.

Its pipelines pass the whole ``parameters`` dict to a node, name a node's outputs with a
dict, end in a node with no output, and keep everything between nodes in memory. The
split shuffles with NumPy's global random state, unseeded; both runs here seed it the
same way (a ``sitecustomize`` on ``PYTHONPATH``) so that their numbers can be compared.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML
from starters import render

from kmlc.cli import main

VALUES = {"project_name": "Iris", "repo_name": "iris", "python_package": "iris",
          "kedro_version": "1.7.0"}
ACCURACY = re.compile(r"Model accuracy on test set: ([\d.]+)%")


def _env(tmp_path: Path) -> dict[str, str]:
    seed = tmp_path / "seed"
    seed.mkdir(exist_ok=True)
    (seed / "sitecustomize.py").write_text("import numpy\nnumpy.random.seed(0)\n")
    return {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
            "PYTHONPATH": str(seed)}


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_astro_airflow_iris_imports_and_runs_like_kedro(tmp_path: Path) -> None:
    project = render("astro-airflow-iris", VALUES, tmp_path / "iris")
    original = shutil.copytree(project, tmp_path / "original")
    result = CliRunner().invoke(main, ["import-kedro", str(project)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc: Any = YAML(typ="safe", pure=True).load(project / "mlproject.yml")
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert list(nodes) == ["split", "train", "predict", "report"]
    assert nodes["train"]["inputs"] == ["example_train_x", "example_train_y", "parameters"]
    assert "outputs" not in nodes["report"]
    assert set(doc["pipelines"]) == {"data_engineering", "data_science"}

    env = _env(tmp_path)
    kmlc = str(Path(sys.executable).with_name("kmlc"))
    ours = _run([kmlc, "run"], project, env)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    theirs = _run([sys.executable, "-m", "kedro", "run"], original, env)
    assert theirs.returncode == 0, theirs.stdout + theirs.stderr
    accuracy = ACCURACY.findall(ours.stdout + ours.stderr)
    assert accuracy and accuracy == ACCURACY.findall(theirs.stdout + theirs.stderr)
    run_id = next(line.split()[1] for line in ours.stdout.splitlines() if line.startswith("run "))
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    assert client.get_run(run_id).data.params == {"example_test_data_ratio": "0.2",
                                                   "example_num_train_iter": "10000",
                                                   "example_learning_rate": "0.01"}

    # one pipeline alone: Kedro refuses it (its inputs are the other's memory outputs);
    # kmlc says so before opening a run, and names what runs them together
    alone = _run([kmlc, "run", "data_science"], project, env)
    assert alone.returncode == 1
    assert alone.stderr.splitlines() == [
        "error: pipeline 'data_science' needs values that other nodes produce in memory: "
        "example_test_x, example_test_y, example_train_x, example_train_y (`kmlc run` runs "
        "them with the nodes that produce them, or declare them under `datasets:` (for "
        "example pickle.PickleDataset) to keep them between runs) [KMLC604]"]
    assert len(client.search_runs([client.get_experiment_by_name("iris").experiment_id])) == 1
