"""A value of the credentials file (and the same value as a secret parameter and tag)
never reaches the tracking store through a real ``kmlc run``: not a table of the sqlite
store, not a file under its artifact root, not the command's output."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from mini_project import kmlc_exe
from mlflow.tracking import MlflowClient
from secret_project import (
    SECRET,
    TOKEN_ENV,
    files_holding,
    sqlite_dump,
    write_secret_project,
)

from kmlc.config.secrets import MASK


@pytest.mark.slow
def test_credentials_and_secrets_never_reach_the_sqlite_store(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_secret_project(root)
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
           TOKEN_ENV: SECRET}
    done = subprocess.run([kmlc_exe(), "run", "training"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert SECRET not in done.stdout + done.stderr

    # the whole store: every table and column
    dump = sqlite_dump(root / "mlflow.db")
    assert SECRET not in dump
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("mini").experiment_id])
    assert run.info.status == "FINISHED"
    # masked where the value would be: the node read it (and checked it got it in clear)
    assert run.data.params["token"] == MASK
    assert run.data.tags["owner"] == MASK and run.data.tags["team"] == "tests"
    assert f"INSERT INTO \"params\" VALUES('token','{MASK}'," in dump
    assert f"INSERT INTO \"tags\" VALUES('owner','{MASK}'," in dump

    # every file under the artifact root: the logged file, the bound model, sk_model
    artifacts = root / "mlartifacts"
    leaks, read = files_holding(artifacts, SECRET)
    assert leaks == []
    names = {p.name for p in artifacts.rglob("*") if p.is_file()}
    assert {"mlproject.yml", "MLmodel", "requirements.txt", "report.json"} <= names
    assert read >= 10
    [logged] = artifacts.rglob("mlproject.yml")
    data = yaml.safe_load(logged.read_text(encoding="utf-8"))
    assert data["parameters"]["token"] == MASK
    assert data["tracking"]["tags"]["owner"] == MASK
    assert data["credentials"] == "creds.yml"  # the file's name, never its values
    assert data["datasets"]["instances"]["credentials"] == "db"

    # and nowhere else in the project but the credentials file itself
    leaks, _ = files_holding(root, SECRET, skip=("creds.yml",))
    assert leaks == []
