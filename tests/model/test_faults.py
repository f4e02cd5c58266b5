"""Faults around a logged model: what export-model and predict refuse, with real runs,
a real sqlite store and the real `kmlc` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from faults import GATED, half_built_run
from mini_project import kmlc_exe


def _kmlc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([kmlc_exe(), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_force_never_replaces_the_project_its_store_or_a_parent(trained_template) -> None:
    path, _ = trained_template
    root = path.parent
    before = _snapshot(root)
    for target, what in ((".", "the project folder"), ("..", "holds the project folder"),
                         ("mlartifacts", "the tracking store's artifact folder"),
                         ("data", "holds the file of dataset")):
        done = _kmlc("export-model", "--latest", "-o", target, "--force", "--no-check",
                     cwd=root)
        assert done.returncode == 1, done.stdout + done.stderr
        assert what in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert _snapshot(root) == before  # nothing removed, nothing added
    # a folder that is not a previous export is never replaced, --force or not
    other = root.parent / "notes"
    other.mkdir(exist_ok=True)
    (other / "todo.txt").write_text("keep me")
    done = _kmlc("export-model", "--latest", "-o", str(other), "--force", "--no-check", cwd=root)
    assert done.returncode == 1 and "not one (no MLmodel file in it)" in done.stderr, done.stderr
    assert (other / "todo.txt").read_text() == "keep me"
    # a previous export is replaced with --force, and carries kmlc's marker
    out = root.parent / "exported"
    assert _kmlc("export-model", "--latest", "-o", str(out), "--no-check",
                 cwd=root).returncode == 0
    assert (out / ".kmlc-export").is_file() and (out / "MLmodel").is_file()
    done = _kmlc("export-model", "--latest", "-o", str(out), "--force", "--no-check", cwd=root)
    assert done.returncode == 0, done.stderr
    assert (out / "MLmodel").is_file()


@pytest.mark.slow
def test_a_half_built_model_is_neither_exported_nor_served(mini, tmp_path: Path) -> None:
    path = mini(GATED)
    root = path.parent
    run_id, model_id = half_built_run(path, tmp_path / "gate")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    done = _kmlc("export-model", "--run-id", run_id, "-o", str(tmp_path / "out"), cwd=root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"run {run_id} is KILLED and its model {model_id} is PENDING" in done.stderr
    assert "[KMLC713]" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    for model_uri in (f"models:/{model_id}", f"runs:/{run_id}/model"):
        done = _kmlc("predict", "-m", model_uri, "-i", "data/01_raw/instances.csv",
                     "--tracking-uri", uri, cwd=root)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "is KILLED" in done.stderr and "PENDING" in done.stderr, done.stderr
        assert done.stdout == ""


def test_latest_takes_the_latest_run_of_this_project_in_a_shared_store(tmp_path: Path) -> None:
    from mini_project import MINI_YAML, write_mini

    from kmlc import RunOptions, load_project, run_pipeline

    ours = write_mini(tmp_path / "ours")
    store = f"sqlite:///{tmp_path / 'ours' / 'mlflow.db'}"
    theirs = write_mini(tmp_path / "theirs",  # the same experiment name, the same store
                        MINI_YAML.replace("tracking:\n", f"tracking:\n  uri: {store}\n"))
    mine = run_pipeline(load_project(ours), "training", RunOptions(progress=False)).run_id
    other = run_pipeline(load_project(theirs), "training", RunOptions(progress=False)).run_id
    done = _kmlc("export-model", "--latest", "--no-check", "-o", str(tmp_path / "out"),
                 cwd=ours.parent)
    assert done.returncode == 0, done.stderr
    assert f"model: runs:/{mine}/model" in done.stdout, done.stdout
    assert (f"--latest took run {mine}" in done.stdout and f"of {ours.resolve()}" in
            done.stdout), done.stdout
    assert f"1 newer run of another project skipped ({other} of {theirs.resolve()})" \
        in done.stdout, done.stdout
    # the other project's --latest takes its own run, from the same store
    done = _kmlc("export-model", "--latest", "--no-check", "-o", str(tmp_path / "out2"),
                 cwd=theirs.parent)
    assert done.returncode == 0 and f"model: runs:/{other}/model" in done.stdout, done.stdout
