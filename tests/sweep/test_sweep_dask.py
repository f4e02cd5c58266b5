"""Trials on a running Dask cluster: a real scheduler and two workers (no project code or
PYTHONPATH on them), a real sqlite store, a real `kmlc sweep` process for Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dask_cluster import DaskCluster
from mini_project import kmlc_exe
from mlflow.tracking import MlflowClient
from sweep_project import SWEEP_YAML, write_sweep_project

from kmlc import RunOptions, load_project
from kmlc.sweep.loop import run_sweep

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    folder = tmp_path_factory.mktemp("dask")
    # the sleeping trial's node (on a worker) says where it is through this file
    dask = DaskCluster(folder, env={"KMLC_TEST_MARKER": str(folder / "fitting.txt")})
    try:
        yield dask
    finally:
        dask.stop()


def _children(client: MlflowClient, parent: str) -> list[Any]:
    runs = client.search_runs([client.get_run(parent).info.experiment_id],
                              f"tags.mlflow.parentRunId = '{parent}'")
    return sorted(runs, key=lambda r: int(r.data.tags["kmlc.sweep.trial"]))


def test_trials_run_as_tasks_on_the_cluster(cluster: DaskCluster, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_sweep_project(tmp_path, SWEEP_YAML.replace(
        "{values: [0.01, 1.0, 100.0]}", "{values: [0.01, 1.0, 10.0, 100.0]}"))
    counter = tmp_path / "prepared.txt"
    monkeypatch.setenv("KMLC_TEST_PREPARED", str(counter))
    spec = load_project(path, params=["fail_alpha=10.0"], runner="dask",
                        address=cluster.address)
    lines: list[str] = []
    result = run_sweep(spec, options=RunOptions(progress=False), echo=lines.append)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["kmlc.runner"] == "dask"
    assert (parent.data.tags["kmlc.sweep.trials"], parent.data.tags["kmlc.sweep.failed"]) == (
        "4", "1")
    assert not any("sequential runner" in note for note in result.notes)
    children = _children(client, result.run_id)  # nested under the sweep's run
    assert [c.data.params["model.alpha"] for c in children] == ["0.01", "1.0", "10.0", "100.0"]
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED", "FAILED", "FINISHED"]
    assert "alpha 10.0 is refused" in children[2].data.tags["kmlc.error"]
    assert counter.read_text().splitlines() == ["split"]  # the shared nodes ran once, here
    # each trial ran on a worker, with the split's values sent there, into its own folder
    workers = {proc.pid for proc in cluster.workers}
    pids = set()
    for child in children:
        if child.info.status != "FINISHED":
            continue
        trial = int(child.data.tags["kmlc.sweep.trial"])
        report = pd.read_json(result.folder / f"trial-{trial:03d}/data/reports/report.json",
                              typ="series")
        assert str(report["alpha"]) == child.data.params["model.alpha"]
        assert report["r2"] == pytest.approx(child.data.metrics["r2"])
        pids.add(int(report["pid"]))
    assert pids <= workers and os.getpid() not in pids
    assert len(pids) == 2  # both workers took trials
    best = max((c for c in children if c.info.status == "FINISHED"),
               key=lambda c: c.data.metrics["r2"])
    assert result.best is not None and result.best.run_id == best.info.run_id
    assert parent.data.metrics["best.r2"] == best.data.metrics["r2"]
    # the best trial's files put in place, its model logged once, into its run
    report = pd.read_json(tmp_path / "data/reports/report.json", typ="series")
    assert str(report["alpha"]) == best.data.params["model.alpha"]
    assert result.model_uri is not None
    (model,) = client.search_logged_models([parent.info.experiment_id])
    assert model.source_run_id == best.info.run_id
    assert sum(line.startswith("trial ") for line in lines) == 4


def _transfers_between_workers(cluster: DaskCluster) -> int:
    """How many times a worker fetched data from another, so far."""
    client: Any = cluster.client()
    return sum(client.run(lambda dask_worker: len(dask_worker.transfer_incoming_log)).values())


def test_the_shared_values_are_on_every_worker_before_the_trials(
        cluster: DaskCluster, tmp_path: Path) -> None:
    """What the shared nodes hand on goes to every worker at once: a worker that had to
    fetch it from another would make Dask place the trials where it lies, and leave the
    other workers idle until their work is stolen."""
    path = write_sweep_project(tmp_path)
    before = _transfers_between_workers(cluster)
    result = run_sweep(load_project(path, runner="dask", address=cluster.address),
                       options=RunOptions(progress=False), echo=lambda line: None)
    assert [t.status for t in result.trials] == ["FINISHED"] * 3
    assert _transfers_between_workers(cluster) == before


def test_sigint_leaves_the_parent_and_the_running_trial_on_a_worker_killed(
        cluster: DaskCluster, tmp_path: Path) -> None:
    path = write_sweep_project(tmp_path)
    marker = Path(cluster.env["KMLC_TEST_MARKER"])
    marker.unlink(missing_ok=True)
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen([kmlc_exe(), "sweep", "-f", str(path), "--runner", "dask",
                             "--address", cluster.address, "--params", "sleep_alpha=1.0"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    deadline = time.time() + 240

    def others_done() -> bool:  # the two other trials ended: only the sleeping one runs
        if not marker.exists() or not (tmp_path / "mlflow.db").exists():
            return False
        experiment = client.get_experiment_by_name("sweepy")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        return sum(r.info.status == "FINISHED" for r in runs) == 2

    while not others_done() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.3)
    assert marker.exists(), proc.communicate()[1] if proc.poll() is not None else "no marker"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "marked KILLED" in err
    experiment = client.get_experiment_by_name("sweepy")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "KILLED"
    children = {c.info.run_name: c.info.status for c in _children(client, parent.info.run_id)}
    assert children == {"trial-1": "FINISHED", "trial-2": "KILLED", "trial-3": "FINISHED"}
    assert parent.data.tags["kmlc.sweep.trials"] == "3"  # the leaderboard is kept
    # the worker is free again: the interrupt stopped the node, not the worker
    from distributed import Client

    with Client(cluster.address, timeout="30s") as dask:
        assert dask.submit(sum, [1, 2], pure=False).result(timeout=60) == 3


def test_a_trial_that_kills_its_worker_is_failed_and_its_run_closed(
        tmp_path: Path) -> None:
    """A worker lost mid-trial (here the trial's node SIGKILLs it; the scheduler gives up
    on the task at once, ``allowed-failures: 0``) never closes the trial's run: the sweep
    marks the trial FAILED, closes its run FAILED, and the other worker runs the rest."""
    folder = tmp_path / "cluster"
    folder.mkdir()
    dask = DaskCluster(folder, env={"KMLC_TEST_DIE_ALPHA": "1.0",
                                    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
    try:
        path = write_sweep_project(tmp_path / "project", SWEEP_YAML.replace(
            "{values: [0.01, 1.0, 100.0]}", "{values: [0.01, 1.0, 10.0, 100.0]}"))
        spec = load_project(path, runner="dask", address=dask.address)
        result = run_sweep(spec, options=RunOptions(progress=False), echo=lambda line: None)
    finally:
        dask.stop()
    assert [t.status for t in sorted(result.trials, key=lambda t: t.trial.number)] == [
        "FINISHED", "FAILED", "FINISHED", "FINISHED"]
    (died,) = [t for t in result.trials if t.status == "FAILED"]
    assert "KilledWorker" in (died.error or "")
    client = MlflowClient(f"sqlite:///{tmp_path / 'project' / 'mlflow.db'}")
    children = _children(client, result.run_id)
    assert [c.info.status for c in children] == ["FINISHED", "FAILED", "FINISHED", "FINISHED"]
    assert died.run_id == children[1].info.run_id
    assert client.get_run(result.run_id).info.status == "FINISHED"


def test_a_sweep_on_a_scheduler_without_workers_says_so_and_waits_for_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    (tmp_path / "dask").mkdir()
    empty = DaskCluster(tmp_path / "dask", workers=0)
    try:
        path = write_sweep_project(tmp_path / "proj", SWEEP_YAML)
        spec = load_project(path, runner="dask", address=empty.address)
        results: list[Any] = []
        sweep = threading.Thread(target=lambda: results.append(run_sweep(
            spec, options=RunOptions(progress=False), echo=lambda line: None)))
        sweep.start()
        said, deadline = "", time.monotonic() + 90
        while "has no worker" not in said:
            assert time.monotonic() < deadline and sweep.is_alive(), said
            time.sleep(0.2)
            said += capsys.readouterr().err
        assert (f"warning: the Dask scheduler at {empty.address} has no worker: the tasks "
                "wait until one connects") in said
        assert not results  # waiting, as Dask does
        empty.add_worker()
        sweep.join(180)
        (result,) = results
        assert result.status == "FINISHED"
        assert [note for note in result.notes if "has no worker" in note] == [
            said.split("warning: ", 1)[1].splitlines()[0]]
    finally:
        empty.stop()
