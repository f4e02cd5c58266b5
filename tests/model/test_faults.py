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


@pytest.mark.slow
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


REFUSE_AND_REPORT = """\
import sys
from kmlc.cli import main
try:
    main(["export-model", "--latest", "-o", ".", "--force", "--no-check"])
except SystemExit as exc:
    print(exc.code, "mlflow" in sys.modules)
"""


@pytest.mark.slow
def test_a_refused_output_is_refused_before_mlflow_is_loaded(mini) -> None:
    """The refusals above take a moment, not MLflow's start-up: the output is checked first."""
    import sys

    root = mini().parent
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-c", REFUSE_AND_REPORT], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert "is the project folder" in done.stderr, done.stderr
    assert done.stdout.split() == ["1", "False"], done.stdout + done.stderr


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_failing_step_is_one_line_naming_it_and_v_shows_the_traceback(
        trained_template, tmp_path: Path) -> None:
    path, run_id = trained_template
    root = path.parent
    uri = f"sqlite:///{root / 'mlflow.db'}"
    rows = (root / "data/01_raw/instances.csv").read_text().splitlines()
    for cell, message in (("nan", "Input X contains NaN"), ("inf", "Input X contains infinity")):
        bad = tmp_path / f"{cell}.csv"
        bad.write_text("\n".join([rows[0], rows[1], rows[2].rsplit(",", 1)[0] + f",{cell}"]))
        done = _kmlc("predict", "-m", f"runs:/{run_id}/model", "-i", str(bad),
                     "--tracking-uri", uri, cwd=root)
        assert done.returncode == 1 and done.stdout == "", done.stdout + done.stderr
        (line,) = done.stderr.strip().splitlines()  # one line, no traceback
        assert line.startswith(f"error: -i {bad}: step 'predict' (mini_nodes.predict, "
                               "mini_nodes.py:"), line
        assert f"failed: ValueError: {message}" in line and line.endswith("[KMLC714]"), line
    done = _kmlc("predict", "-m", f"runs:/{run_id}/model", "-i", str(bad), "--tracking-uri",
                 uri, "-v", cwd=root)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: -i {bad}: step 'predict'")


@pytest.mark.slow
def test_predict_output_never_replaces_a_file_without_force(trained_template,
                                                            tmp_path: Path) -> None:
    path, run_id = trained_template
    root = path.parent
    uri = f"sqlite:///{root / 'mlflow.db'}"
    training_input = root / "data/01_raw/instances.csv"
    before = training_input.read_bytes()
    done = _kmlc("predict", "-m", f"runs:/{run_id}/model", "-i", str(training_input),
                 "-o", str(training_input), "--tracking-uri", uri, cwd=root)
    assert done.returncode == 1, done.stderr
    assert f"-o {training_input} exists" in done.stderr and "--force" in done.stderr
    assert training_input.read_bytes() == before
    out = tmp_path / "predictions.csv"
    out.write_text("old\n")
    done = _kmlc("predict", "-m", f"runs:/{run_id}/model", "-i", str(training_input),
                 "-o", str(out), "--force", "--tracking-uri", uri, cwd=root)
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("id,proba,label") and len(out.read_text().splitlines()) == 41
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]  # no staged file left
