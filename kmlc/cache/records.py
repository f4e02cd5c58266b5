"""Run stage, cache side: what a cache record must hold to be used.

The index is a file a user (or a disk) can damage; a record is used only when it holds,
for the node it is read for, every value a skip needs, of the type the run will hand on:
a content hash per persisted output, a value per metric output that its MLflow dataset
accepts, an object reference per memory output it kept. ``record_problem`` says what is
wrong with one; the cache then ignores it with a warning and the node runs (and is
recorded again).
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

from kmlc.cache.objects import object_hash
from kmlc.config.shorthands import shorthand

__all__ = ["metric_problem", "record_problem"]


def _number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _step(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _point(value: Any) -> bool:
    """A number, or ``{"value": number, "step": int}`` (the step optional)."""
    if isinstance(value, Mapping):
        return (_number(value.get("value")) and set(value) <= {"value", "step"}
                and ("step" not in value or _step(value["step"])))
    return _number(value)


def metric_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` cannot be saved to a dataset of type ``kind`` (an ``mlflow.metric*``)."""
    logs = shorthand(kind)
    shape = logs.metric if logs is not None else None
    if shape == "one":
        ok = _point(value)
        want = "a number or {value, step}"
    elif shape == "history":
        ok = (isinstance(value, list) and all(map(_number, value))) or (
            isinstance(value, Mapping) and all(
                k.lstrip("-").isdigit() and _number(v) for k, v in value.items()))
        want = "a list of numbers or {step: number}"
    else:  # "many": mlflow.metrics
        ok = isinstance(value, Mapping) and all(
            isinstance(k, str) and (_point(v) or (isinstance(v, list) and all(map(_number, v))))
            for k, v in value.items())
        want = "a mapping of name -> number"
    return None if ok else f"expected {want}, found {str(value)[:60]!r}"


def record_problem(record: Any, outputs: Mapping[str, str],
                   metric_types: Mapping[str, str]) -> str | None:
    """Why ``record`` cannot be used for a node whose outputs are ``outputs`` (name ->
    kind: file, versioned, metric, memory); None when it can."""
    if not isinstance(record, Mapping):
        return f"it is a {type(record).__name__}, not a mapping"
    if not (record.get("run_id") is None or isinstance(record.get("run_id"), str)):
        return "its run_id is not a string"
    files, metrics, memory = (record.get(k, {} if k == "memory" else None)
                              for k in ("outputs", "metrics", "memory"))
    for key, value in (("outputs", files), ("metrics", metrics), ("memory", memory)):
        if not isinstance(value, Mapping):
            return f"its {key} is not a mapping"
    for name, kind in outputs.items():
        if kind in ("file", "versioned") and not isinstance(files.get(name), str):
            return f"it has no content hash for output '{name}'"
        if kind == "metric":
            if name not in metrics:
                return f"it has no value for metric '{name}'"
            problem = metric_problem(metric_types[name], metrics[name])
            if problem:
                return f"its value for metric '{name}' is not valid: {problem}"
        if kind == "memory" and name in memory and object_hash(memory[name]) is None:
            return f"its reference for memory output '{name}' is not a sha256 reference"
    return None
