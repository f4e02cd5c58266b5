"""Run stage, node side: kmlc's run is MLflow's active run while a node runs.

Node code written for kedro-mlflow calls MLflow's fluent API (``mlflow.log_metric``,
``mlflow.active_run()``, ``mlflow.sklearn.autolog()``): all of it must land in the run
kmlc opened, in whichever thread or process the runner calls the node. ``ActiveRunNode``
wraps a node's function: when MLflow is imported in the process running the node, it
pushes kmlc's run (named by ``MLFLOW_RUN_ID``, which the session sets) onto MLflow's
thread-local active-run stack before the call and takes it off after, without ending
it: the run's status is the session's to set. Where MLflow is not imported the
wrapper costs one dictionary lookup, so a project whose nodes never use MLflow never
imports it. ``fluent_store`` (entered by the session for the length of the run) makes
the fluent API write to kmlc's store where the process had set MLflow's tracking or
registry URI to another (``mlflow.set_tracking_uri`` or ``mlflow.set_registry_uri`` in a
notebook, which MLflow reads before ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from kmlc.tracking.client import open_client
from kmlc.tracking.retry import with_retry

RUN_ID_ENV = "MLFLOW_RUN_ID"  # the run kmlc opened, for its datasets and node code


__all__ = ["ActiveRunNode", "fluent_store"]

_runs: dict[str, Any] = {}  # run id -> Run, fetched once per process


def _run(run_id: str) -> Any:
    if run_id not in _runs:
        _runs[run_id] = with_retry(open_client(os.environ.get("MLFLOW_TRACKING_URI")).get_run,
                                   run_id)
    return _runs[run_id]


_attached_class: type | None = None


def _attached(run_id: str) -> Any:
    """kmlc's run as MLflow's ``ActiveRun``, read from the store when first looked at.

    Pushing it costs nothing: a node that never asks MLflow about its run (most of them, and
    every node before a model dataset's first save) does not make this process open the
    store, which the tracking worker has open already (about 1 s of CPU: MLflow's database
    layer and its schema check). ``info``, ``data``, ``inputs`` and ``outputs`` are the run
    as the store has it when one of them is first read, as ``mlflow.start_run`` gives them.
    """
    global _attached_class
    if _attached_class is None:
        import mlflow

        class AttachedRun(mlflow.ActiveRun):
            def __init__(self, run_id: str) -> None:  # no Run.__init__: nothing read yet
                self.kmlc_run_id = run_id

            @property
            def info(self) -> Any:
                return _run(self.kmlc_run_id).info

            @property
            def data(self) -> Any:
                return _run(self.kmlc_run_id).data

            @property
            def inputs(self) -> Any:
                return _run(self.kmlc_run_id).inputs

            @property
            def outputs(self) -> Any:
                return _run(self.kmlc_run_id).outputs

        _attached_class = AttachedRun
    return _attached_class(run_id)


def _stack() -> list[Any] | None:
    fluent = sys.modules.get("mlflow.tracking.fluent")
    holder = getattr(fluent, "_active_run_stack", None)
    return holder.get() if holder is not None else None


def _attach(run_id: str) -> None:
    """Make ``run_id`` the active run of this thread, unless a run is active already."""
    import mlflow

    if mlflow.active_run() is not None:
        return  # the node's own run (or ours already): leave it alone
    stack = _stack()
    if stack is None:  # MLflow without the stack this relies on: its public way
        mlflow.start_run(run_id=run_id)
    else:
        stack.append(_attached(run_id))


def _detach(run_id: str) -> None:
    """Take ``run_id`` off this thread's active-run stack, without ending the run."""
    stack = _stack()
    if stack and (getattr(stack[-1], "kmlc_run_id", None) or stack[-1].info.run_id) == run_id:
        stack.pop()


@contextlib.contextmanager
def fluent_store(uri: str, registry_uri: str | None = None) -> Iterator[None]:
    """MLflow's process-wide tracking and registry URIs are kmlc's within the block, where
    they were set.

    MLflow's fluent API reads a URI set by ``mlflow.set_tracking_uri`` before
    ``MLFLOW_TRACKING_URI``, and one set by ``mlflow.set_registry_uri`` before
    ``MLFLOW_REGISTRY_URI``: a notebook that set either and runs kmlc in process would have
    its node code log to (or register models in) that store, where kmlc's run is not.
    Within the block the tracking URI is ``uri`` and the registry URI ``registry_uri``
    (``uri`` where the project names no registry of its own). Where none was set (or MLflow
    is not imported yet) the variables the session sets are what MLflow reads, and nothing
    is changed. The URIs that were set are set again after the block.
    """
    tracking = sys.modules.get("mlflow.tracking._tracking_service.utils")
    registry = sys.modules.get("mlflow.tracking._model_registry.utils")
    previous = getattr(tracking, "_tracking_uri", None)
    previous_registry = getattr(registry, "_registry_uri", None)
    if previous is not None:
        tracking.set_tracking_uri(uri)  # type: ignore[union-attr]
    if previous_registry is not None:
        registry.set_registry_uri(registry_uri or uri)  # type: ignore[union-attr]
    try:
        yield
    finally:
        if previous is not None:
            tracking.set_tracking_uri(previous)  # type: ignore[union-attr]
        if previous_registry is not None:
            registry.set_registry_uri(previous_registry)  # type: ignore[union-attr]


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
