"""The logged model served by `mlflow models serve`, and a folder artifact in a model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner

from kmlc.cli import main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_served_model_matches_kmlc_run_inference(trained_template, tmp_path: Path) -> None:
    path, run_id = trained_template
    result = CliRunner().invoke(main, ["run", "inference", "-f", str(path)])
    assert result.exit_code == 0, result.output
    expected = pd.read_csv(path.parent / "data/07_model_output/predictions.csv")
    out = tmp_path / "served-model"
    code = CliRunner().invoke(main, ["export-model", "-f", str(path), "--run-id", run_id,
                                     "-o", str(out), "--no-check"])
    assert code.exit_code == 0, code.output
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(out), "--env-manager",
         "local", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    stderr = server.stderr.read().decode() if server.poll() is not None else ""
                    raise AssertionError(f"the model server did not start: {stderr[-3000:]}"
                                         ) from None
                time.sleep(0.5)
        frame = pd.read_csv(path.parent / "data/01_raw/instances.csv")
        body = json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            predictions = json.loads(response.read())["predictions"]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    served = pd.DataFrame(predictions)
    assert list(served.columns) == ["proba", "label"]
    assert served["label"].tolist() == expected["label"].tolist()
    assert served["proba"].tolist() == pytest.approx(expected["proba"].tolist())


FOLDER_YAML = """\
version: 1
name: folder
datasets:
  instances: {type: pandas.CSVDataset, filepath: data/instances.csv}
  lookup:
    type: partitions.PartitionedDataset
    path: data/06_models/lookup
    dataset: json.JSONDataset
    filename_suffix: .json
  scores: {type: pandas.CSVDataset, filepath: data/scores.csv}
nodes:
  - name: fit
    func: folder_nodes.fit
    inputs: instances
    outputs: lookup
    tags: [training]
  - name: score
    func: folder_nodes.score
    inputs: [lookup, instances]
    outputs: scores
    tags: [inference]
model:
  input: instances
"""

FOLDER_NODES = '''\
import pandas as pd


def fit(instances):
    return {"a": {"weight": 2}, "b": {"weight": 3}}


def score(lookup, instances):
    weights = {key: load()["weight"] for key, load in lookup.items()}
    return pd.DataFrame({"score": instances["x"] * weights["a"] + weights["b"]})
'''


@pytest.mark.slow
def test_folder_artifact_travels_with_the_model(tmp_path: Path) -> None:
    from kmlc import RunOptions, load_project, run_pipeline

    root = tmp_path / "folder"
    (root / "data").mkdir(parents=True)
    (root / "data" / "instances.csv").write_text("x\n1\n2\n")
    (root / "folder_nodes.py").write_text(FOLDER_NODES)
    (root / "mlproject.yml").write_text(FOLDER_YAML)
    result = run_pipeline(load_project(root / "mlproject.yml"), "training",
                          RunOptions(progress=False))
    assert result.model_uri
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(result.model_uri)
    out = model.predict(pd.DataFrame({"x": [1, 10]}))
    assert out["score"].tolist() == [5, 23]
