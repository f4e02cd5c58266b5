"""Run stage, node side: kmlc's run is MLflow's active run while a node runs.

Node code written for kedro-mlflow calls MLflow's fluent API (``mlflow.log_metric``,
``mlflow.active_run()``, ``mlflow.sklearn.autolog()``): all of it must land in the run
kmlc opened, in whichever thread or process the runner calls the node. ``ActiveRunNode``
wraps a node's function: when MLflow is imported in the process running the node, it
pushes kmlc's run (named by ``MLFLOW_RUN_ID``, which the session sets) onto MLflow's
thread-local active-run stack before the call and takes it off after, without ending
it: the run's status is the session's to set. Where MLflow is not imported the
wrapper costs one dictionary lookup, so a project whose nodes never use MLflow never
imports it.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

from kmlc.tracking.client import open_client
from kmlc.tracking.retry import with_retry

RUN_ID_ENV = "MLFLOW_RUN_ID"  # the run kmlc opened, for its datasets and node code


__all__ = ["ActiveRunNode"]

_runs: dict[str, Any] = {}  # run id -> Run, fetched once per process


def _run(run_id: str) -> Any:
    if run_id not in _runs:


        _runs[run_id] = with_retry(open_client(os.environ.get("MLFLOW_TRACKING_URI")).get_run,
                                   run_id)
    return _runs[run_id]


def _stack() -> list[Any] | None:
    fluent = sys.modules.get("mlflow.tracking.fluent")
    holder = getattr(fluent, "_active_run_stack", None)
    return holder.get() if holder is not None else None


def _attach(run_id: str) -> bool:
    """Make ``run_id`` the active run of this thread; True if it was pushed here."""
    import mlflow

    active = mlflow.active_run()
    if active is not None:
        return False  # the node's own run (or ours already): leave it alone
    stack = _stack()
    if stack is None:  # MLflow without the stack this relies on: its public way
        mlflow.start_run(run_id=run_id)
        return True
    stack.append(mlflow.ActiveRun(_run(run_id)))
    return True


def _detach(run_id: str) -> None:
    """Take ``run_id`` off this thread's active-run stack, without ending the run."""
    stack = _stack()
    if stack and stack[-1].info.run_id == run_id:
        stack.pop()


class ActiveRunNode:
    """A node function, called with kmlc's run active in MLflow (see module docstring)."""

    def __init__(self, func: Callable[..., Any]):
        self.func = func
        functools.update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        run_id = os.environ.get(RUN_ID_ENV)
        if not run_id:
            return self.func(*args, **kwargs)
        if "mlflow" in sys.modules:
            _attach(run_id)
        try:
            return self.func(*args, **kwargs)
        finally:
            if "mlflow" in sys.modules:  # also when the node imported MLflow just now
                _detach(run_id)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ActiveRunNode, (self.func,))
