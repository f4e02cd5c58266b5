"""What ``kmlc run`` sends a real ``mlflow server``, read from the server's own access log
(one line per REST call): parameters in ``log-batch`` calls of at most 100, never one
call per parameter; and a credentials-file value in no table, artifact or log line."""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from secret_project import SECRET, SECRET_ENV, files_holding, sqlite_dump, write_secret_project
from tracking_servers import RUN_LINE, MlflowServer, kmlc_argv, quiet_env

from kmlc.config.secrets import MASK
from kmlc.tracking.batch import BATCH_PARAMS

pytestmark = pytest.mark.slow

PARAMS = 250
API = "/api/2.0/mlflow/"

WIDE_NODES = '''\
def total(parameters):
    return sum(parameters.values())
'''


def wide_project(root: Path, params: int) -> Path:
    """One node reading ``parameters``: ``params`` parameters, nothing else logged."""
    root.mkdir(parents=True)
    (root / "wide_nodes.py").write_text(WIDE_NODES, encoding="utf-8")
    lines = ["version: 1", "name: wide", "parameters:"]
    lines += [f"  p{i:03d}: {i}" for i in range(params)]
    lines += ["nodes:", "  - {name: total, func: wide_nodes.total, inputs: parameters, "
              "outputs: result}"]
    path = root / "mlproject.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def calls_during(server: MlflowServer, argv: list[str], **env: str
                 ) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``argv``; the REST calls (``METHOD path``) the server logged meanwhile."""
    before = server.log.stat().st_size
    done = subprocess.run(argv, env=quiet_env(**env), capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL)
    time.sleep(1.0)  # the access line is written after the answer
    with open(server.log, "rb") as log:
        log.seek(before)
        added = log.read().decode(errors="replace").splitlines()
    calls = []
    for line in added:
        if '"' in line and " HTTP/" in line:
            request = line.split('"')[1]  # "POST /api/2.0/mlflow/runs/log-batch HTTP/1.1"
            method, path = request.split()[:2]
            calls.append(f"{method} {path.split('?')[0]}")
    return done, calls


def test_parameters_reach_the_server_in_batches(sqlite_server: MlflowServer,
                                                tmp_path: Path) -> None:
    path = wide_project(tmp_path / "wide", PARAMS)
    done, calls = calls_during(sqlite_server, kmlc_argv(path, sqlite_server.uri,
                                                        pipeline="__default__"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert calls, "the server's access log shows no request"
    batches = [c for c in calls if c == f"POST {API}runs/log-batch"]
    singles = [c for c in calls if c.endswith("runs/log-parameter")]
    assert len(batches) == math.ceil(PARAMS / BATCH_PARAMS) == 3, calls
    assert singles == []
    run_id = RUN_LINE.search(done.stdout).group(1)
    params = MlflowClient(sqlite_server.uri).get_run(run_id).data.params
    assert len(params) == PARAMS and params["p249"] == "249"


def test_credentials_never_reach_the_server(sqlite_server: MlflowServer,
                                            tmp_path: Path) -> None:
    root = tmp_path / "proj"
    path = write_secret_project(root)
    done, calls = calls_during(sqlite_server, kmlc_argv(path, sqlite_server.uri),
                               **SECRET_ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    assert SECRET not in done.stdout + done.stderr
    assert f"POST {API}runs/create" in calls
    run_id = RUN_LINE.search(done.stdout).group(1)
    run = MlflowClient(sqlite_server.uri).get_run(run_id)
    assert run.data.params["token"] == MASK and run.data.tags["owner"] == MASK

    assert SECRET not in sqlite_dump(sqlite_server.folder / "mlflow.db")
    stored = sqlite_server.artifacts / run.info.experiment_id
    leaks, read = files_holding(stored, SECRET)
    assert leaks == [] and read >= 10
    names = {p.name for p in stored.rglob("*") if p.is_file()}
    assert {"mlproject.yml", "MLmodel", "requirements.txt"} <= names
    assert SECRET not in sqlite_server.log.read_text(errors="replace")
    leaks, _ = files_holding(root, SECRET, skip=("creds.yml",))
    assert leaks == []
