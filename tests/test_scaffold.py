"""`kmlc init`: a new project that validates and trains as written, or nothing at all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kmlc.cli import main
from kmlc.scaffold import InitError, _move_entries, init_project

REPO = Path(__file__).resolve().parent.parent
KMLC = str(Path(sys.executable).parent / "kmlc")
FILES = [".gitignore", "README.md", "data/01_raw/houses.csv", "data/01_raw/prices.csv",
         "demo_nodes.py", "mlproject.schema.json", "mlproject.yml"]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _readme_first_steps() -> list[str]:
    """The commands of the README's `kmlc init` block, one per line."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Start your own project"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the README lost its kmlc init block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


@pytest.mark.slow
def test_readme_first_steps_init_validate_and_train_in_a_fresh_folder(tmp_path: Path) -> None:
    """The README's commands, run as written in an empty folder: the run is FINISHED in a
    new sqlite store beside the project, with its metrics and a READY model."""
    from mlflow.tracking import MlflowClient

    commands = _readme_first_steps()
    assert commands == ["kmlc init demo", "cd demo", "kmlc validate", "kmlc run training"]
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cwd = tmp_path
    printed = {}
    for command in commands:
        words = command.split()
        if words[0] == "cd":
            cwd = cwd / words[1]
            continue
        done = subprocess.run([KMLC, *words[1:]], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=240)
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr and "warning" not in done.stdout, done.stderr
        printed[command] = done.stdout
    project = tmp_path / "demo"
    assert "valid: 5 nodes" in printed["kmlc validate"]
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    experiment = client.get_experiment_by_name("demo")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["model.alpha"] == "1.0"
    assert run.data.metrics["r2"] > 0.9
    assert {"test.rmse", "test.mae"} <= set(run.data.metrics)
    (model,) = client.search_logged_models([experiment.experiment_id])
    assert model.source_run_id == run.info.run_id
    assert str(model.status).endswith("READY")
    assert f"model logged: models:/{model.model_id}" in printed["kmlc run training"]
    # what the run wrote is ignored by git; the project's own files are not
    ignored = (project / ".gitignore").read_text().splitlines()
    assert {"mlflow.db", "mlartifacts/", ".kmlc/", "data/06_models/"} <= set(ignored)
    assert (project / "mlflow.db").is_file() and (project / "data/06_models/model.json").is_file()


def test_init_lists_the_files_it_wrote_and_the_next_step(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    root = tmp_path / "demo"
    assert _tree(root) == FILES
    listed = [line.strip() for line in result.output.splitlines() if line.startswith("  ")]
    assert listed == FILES
    assert result.output.splitlines()[-1] == (
        f"next: cd {root} && kmlc validate && kmlc run training")
    assert (root / "mlproject.yml").read_text().startswith(
        "# yaml-language-server: $schema=mlproject.schema.json\n")
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no staging folder left


def test_name_option_names_the_experiment_and_the_module(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Without DIR the current folder, when empty, takes the project; --name names it."""
    from kmlc.config.loader import check_project

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init", "--name", "House prices"])
    assert result.exit_code == 0, result.output
    assert "house_prices_nodes.py" in _tree(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [  # no staging folder left inside
        ".gitignore", "README.md", "data", "house_prices_nodes.py", "mlproject.schema.json",
        "mlproject.yml"]
    assert result.output.splitlines()[-1] == "next: kmlc validate && kmlc run training"
    checked = check_project(tmp_path / "mlproject.yml")
    assert checked.errors == [] and checked.warnings == []
    assert checked.spec is not None and checked.spec.name == "House prices"


def test_init_refuses_a_folder_that_is_not_empty_and_touches_nothing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert f"error: {tmp_path} is not empty (notes.txt)" in result.output
    assert "[KMLC901]" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    # a hidden file is something too; a file is not a folder
    hidden = tmp_path / "repo"
    (hidden / ".git").mkdir(parents=True)
    assert CliRunner().invoke(main, ["init", str(hidden)]).exit_code == 1
    assert [p.name for p in hidden.iterdir()] == [".git"]
    result = CliRunner().invoke(main, ["init", str(tmp_path / "notes.txt")])
    assert result.exit_code == 1 and "exists and is not a folder" in result.output


def test_a_name_the_schema_refuses_is_refused_before_writing(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path / "p"), "--name", "a:b"])
    assert result.exit_code == 1 and "'a:b' cannot name a project" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_failed_move_into_an_empty_folder_takes_back_what_it_moved(tmp_path: Path) -> None:
    """mlproject.yml moves last: when it cannot, the entries moved before it go back to the
    staging folder and the target holds only what it held."""
    staging, target = tmp_path / "staging", tmp_path / "target"
    init_project(staging)
    target.mkdir()
    (target / "mlproject.yml").write_text("the user's\n")  # appeared after the check
    with pytest.raises(InitError, match="appeared while kmlc init was writing"):
        _move_entries(staging, target)
    assert _tree(target) == ["mlproject.yml"]
    assert (target / "mlproject.yml").read_text() == "the user's\n"
    assert _tree(staging) == sorted(f.replace("demo_", "staging_") for f in FILES)


def test_the_project_folder_gets_the_umask_mode_not_a_temporary_folders(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        init_project(tmp_path / "demo")
    finally:
        os.umask(previous)
    assert (tmp_path / "demo").stat().st_mode & 0o777 == 0o755


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_init_leaves_the_whole_project_or_nothing(tmp_path: Path,
                                                                 signum: int) -> None:
    """`kmlc init` stopped by a signal at moments spread over its life: each time the
    target is either absent (no staging folder left beside it) or the complete project."""
    started = time.monotonic()
    subprocess.run([KMLC, "init", str(tmp_path / "timed")], check=True, capture_output=True)
    duration = time.monotonic() - started
    outcomes = set()
    for attempt, delay in enumerate([duration * step / 10 for step in range(12)]):
        parent = tmp_path / f"attempt{attempt}"
        parent.mkdir()
        process = subprocess.Popen([KMLC, "init", "demo"], cwd=parent, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE,
                                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        time.sleep(delay)
        process.send_signal(signum)
        process.communicate(timeout=60)
        left = sorted(p.name for p in parent.iterdir())
        if left:
            assert left == ["demo"], left
            assert _tree(parent / "demo") == FILES
            outcomes.add("whole")
        else:
            outcomes.add("nothing")
    assert "nothing" in outcomes  # the signals did land while init was working
