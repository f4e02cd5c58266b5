"""The metadata of a real `kmlc run`, asserted value by value (not just present)."""

from __future__ import annotations

import getpass
import hashlib
import os
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from mini_project import MINI_YAML, kmlc_exe
from mlflow.tracking import MlflowClient

import kmlc
from kmlc import RunOptions, load_project, run_pipeline
from kmlc.config.selection import Selection

SECRET = "tok-5ecr3t-in-argv"
SECRET_YAML = MINI_YAML.replace(
    "  threshold: 0.5\n",
    "  threshold: 0.5\n  token: \"{{ env('KMLC_META_TOKEN', secret=true) }}\"\n"
    "  echo: plain\n")


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org",
                           *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.slow
def test_tags_of_a_real_run_in_a_git_repository(mini, monkeypatch) -> None:
    path = mini(SECRET_YAML)
    root = path.parent
    (root / ".gitignore").write_text("data/\nmlflow.db\nmlruns/\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "project")
    head = _git(root, "rev-parse", "HEAD")
    env = {"KMLC_META_TOKEN": SECRET, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    monkeypatch.setenv("KMLC_META_TOKEN", SECRET)
    done = subprocess.run([kmlc_exe(), "run", "training", "-f", "mlproject.yml",
                           "--run-name", "meta", "--params", f"echo={SECRET}"],
                          cwd=root, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    run_id = next(line.split()[1] for line in done.stdout.splitlines()
                  if line.startswith("run "))
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    run = client.get_run(run_id)
    tags = run.data.tags
    assert run.info.run_name == "meta"
    assert tags["mlflow.source.git.commit"] == head
    assert tags["kmlc.git.dirty"] == "false"
    assert tags["kmlc.version"] == kmlc.__version__
    assert tags["kedro.version"] == version("kedro")
    assert tags["mlflow.version"] == version("mlflow")
    assert tags["mlflow.user"] == getpass.getuser()
    assert tags["kmlc.command"] == (
        "kmlc run training -f mlproject.yml --run-name meta --params echo=***")
    assert SECRET not in str(run.data.params) + str(tags)
    logged = Path(client.download_artifacts(run_id, "mlproject.yml", str(root / "data")))
    assert tags["kmlc.file_hash"] == hashlib.sha256(logged.read_bytes()).hexdigest()
    assert SECRET not in logged.read_text()
    # an edited tracked file: the next run says the tree was dirty
    with (root / "mini_nodes.py").open("a") as fh:
        fh.write("\n# edited\n")
    result = run_pipeline(load_project(path), "training",
                          RunOptions(Selection(to_nodes=("clean",)), progress=False))
    tags = client.get_run(result.run_id).data.tags
    assert tags["kmlc.git.dirty"] == "true" and tags["mlflow.source.git.commit"] == head
