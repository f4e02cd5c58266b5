"""Tracking, the jobs table: the work upper layers hand the tracking worker, by reference.

A job is a function of a layer above tracking that needs MLflow and may overlap the
nodes (the model of a training run is built while its last nodes run; a sweep reads
its trials' metrics). Its module marks it with ``@job`` as it is imported, which puts
it in this table; the caller hands the function itself to ``Tracker.start_job``. So
every dependency is an import the contracts see, and tracking imports nothing above it.

The worker runs only functions of the table. A ``Job`` crosses to the worker process
sealed: the function pickled by reference (its module and name, as pickle writes any
function) with its arguments, in bytes the worker opens on the job's own thread. Its
module is imported there, where the job runs: a request behind it (the run's opening
after the warm-up) is not held up by that import, and a job that cannot be opened is
the job's error, answered as any other.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any, TypeVar

from kmlc.errors import TrackingError

__all__ = ["Job", "job", "registered"]

F = TypeVar("F", bound=Callable[..., Any])

_TABLE: dict[tuple[str, str], Callable[..., Any]] = {}


def job(function: F) -> F:
    """Register ``function`` as a job the tracking worker may run (a decorator)."""
    _TABLE[(function.__module__, function.__qualname__)] = function
    return function


def registered(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` itself when it is a registered job; a ``TrackingError`` otherwise."""
    key = (getattr(function, "__module__", ""), getattr(function, "__qualname__", ""))
    if _TABLE.get(key) is not function:
        raise TrackingError(f"{key[0]}.{key[1]} is not a tracking job (mark it with @job)")
    return function


class Job:
    """A registered function and its keyword arguments, to run where MLflow is."""

    def __init__(self, function: Callable[..., Any], kwargs: dict[str, Any] | None = None):
        self._function: Callable[..., Any] | None = registered(function)
        self._kwargs = dict(kwargs or {})
        self._sealed: bytes | None = None

    def __getstate__(self) -> dict[str, Any]:
        sealed = self._sealed
        if sealed is None:
            sealed = pickle.dumps((self._function, self._kwargs),
                                  protocol=pickle.HIGHEST_PROTOCOL)
        return {"sealed": sealed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._function, self._kwargs, self._sealed = None, {}, state["sealed"]

    @property
    def name(self) -> str:
        function = self._open()[0]
        return f"{function.__module__}.{function.__qualname__}"

    def _open(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        if self._function is None:
            assert self._sealed is not None
            function, kwargs = pickle.loads(self._sealed)  # imports the job's module
            self._function, self._kwargs = registered(function), kwargs
        return self._function, self._kwargs

    def __call__(self) -> Any:
        function, kwargs = self._open()
        return function(**kwargs)
