"""Sweep stage, trials on a Dask cluster (``runner: {type: dask, address: ...}``).

The nodes no swept parameter reaches run once, in the sweep's process; what they hand
on in memory is sent to every worker once (``Client.scatter(broadcast=True)``), and
each trial is one Dask task that runs the trial's nodes on the worker
(``TrialJob.run``, an in-process runner there): its child MLflow run is opened, nested
under the sweep's run, and logged from the worker, which must reach the store (as the
dask runner's nodes do). The project's code reaches the workers as the dask runner
ships it. A failing trial is a FAILED result; Ctrl-C in the sweep's process stops the
trials: each worker raises an interrupt in the threads running this sweep's trials
(and starts no more of them), and each closes its run as KILLED.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from kmlc.compiler.project import CompiledProject, compile_project
from kmlc.sweep.trial_job import TrialJob, TrialResult
from kmlc.tracking.worker import DISABLE_ENV

__all__ = ["interrupt_trials", "run_remote_trial"]

_LOCK = threading.Lock()
_SWEEPS: dict[str, tuple[TrialJob, CompiledProject]] = {}  # token -> job, compiled project
_RUNNING: dict[str, set[int]] = {}  # the sweep's token -> threads running its trials
_STOPPED: set[str] = set()  # sweeps interrupted: their trials not started yet never start


@contextlib.contextmanager
def _tracking_here() -> Iterator[None]:
    """MLflow called from this worker's process (no tracking worker of its own)."""
    saved = os.environ.get(DISABLE_ENV)
    os.environ[DISABLE_ENV] = "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(DISABLE_ENV, None)
        else:
            os.environ[DISABLE_ENV] = saved


def _sweep(job_bytes: bytes, token: str) -> tuple[TrialJob, CompiledProject]:
    """The sweep ``token``'s job and compiled project, unpickled and compiled once here."""
    import cloudpickle

    with _LOCK:
        cached = _SWEEPS.get(token)
    if cached is None:
        job: TrialJob = cloudpickle.loads(job_bytes)
        cached = (job, compile_project(job.spec))
        with _LOCK:
            _SWEEPS.clear()  # one sweep's at a time: an earlier sweep's is done
            _SWEEPS[token] = cached
    return cached


def run_remote_trial(job_bytes: bytes, payload: bytes,
                     shared: Mapping[str, Any]) -> TrialResult:
    """A Dask task: one trial (``job_bytes``: the sweep's cloudpickled ``TrialJob``;
    ``payload``: the cloudpickled sweep token and trial)."""
    import cloudpickle

    token, trial = cloudpickle.loads(payload)
    thread = threading.get_ident()
    try:
        with _LOCK:
            if token in _STOPPED:
                return TrialResult.killed(trial)
            _RUNNING.setdefault(token, set()).add(thread)
        try:
            with _tracking_here():
                job, compiled = _sweep(job_bytes, token)
                return job.run(trial, shared, compiled)
        finally:
            with _LOCK:
                _RUNNING.get(token, set()).discard(thread)
    except KeyboardInterrupt:  # arrived after the trial's run was closed
        return TrialResult.killed(trial)


def interrupt_trials(token: str) -> int:
    """On each worker (``Client.run``): stop the sweep ``token``'s trials; how many ran."""
    with _LOCK:
        _STOPPED.add(token)
        threads = sorted(_RUNNING.get(token, ()))
        for thread in threads:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread),
                                                       ctypes.py_object(KeyboardInterrupt))
    return len(threads)
