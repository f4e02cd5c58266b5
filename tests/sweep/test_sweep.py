"""kmlc sweep end to end: a real sqlite MLflow store, real Kedro runs, a real subprocess."""

from __future__ import annotations

import itertools
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import forkserver
import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from mini_project import kmlc_exe
from mlflow.tracking import MlflowClient
from sweep_project import SWEEP_YAML, write_sweep_project

from kmlc import RunOptions, load_project, run_pipeline
from kmlc.cli import main
from kmlc.errors import RunError
from kmlc.sweep.loop import SweepResult, run_sweep

PROMOTE = """\
model:
  input: raw
  registered_name: sweepy
  promote:
    alias: champion
    when: "metrics['r2'] > 0.5"
"""


def _client(root: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root / 'mlflow.db'}")


def _children(client: MlflowClient, parent: str) -> list[Any]:
    runs = client.search_runs([client.get_run(parent).info.experiment_id],
                              f"tags.mlflow.parentRunId = '{parent}'")
    return sorted(runs, key=lambda r: int(r.data.tags["kmlc.sweep.trial"]))


def _sweep(path: Path, params: tuple[str, ...] = (), **changes: Any) -> SweepResult:
    spec = load_project(path, params=params)
    if changes:
        assert spec.sweep is not None
        spec = replace(spec, sweep=replace(spec.sweep, **changes))
    return run_sweep(spec, options=RunOptions(progress=False), echo=lambda line: None)


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SweepResult, Path]:
    """One grid sweep of three trials, with model.promote; the preparation counted."""
    root = tmp_path_factory.mktemp("swept")
    path = write_sweep_project(root, SWEEP_YAML.replace("model:\n  input: raw\n", PROMOTE))
    counter = root / "prepared.txt"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KMLC_TEST_PREPARED", str(counter))
        mp.setenv("DO_NOT_TRACK", "1")
        mp.setenv("KEDRO_DISABLE_TELEMETRY", "true")
        result = _sweep(path)
    return path, result, counter


@pytest.mark.slow
def test_parent_and_children_in_the_store(swept) -> None:
    path, result, counter = swept
    client = _client(path.parent)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert (tags["kmlc.sweep.trials"], tags["kmlc.sweep.failed"],
            tags["kmlc.sweep.skipped"]) == ("3", "0", "0")
    assert tags["kmlc.sweep"] == "grid" and tags["kmlc.sweep.metric"] == "r2"
    children = _children(client, result.run_id)
    assert [c.data.params["model.alpha"] for c in children] == ["0.01", "1.0", "100.0"]
    assert all(c.info.status == "FINISHED" for c in children)
    for child in children:  # the sweep's provenance, not the parent's sweep tags
        assert child.data.tags["kmlc.pipeline"] == "training"
        assert child.data.tags["kmlc.file_hash"] == tags["kmlc.file_hash"]
        assert "kmlc.sweep" not in child.data.tags
    assert all("mlflow.parentRunId" not in c.data.tags or c.data.tags["mlflow.parentRunId"]
               == result.run_id for c in children)
    # each child has its own metrics and artifacts; the parent the shared parameters
    r2 = [c.data.metrics["r2"] for c in children]
    assert len(set(r2)) == 3
    for child in children:
        assert [a.path for a in client.list_artifacts(child.info.run_id, "reports")] == [
            "reports/report.json"]
        assert "prep.scale" not in child.data.params
    assert parent.data.params["prep.scale"] == "2.0"
    assert "model.alpha" not in parent.data.params
    assert parent.data.metrics["rows"] == 80.0  # logged by the nodes that ran once
    # the best trial: its parameters and metrics in the parent, the leaderboard beside them
    best = max(children, key=lambda c: c.data.metrics["r2"])
    assert tags["kmlc.sweep.best_run_id"] == best.info.run_id == result.best.run_id
    assert parent.data.params["best.model.alpha"] == best.data.params["model.alpha"]
    assert parent.data.metrics["best.r2"] == best.data.metrics["r2"]
    assert parent.data.metrics["best.rmse"] == best.data.metrics["rmse"]
    local = client.download_artifacts(result.run_id, "leaderboard.csv", str(path.parent))
    board = pd.read_csv(local)
    assert list(board["model.alpha"]) == [0.01, 1.0, 100.0]
    assert list(board["r2"]) == pytest.approx(r2)
    assert list(board["run_id"]) == [c.info.run_id for c in children]
    assert "leaderboard.json" in {a.path for a in client.list_artifacts(result.run_id)}
    alpha = best.data.params["model.alpha"]
    assert result.command == f"kmlc run training --params model.alpha={alpha}"
    # the split ran once for the three trials
    assert counter.read_text().splitlines() == ["split"]


@pytest.mark.slow
def test_trial_outputs_are_isolated_and_the_best_left_in_place(swept) -> None:
    path, result, _ = swept
    root = path.parent
    assert result.folder == root / ".kmlc" / "sweeps" / result.run_id
    alphas = []
    for number in (1, 2, 3):
        folder = result.folder / f"trial-{number:03d}"
        report = pd.read_json(folder / "data/reports/report.json", typ="series")
        alphas.append(report["alpha"])
        assert (folder / "data/models/regressor.pkl").is_file()
    assert alphas == [0.01, 1.0, 100.0]
    best = result.best
    assert best is not None
    best_folder = result.folder / f"trial-{best.trial.number:03d}"
    assert (root / "data/models/regressor.pkl").read_bytes() == (
        best_folder / "data/models/regressor.pkl").read_bytes()
    assert pd.read_json(root / "data/reports/report.json", typ="series")["alpha"] == (
        best.trial.values["model.alpha"])
    leftovers = [p.name for p in (root / "data/models").iterdir()]
    assert leftovers == ["regressor.pkl"]  # no temporary file left beside it


@pytest.mark.slow
def test_model_from_the_best_trial_predicts_like_kmlc_run_of_it(swept) -> None:
    path, result, _ = swept
    best = result.best
    assert best is not None and result.model_uri
    client = _client(path.parent)
    raw = pd.read_csv(path.parent / "data/raw.csv")
    mlflow.set_tracking_uri(result.tracking_uri)  # restored by the autouse fixture
    model = client.get_logged_model(result.model_uri.removeprefix("models:/"))
    assert model.source_run_id == best.run_id  # logged once, into the best trial's run
    swept_prediction = mlflow.pyfunc.load_model(result.model_uri).predict(raw)
    # promoted through model.promote's gate, from the best trial's run
    version = client.get_model_version_by_alias("sweepy", "champion")
    assert version.run_id == best.run_id
    assert result.promotion is not None and result.promotion.promoted
    # what `kmlc run training --params <best>` logs predicts the same
    spec = load_project(path, params=[f"model.alpha={best.trial.values['model.alpha']}"])
    run = run_pipeline(spec, "training", RunOptions(progress=False))
    again = mlflow.pyfunc.load_model(run.model_uri).predict(raw)
    pd.testing.assert_frame_equal(swept_prediction, again)
    with open(path.parent / "data/models/regressor.pkl", "rb") as f:
        assert pickle.load(f).alpha == best.trial.values["model.alpha"]
    # no trial logged a model of its own: only the best one has one
    children = _children(client, result.run_id)
    with_model = [c.info.run_id for c in children
                  if client.search_logged_models([c.info.experiment_id],
                                                 f"source_run_id = '{c.info.run_id}'")]
    assert with_model == [best.run_id]


def test_a_failing_trial_is_failed_and_the_sweep_goes_on(tmp_path: Path) -> None:
    path = write_sweep_project(tmp_path)
    result = _sweep(path, params=("fail_alpha=1.0",))
    client = _client(tmp_path)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert (parent.data.tags["kmlc.sweep.trials"], parent.data.tags["kmlc.sweep.failed"]) == (
        "3", "1")
    children = _children(client, result.run_id)
    assert [c.info.status for c in children] == ["FINISHED", "FAILED", "FINISHED"]
    assert "alpha 1.0 is refused" in children[1].data.tags["kmlc.error"]
    assert [t.status for t in result.trials] == ["FINISHED", "FAILED", "FINISHED"]
    assert result.best is not None and result.best.trial.number == 1


def test_fail_fast_stops_the_sweep(tmp_path: Path) -> None:
    path = write_sweep_project(tmp_path)
    with pytest.raises(RunError, match="fail_fast") as caught:
        _sweep(path, params=("fail_alpha=1.0",), fail_fast=True)
    client = _client(tmp_path)
    parent = client.get_run(caught.value.run_id)  # type: ignore[attr-defined]
    assert parent.info.status == "FAILED"
    tags = parent.data.tags
    assert (tags["kmlc.sweep.trials"], tags["kmlc.sweep.failed"],
            tags["kmlc.sweep.skipped"]) == ("2", "1", "1")
    assert [c.info.status for c in _children(client, parent.info.run_id)] == [
        "FINISHED", "FAILED"]


def _sweep_until_fitting(root: Path, parallel: int, *args: str) -> subprocess.Popen[str]:
    """``kmlc sweep ARGS`` of the sweep project under ``root`` (``parallel`` trials at
    once), returned once a trial is fitting with the ``sleep_alpha`` the arguments set
    (that alpha's fit sleeps 120 s in short steps)."""
    path = write_sweep_project(root, SWEEP_YAML.replace(
        "  direction: maximize\n", f"  direction: maximize\n  parallel: {parallel}\n"))
    marker = root / "fitting.txt"
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
           "KMLC_TEST_MARKER": str(marker)}
    proc = subprocess.Popen([kmlc_exe(), "sweep", "-f", str(path), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate()[1] if proc.poll() is not None else "no marker"
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 2])
def test_sigint_leaves_the_parent_and_the_running_trial_killed(tmp_path: Path,
                                                               parallel: int) -> None:
    proc = _sweep_until_fitting(tmp_path, parallel, "--params", "sleep_alpha=1.0")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "marked KILLED" in err
    client = _client(tmp_path)
    experiment = client.get_experiment_by_name("sweepy")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "KILLED"
    children = {c.info.run_name: c.info.status for c in _children(client, parent.info.run_id)}
    assert children["trial-2"] == "KILLED"
    assert "RUNNING" not in children.values()
    if parallel == 1:
        assert children["trial-1"] == "FINISHED"
        assert list(children) == ["trial-1", "trial-2"]
        assert parent.data.tags["kmlc.sweep.trials"] == "2"  # the leaderboard is kept
    else:  # trial 1 runs beside trial 2: it may have finished, been stopped, or not yet
        # opened its run when the interrupt came (then it has none)
        assert children.get("trial-1", "KILLED") in ("FINISHED", "KILLED"), children


def _children_of(parent: int) -> list[int]:
    """The live processes whose parent is ``parent`` (Linux's /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_a_trial_never_outlives_its_sweep_killed_by_sigkill(tmp_path: Path) -> None:
    """The sweep's process SIGKILLed (the out-of-memory killer, ``kill -9``) while a forked
    trial fits: the trial's process stops too (before: it ran on, orphaned, for as long as
    its node took); its run is KILLED, the sweep's run too."""
    proc = _sweep_until_fitting(tmp_path, 2, "--params", "sleep_alpha=1.0")
    # the trials' processes: the sweep's children but its tracking worker
    trials = [pid for pid in _children_of(proc.pid)
              if b"kmlc.tracking.worker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert trials, "no trial process found"
    proc.kill()
    proc.communicate(timeout=60)

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] == "Z"

    deadline = time.time() + 60  # the trial sleeps 120 s if nothing stops it
    while not all(map(gone, trials)) and time.time() < deadline:
        time.sleep(0.2)
    assert all(map(gone, trials)), "a trial's process outlived its sweep"
    client = _client(tmp_path)
    experiment = client.get_experiment_by_name("sweepy")
    runs: list[Any] = []
    while time.time() < deadline:  # the sweep's tracking worker closes the sweep's run
        runs = client.search_runs([experiment.experiment_id])
        if "RUNNING" not in {r.info.status for r in runs}:
            break
        time.sleep(0.2)
    status = {r.info.run_name: r.info.status for r in runs}
    assert status["sweep-training"] == "KILLED" and status["trial-2"] == "KILLED", status
    assert "RUNNING" not in status.values(), status


CHILD_BETWEEN_NODES = """\
import os, sys, time
from pathlib import Path
from kmlc.sweep.loop import _child_start

child = os.fork()
if child == 0:
    _child_start(os.getppid())  # as a forked trial starts
    Path(sys.argv[1], "ready").write_text("")
    try:
        time.sleep(120)  # between two nodes: no pipeline's signal handlers installed
    except KeyboardInterrupt:
        Path(sys.argv[1], "stopped").write_text("")
    os._exit(0)
time.sleep(120)
"""


@pytest.mark.slow
def test_a_trial_between_two_nodes_stops_when_its_sweep_dies(tmp_path: Path) -> None:
    """The sweep's death reaches a trial wherever it is: a signal it ignored outside the
    nodes let it run its next nodes to the end, orphaned."""
    sweep = subprocess.Popen([sys.executable, "-c", CHILD_BETWEEN_NODES, str(tmp_path)])
    deadline = time.time() + 60
    while not (tmp_path / "ready").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "ready").exists(), "the trial never started"
    sweep.kill()  # as the out-of-memory killer would
    sweep.wait(timeout=30)
    deadline = time.time() + 30
    while not (tmp_path / "stopped").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "stopped").exists(), "the trial ran on after its sweep died"


def test_plan_shows_what_runs_once_and_per_trial(tmp_path: Path) -> None:
    path = write_sweep_project(tmp_path)
    result = CliRunner().invoke(main, ["plan", "--sweep", "-f", str(path)])
    assert result.exit_code == 0, result.output
    once, per_trial = result.output.split("run per trial")
    assert "prepare" in once and "split" in once and "fit" not in once
    assert "fit  (reads params:model.alpha)" in per_trial
    assert "evaluate  (reads params:model.alpha)" in per_trial
    assert "handed to every trial in memory: x_test, x_train, y_test, y_train" in per_trial
    assert "3 trials" in once
    assert not (tmp_path / "mlflow.db").exists()  # a plan runs and logs nothing


def test_cli_sweep_prints_the_leaderboard_and_the_command(tmp_path: Path) -> None:
    path = write_sweep_project(tmp_path)
    result = CliRunner().invoke(main, ["sweep", "-f", str(path), "--trials", "2",
                                       "--run-name", "my-sweep", "--runner", "thread"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("trial 1/2  model.alpha=0.01  r2=") and "FINISHED" in line
               for line in lines), result.output
    assert any(line.startswith("trial 2/2  model.alpha=1.0  r2=") for line in lines)
    assert "2 trials, 0 failed, 0 skipped" in result.output
    assert f"reproduce it: kmlc run training -f {path} --params model.alpha=0.01" in (
        result.output)
    client = _client(tmp_path)
    (parent,) = client.search_runs([client.get_experiment_by_name("sweepy").experiment_id],
                                   "tags.kmlc.sweep = 'grid'")
    assert parent.info.run_name == "my-sweep"
    assert parent.data.tags["kmlc.runner"] == "thread"


def test_parallel_trials_each_log_to_their_own_run(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_sweep_project(tmp_path, SWEEP_YAML.replace(
        "{values: [0.01, 1.0, 100.0]}", "{values: [0.01, 1.0, 10.0, 100.0]}").replace(
        "  direction: maximize\n", "  direction: maximize\n  parallel: 2\n"))
    # each fit takes 1.5 s: two trials started together overlap even on a busy machine
    monkeypatch.setenv("KMLC_TEST_FIT_SECONDS", "1.5")
    result = _sweep(path, params=("fail_alpha=10.0",))
    client = _client(tmp_path)
    children = _children(client, result.run_id)
    assert [c.data.params["model.alpha"] for c in children] == ["0.01", "1.0", "10.0", "100.0"]
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED", "FAILED", "FINISHED"]
    for child in children:
        if child.info.status != "FINISHED":
            continue
        folder = client.download_artifacts(child.info.run_id, "reports", str(tmp_path))
        report = pd.read_json(Path(folder) / "report.json", typ="series")
        assert str(report["alpha"]) == child.data.params["model.alpha"]  # its own run
        assert report["r2"] == pytest.approx(child.data.metrics["r2"])
    assert client.get_run(result.run_id).data.tags["kmlc.sweep.failed"] == "1"
    # two trials ran at once: a later trial started before an earlier one ended
    spans = sorted((c.info.start_time, c.info.end_time) for c in children)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), spans
    best = max(children[:2] + children[3:], key=lambda c: c.data.metrics["r2"])
    assert result.best is not None and result.best.run_id == best.info.run_id
    with open(tmp_path / "data/models/regressor.pkl", "rb") as f:
        assert str(pickle.load(f).alpha) == best.data.params["model.alpha"]



def test_a_trial_whose_process_dies_is_failed_and_the_others_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial's forked process killed outright (here by SIGKILL from its own node, as
    the out-of-memory killer would) never closes its run: the sweep closes it FAILED,
    says how the process ended, and the trials beside and after it run to the end."""
    path = write_sweep_project(tmp_path, SWEEP_YAML.replace(
        "{values: [0.01, 1.0, 100.0]}", "{values: [0.01, 1.0, 10.0, 100.0]}").replace(
        "  direction: maximize\n", "  direction: maximize\n  parallel: 2\n"))
    monkeypatch.setenv("KMLC_TEST_DIE_ALPHA", "1.0")
    result = _sweep(path)
    assert [t.status for t in result.trials if t.trial.number == 2] == ["FAILED"]
    (died,) = [t for t in result.trials if t.status == "FAILED"]
    assert died.error == ("the trial's process was killed by SIGKILL "
                          "(out of memory, or killed by hand)")
    client = _client(tmp_path)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["kmlc.sweep.failed"] == "1"
    children = _children(client, result.run_id)
    assert [c.info.status for c in children] == ["FINISHED", "FAILED", "FINISHED", "FINISHED"]
    assert died.run_id == children[1].info.run_id  # the leaderboard names its run
    assert result.best is not None and result.best.trial.number == 1


@pytest.mark.slow
def test_cli_sweep_env_params_tracking_uri_verbose_and_quiet(tmp_path: Path) -> None:
    path = write_sweep_project(tmp_path, SWEEP_YAML + """environments:
  one:
    sweep:
      parameters:
        model.alpha: {values: [5.0]}
""")
    other = tmp_path / "other.db"
    result = CliRunner().invoke(main, ["sweep", "training", "-f", str(path), "--env", "one",
                                       "--params", "prep.scale=3.0", "-q",
                                       "--tracking-uri", f"sqlite:///{other}"])
    assert result.exit_code == 0, result.output
    assert "1 trials, 0 failed" in result.output
    assert not (tmp_path / "mlflow.db").exists()
    client = MlflowClient(f"sqlite:///{other}")
    runs = client.search_runs([client.get_experiment_by_name("sweepy").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (child,) = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert parent.data.params["prep.scale"] == "3.0"  # --params reached the shared nodes
    assert child.data.params["model.alpha"] == "5.0"  # --env chose the swept values
    result = CliRunner().invoke(main, ["sweep", "-f", str(path), "--env", "one", "-v",
                                       "--tracking-uri", f"sqlite:///{other}"])
    assert result.exit_code == 0, result.output
    assert len(client.search_runs([parent.info.experiment_id])) == 4


def test_a_sweep_without_tracking_or_without_sweep_is_refused(tmp_path: Path) -> None:
    path = write_sweep_project(tmp_path, SWEEP_YAML.replace(
        "parameters:\n", "tracking: {disable_for: [training]}\nparameters:\n", 1))
    result = CliRunner().invoke(main, ["sweep", "-f", str(path)])
    assert result.exit_code == 1
    assert "tracking is disabled for pipeline 'training'" in result.output
    path.write_text(SWEEP_YAML.split("sweep:\n")[0])
    result = CliRunner().invoke(main, ["sweep", "-f", str(path)])
    assert result.exit_code == 1 and "the file has no `sweep:` section" in result.output
    assert not (tmp_path / "mlflow.db").exists()  # nothing was opened


@pytest.mark.slow
def test_two_sweeps_at_once_on_one_project_and_one_new_store_lose_nothing(
        tmp_path: Path) -> None:
    """Two ``kmlc sweep`` processes started together on one project, its sqlite store not
    created yet, each forking two trials at a time: both finish, each parent holds its own
    three children, each registers its own best trial's model (two versions), and no run
    is left RUNNING."""
    text = SWEEP_YAML.replace("model:\n  input: raw\n", PROMOTE).replace(
        "  direction: maximize\n", "  direction: maximize\n  parallel: 2\n")
    path = write_sweep_project(tmp_path / "proj", text)
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    procs = [subprocess.Popen(forkserver.kmlc_argv([kmlc_exe(), "sweep", "-q", "-f", str(path)],
                                                   env), env=env,
                              cwd=path.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, stdin=subprocess.DEVNULL) for _ in range(2)]
    done = [(proc.wait(timeout=300), *proc.communicate()) for proc in procs]
    for code, out, err in done:
        assert code == 0 and "Traceback" not in err, (out, err[-3000:])
    client = _client(path.parent)
    runs = client.search_runs([client.get_experiment_by_name("sweepy").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(runs) == 8 and len(parents) == 2, [r.info.run_name for r in runs]
    assert {r.info.status for r in runs} == {"FINISHED"}
    said = "\n".join(out for _, out, _ in done)
    for parent in parents:
        children = _children(client, parent.info.run_id)
        assert [c.data.params["model.alpha"] for c in children] == ["0.01", "1.0", "100.0"]
        assert parent.info.run_id in said  # each process reports its own sweep
    versions = client.search_model_versions("name = 'sweepy'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    # each version is a model of its own sweep (its parent's run or that sweep's best trial)
    owners = set()
    for version in versions:
        run = client.get_run(version.run_id)
        owners.add(run.data.tags.get("mlflow.parentRunId", run.info.run_id))
    assert owners == {p.info.run_id for p in parents}
    assert int(client.get_model_version_by_alias("sweepy", "champion").version) in {1, 2}
    report = json.loads((path.parent / "data/reports/report.json").read_text())
    assert report  # the best trial's report, published whole by one of them
