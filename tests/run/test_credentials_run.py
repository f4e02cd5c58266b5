"""A value of the credentials file (and the same value as a secret parameter and tag, a
secret that looks like a number, and values computed from a secret by a filter, slices,
a concatenation and a read of a secret parameter) never reaches the tracking store
through a real ``kmlc run``: not a table of the sqlite store, not a file under its
artifact root, not the command's output, not ``kmlc plan``, not a failed run's error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mini_project import kmlc_exe
from mlflow.tracking import MlflowClient
from secret_project import (
    ALL_SECRETS,
    DERIVED,
    SECRET_ENV,
    files_holding,
    sqlite_dump,
    write_secret_project,
)

from kmlc.config.secrets import MASK


def _kmlc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true", **SECRET_ENV}
    return subprocess.run([kmlc_exe(), *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def _held(text: str) -> list[str]:
    return [secret for secret in ALL_SECRETS if secret in text]


@pytest.mark.slow
def test_credentials_and_secrets_never_reach_the_sqlite_store(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write_secret_project(root)
    done = _kmlc(root, "run", "training")
    assert done.returncode == 0, done.stderr[-3000:]
    assert _held(done.stdout + done.stderr) == []

    # the whole store: every table and column
    dump = sqlite_dump(root / "mlflow.db")
    assert _held(dump) == []
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("mini").experiment_id])
    assert run.info.status == "FINISHED"
    # masked where the value would be: the node read them (and checked it got them in clear)
    assert run.data.params["token"] == run.data.params["pin"] == MASK
    assert run.data.params["derived"] == MASK
    assert run.data.tags["owner"] == run.data.tags["shout"] == MASK
    assert run.data.tags["team"] == "tests"
    assert f"INSERT INTO \"params\" VALUES('token','{MASK}'," in dump
    assert f"INSERT INTO \"tags\" VALUES('owner','{MASK}'," in dump

    # every file under the artifact root: the logged file, the bound model, sk_model
    artifacts = root / "mlartifacts"
    for secret in ALL_SECRETS:
        leaks, read = files_holding(artifacts, secret)
        assert leaks == [], secret
    names = {p.name for p in artifacts.rglob("*") if p.is_file()}
    assert {"mlproject.yml", "MLmodel", "requirements.txt", "report.json"} <= names
    assert read >= 10
    [logged] = artifacts.rglob("mlproject.yml")
    data = yaml.safe_load(logged.read_text(encoding="utf-8"))
    assert data["parameters"]["token"] == data["parameters"]["pin"] == MASK
    assert data["parameters"]["derived"] == dict.fromkeys(DERIVED, MASK)
    assert data["tracking"]["tags"]["owner"] == data["tracking"]["tags"]["shout"] == MASK
    assert data["credentials"] == "creds.yml"  # the file's name, never its values
    assert data["datasets"]["instances"]["credentials"] == "db"

    # kmlc plan, as text and as JSON
    text, js = _kmlc(root, "plan", "--format", "text"), _kmlc(root, "plan", "--format", "json")
    assert text.returncode == js.returncode == 0, text.stderr + js.stderr
    assert _held(text.stdout + text.stderr + js.stdout + js.stderr) == []
    manifest = json.loads(js.stdout)
    assert manifest["parameters"]["pin"] == MASK
    assert manifest["nodes"]["check"]["params"]["params:derived"] == MASK
    assert "logs params: " in text.stdout and f"pin={MASK}" in text.stdout

    # and nowhere else in the project but the credentials file itself
    for secret in ALL_SECRETS:
        leaks, _ = files_holding(root, secret, skip=("creds.yml",))
        assert leaks == [], secret


@pytest.mark.slow
def test_a_failed_runs_error_holds_no_secret(tmp_path: Path) -> None:
    """The node fails quoting the pin and the derived values: the run's ``kmlc.error``
    tag, the store and the output hold none of them."""
    root = tmp_path / "proj"
    write_secret_project(root)
    done = _kmlc(root, "run", "training", "--params", "fail=true")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "the check failed on purpose with" in done.stderr
    assert _held(done.stdout + done.stderr) == []
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("mini").experiment_id])
    assert run.info.status == "FAILED"
    assert "the check failed on purpose with" in run.data.tags["kmlc.error"]
    assert _held(run.data.tags["kmlc.error"]) == []
    assert _held(sqlite_dump(root / "mlflow.db")) == []
    for secret in ALL_SECRETS:
        leaks, _ = files_holding(root, secret, skip=("creds.yml",))
        assert leaks == [], secret


LONG_ERROR_YAML = """\
version: 1
name: leak
parameters:
  token: "{{ env('KMLC_TEST_LONG_SECRET', secret=true) }}"
nodes:
  - {name: boom, func: leak_nodes.boom, inputs: params:token, outputs: nothing}
"""

LONG_ERROR_NODES = '''\
def boom(token):
    raise ValueError("quoting the token: " + token * 1700)
'''


def test_an_error_longer_than_a_tag_is_masked_before_it_is_cut(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node's error quotes the secret 1700 times (more than a tag holds): the
    ``kmlc.error`` tag is masked first and cut after, so no piece of the secret is left
    at the cut (cut first, the last occurrence would be a prefix ``mask`` cannot see)."""
    from kmlc import RunOptions, load_project, run_pipeline

    monkeypatch.setenv("KMLC_TEST_LONG_SECRET", SECRET_ENV["KMLC_TEST_TOKEN"])
    secret = SECRET_ENV["KMLC_TEST_TOKEN"]
    root = tmp_path / "proj"
    root.mkdir()
    (root / "mlproject.yml").write_text(LONG_ERROR_YAML)
    (root / "leak_nodes.py").write_text(LONG_ERROR_NODES)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "leak_nodes", raising=False)
    with pytest.raises(Exception, match="quoting the token"):
        run_pipeline(load_project(root / "mlproject.yml"), options=RunOptions(progress=False))
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("leak").experiment_id])
    assert run.info.status == "FAILED"
    error = run.data.tags["kmlc.error"]
    head, _, tail = error.partition(MASK)
    assert "quoting the token: " in head and len(error) >= 4000  # long, and cut
    assert set(tail) == {"*"}, error[-60:]
    assert not any(secret[:n] in error for n in range(2, len(secret) + 1))
    # this test's power: cut before masking, the cut would leave 2 or more of the
    # secret's characters (not 0 or 1), which the two lines above would see
    assert (len(error) - len(head)) % len(secret) >= 2, "pad the node's message"
