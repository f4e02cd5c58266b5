"""Concurrent `kmlc run --cache` processes on one project (issue 26, item 2): a cache
record describes the bytes its node wrote, and a skip checks the bytes on disk are still
those.

A real race, made repeatable: run A (model.c=1.0) stops in `evaluate` (after its
classifier is saved, before its run ends) until a marker file appears; run B
(model.c=0.01) runs whole meanwhile and rewrites the classifier; A then ends. Run C
(model.c=1.0) must log a classifier fitted with c=1.0, never B's. Set KMLC_RACE_REPEAT=N
to run the race N times (one in the suite).
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import time
from pathlib import Path

import forkserver
import mlflow
import mlflow.artifacts
import pytest
from mini_project import kmlc_exe, mlflow_uri_restored
from mlflow.tracking import MlflowClient

IRIS = Path(__file__).resolve().parents[2] / "examples" / "iris"

RACE_NODES = '''\
"""iris's evaluate, held until the marker file named by RACE_MARKER exists (if set)."""

import os
import time
from pathlib import Path

import iris_nodes


def evaluate(scaler, classifier, x_test, y_test):
    marker = os.environ.get("RACE_MARKER")
    if marker:
        Path(marker + ".reached").touch()
        deadline = time.monotonic() + 300
        while not Path(marker).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the marker never came")
            time.sleep(0.05)
    return iris_nodes.evaluate(scaler, classifier, x_test, y_test)
'''


def iris_copy(root: Path) -> Path:
    """The iris example copied to ``root`` (its raw data, nodes and file)."""
    (root / "data").mkdir(parents=True)
    shutil.copytree(IRIS / "data" / "01_raw", root / "data" / "01_raw")
    for name in ("mlproject.yml", "iris_nodes.py"):
        shutil.copy(IRIS / name, root / name)
    return root / "mlproject.yml"


def _kmlc(path: Path, c: str, marker: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    if marker is not None:
        env["RACE_MARKER"] = str(marker)
    return subprocess.Popen(forkserver.kmlc_argv(
        [kmlc_exe(), "run", "training", "-f", str(path), "--cache", "--params", f"model.c={c}"],
        env), env=env, cwd=path.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _done(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return out


def _line(out: str, start: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(start))


@pytest.mark.slow
@pytest.mark.timeout(900)  # three iris runs one after the other: minutes on a loaded machine
@pytest.mark.parametrize("attempt", range(int(os.environ.get("KMLC_RACE_REPEAT", "1"))))
def test_a_run_overlapping_another_never_lends_it_its_outputs(tmp_path: Path,
                                                              attempt: int) -> None:
    path = iris_copy(tmp_path / "iris")
    (path.parent / "race_nodes.py").write_text(RACE_NODES)
    path.write_text(path.read_text().replace("func: iris_nodes.evaluate",
                                             "func: race_nodes.evaluate"))
    marker = tmp_path / "go"
    a = _kmlc(path, "1.0", marker)
    try:
        deadline = time.monotonic() + 300
        while not Path(f"{marker}.reached").exists():  # A saved its classifier, and waits
            assert a.poll() is None, a.communicate()[0]
            assert time.monotonic() < deadline, "run A never reached evaluate"
            time.sleep(0.05)
        out_b = _done(_kmlc(path, "0.01"))  # B rewrites the classifier while A is running
        assert "cache: no node skipped (5 ran)" in out_b, out_b
    finally:
        marker.touch()  # A goes on (and ends) whatever happened to B
    out_a = _done(a)
    out_c = _done(_kmlc(path, "1.0"))

    run_a, run_c = (_line(out, "run ").split()[1] for out in (out_a, out_c))
    uri = _line(out_c, "model logged: ").split()[-1]
    client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")
    assert client.get_run(run_c).data.params["model.c"] == "1.0"
    # the file on disk is B's, the record of A's fit names A's bytes: C fits again
    assert "fit_classifier" not in client.get_run(run_c).data.tags["kmlc.cache.skipped_nodes"]
    # the logged model's files, read from the store in this process (MLflow resolves a
    # models:/ URI through its global URI, whatever tracking_uri the call is given: set
    # here, and restored)
    with mlflow_uri_restored():
        mlflow.set_tracking_uri(client.tracking_uri)
        folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "model")))
    with (folder / "artifacts" / "classifier.pkl").open("rb") as handle:
        packed = pickle.load(handle)  # a LogisticRegression this test's run fitted
    assert packed.C == 1.0  # B fitted its own with C=0.01
    assert client.get_run(run_c).data.metrics["accuracy"] == pytest.approx(
        client.get_run(run_a).data.metrics["accuracy"])
