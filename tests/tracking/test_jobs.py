"""The tracking worker's jobs: functions of the layers above, registered in one table,
handed over by reference (never a module path in a string)."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from kmlc.config.spec import TrackingTarget
from kmlc.errors import TrackingError
from kmlc.sweep.record import run_metrics
from kmlc.tracking.client import open_client
from kmlc.tracking.jobs import Job
from kmlc.tracking.worker import Operations, Remote


def _target(uri: str) -> TrackingTarget:
    return TrackingTarget(uri, "--tracking-uri", uri)


def _run_with_metric(tmp_path: Path) -> tuple[str, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = open_client(uri)
    experiment = client.create_experiment("jobs", artifact_location=str(tmp_path / "art"))
    run_id = client.create_run(experiment).info.run_id
    client.log_metric(run_id, "r2", 0.5)
    return uri, run_id


@pytest.mark.slow
def test_a_function_outside_the_table_is_refused_here_and_in_the_worker(tmp_path: Path) -> None:
    with pytest.raises(TrackingError, match=r"posix\.getcwd is not a tracking job"):
        Job(os.getcwd)
    with pytest.raises(TrackingError, match="not a tracking job"):
        Operations().start_job(os.getcwd, {})
    # a job sealed around an unregistered function is refused where it is opened: in the
    # worker process, answered as the job's error
    forged = Job.__new__(Job)
    forged.__setstate__({"sealed": pickle.dumps((os.getcwd, {}))})
    remote = Remote()
    try:
        job = remote.call("run_job", forged)
        with pytest.raises(TrackingError, match=r"posix\.getcwd is not a tracking job"):
            remote.wait_job(job)
    finally:
        remote.close()


@pytest.mark.slow
def test_a_registered_job_runs_in_the_worker_process(tmp_path: Path) -> None:
    uri, run_id = _run_with_metric(tmp_path)
    remote = Remote()
    try:
        job = remote.start_job(run_metrics, {"target": _target(uri), "run_id": run_id})
        assert remote.wait_job(job) == {"r2": 0.5}
    finally:
        remote.close()


def test_a_finished_job_keeps_its_result_when_another_starts(tmp_path: Path) -> None:
    """The model's job may be done before the run logs its dataset inputs: its result
    (the model id the run discards or finishes) must still be there afterwards."""
    uri, run_id = _run_with_metric(tmp_path)
    operations = Operations()
    first = operations.start_job(run_metrics, {"target": _target(uri), "run_id": run_id})
    deadline = time.monotonic() + 120
    while not operations._jobs[first].done():
        assert time.monotonic() < deadline, "the first job never finished"
        time.sleep(0.01)
    second = operations.start_job(run_metrics, {"target": _target(uri), "run_id": run_id})
    assert operations.wait_job(second) == {"r2": 0.5}
    assert operations.wait_job(first) == {"r2": 0.5}


def test_the_warm_up_job_nobody_waits_for_is_forgotten(tmp_path: Path) -> None:
    uri, run_id = _run_with_metric(tmp_path)
    operations = Operations()
    operations.warm(uri, None, (None, None), Job(run_metrics, {"target": _target(uri),
                                                               "run_id": run_id}))
    (warm,) = operations._jobs
    deadline = time.monotonic() + 120
    while not operations._jobs[warm].done():
        assert time.monotonic() < deadline, "the warm-up never finished"
        time.sleep(0.01)
    job = operations.start_job(run_metrics, {"target": _target(uri), "run_id": run_id})
    assert set(operations._jobs) == {job}
    assert operations.wait_job(job) == {"r2": 0.5}
