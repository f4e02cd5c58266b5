"""The runtime of a logged kmlc model (MLflow models-from-code).

This file is copied into every logged model and executed by
``mlflow.pyfunc.load_model``; it must stay self-contained: it imports MLflow, Kedro's
dataset loader (for the artifacts) and the node modules shipped in the model's
``code`` folder, never kmlc itself. So a model loads where kmlc is not installed.

The pipeline itself is ``PipelineRuntime``, plain Python: kmlc imports this file as
``kmlc.model.runtime`` to probe the model while training runs, in a process that has
not loaded MLflow. Only where MLflow executes the file (``code_model_…``, when the
model is saved or loaded) is the pyfunc class built on it and handed to
``mlflow.models.set_model``.

``load_context`` reads the plan (``kmlc_plan.json``), loads each artifact once and
resolves each step to a function with a precomputed argument layout. ``predict``
then only calls functions on in-memory values: no runner, no catalog, and a copy
only of the inputs a step is known to change (the plan's ``copies``, found when the
model was logged or set by ``copy_mode``), so no call sees what another changed.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

PLAN_ARTIFACT = "kmlc_plan"

Copier = Callable[[Any], Any]
_COPIERS: dict[str, Copier] = {"deepcopy": copy.deepcopy, "copy": lambda value: value.copy()}


def _resolve(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def _load_artifact(entry: dict[str, Any], local_path: str) -> Any:
    from kedro.io import AbstractDataset

    config = dict(entry["config"])
    config["path" if entry.get("is_dir") else "filepath"] = local_path
    return AbstractDataset.from_config(entry["name"], config).load()


def param_leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf (not a mapping) of a parameter value, with its key path inside it."""
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from param_leaves(item, (*path, str(key)))
    else:
        yield path, value


def _same(value: Any, default: Any) -> bool:
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # e.g. arrays: no single truth value
        return False


def store_outputs(values: dict[str, Any], outputs: Any, result: Any) -> None:
    """Put a step's ``result`` into ``values`` under its outputs (a name, a list, a dict)."""
    if isinstance(outputs, str):
        values[outputs] = result
    elif isinstance(outputs, Mapping):
        for key, name in outputs.items():
            values[name] = result[key]
    else:
        for name, value in zip(outputs, result, strict=True):
            values[name] = value


def _with_leaf(value: Any, path: tuple[str, ...], leaf: Any) -> Any:
    """``value`` with the leaf at ``path`` replaced; the mappings on the way are new."""
    if not path:
        return leaf
    out = dict(value)
    out[path[0]] = _with_leaf(value[path[0]], path[1:], leaf)
    return out


class PipelineRuntime:
    """The inference pipeline of a kmlc project: ``load_context`` then ``predict``."""

    def __init__(self) -> None:
        self.plan: dict[str, Any] = {}
        self._values: dict[str, Any] = {}
        self._steps: list[tuple[Callable[..., Any], tuple[str, ...], tuple[str, ...] | None,
                                Any, tuple[tuple[int, Copier], ...], tuple[str, str]]] = []
        # pyfunc param name (dotted, no "params:") -> where it lives in the values
        self.param_targets: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        self._param_defaults: dict[str, Any] = {}

    def load_context(self, context: Any) -> None:
        with open(context.artifacts[PLAN_ARTIFACT], encoding="utf-8") as handle:
            plan = json.load(handle)
        self.plan = plan
        values: dict[str, Any] = {}
        for entry in plan["artifacts"]:
            values[entry["name"]] = _load_artifact(entry, context.artifacts[entry["name"]])
        values.update(plan["params"])
        self._values = values
        steps = []
        for step in plan["steps"]:
            func = _resolve(step["func"])
            inputs = step["inputs"] or []
            if isinstance(inputs, dict):
                names, keywords = tuple(inputs.values()), tuple(inputs)
            else:
                names, keywords = tuple(inputs), None
            copies = step.get("copies") or {}
            copiers = tuple((i, _COPIERS[copies[name]]) for i, name in enumerate(names)
                            if copies.get(name) in _COPIERS)
            steps.append((func, names, keywords, step["outputs"], copiers,
                          (step.get("name") or step["func"], step["func"])))
        self._steps = steps
        targets: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        defaults: dict[str, Any] = {}
        for key, value in plan["params"].items():
            prefix = tuple(key[len("params:"):].split(".")) if key.startswith("params:") else ()
            for path, leaf in param_leaves(value):
                name = ".".join((*prefix, *path))
                if name:
                    targets.setdefault(name, []).append((key, path))
                    defaults[name] = leaf
        self.param_targets = targets
        self._param_defaults = defaults

    def _with_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        values = dict(self._values)
        unknown = sorted(set(params) - set(self.param_targets))
        if unknown:
            from mlflow.exceptions import MlflowException

            known = ", ".join(sorted(self.param_targets)) or "none"
            raise MlflowException.invalid_parameter_value(
                f"unknown params {', '.join(unknown)}; this model takes: {known}")
        for name, leaf in params.items():
            if _same(leaf, self._param_defaults[name]):
                continue  # MLflow passes every param's default at each call
            for key, path in self.param_targets[name]:
                values[key] = _with_leaf(values[key], path, leaf)
        return values

    def predict(self, context, model_input, params=None):
        values = self._with_params(params) if params else dict(self._values)
        values[self.plan["input"]] = model_input
        for func, names, keywords, outputs, copiers, step in self._steps:
            args = [values[name] for name in names]
            for index, copier in copiers:
                args[index] = copier(args[index])
            try:
                result = (func(**dict(zip(keywords, args, strict=True))) if keywords
                          else func(*args))
            except Exception as exc:  # which step failed, for the caller to name it
                if getattr(exc, "kmlc_step", None) is None:
                    with contextlib.suppress(AttributeError, TypeError):
                        exc.kmlc_step = step  # type: ignore[attr-defined]
                raise
            if outputs is not None:
                store_outputs(values, outputs, result)
        output = values[self.plan["output"]]
        keys = self.plan.get("keys") or []
        return with_keys(output, model_input, keys) if keys else output


def with_keys(output: Any, rows: Any, keys: list[str]) -> Any:
    """``output`` with the key columns first: taken from its own columns or index where
    inference kept them, else from ``rows`` (the input) row by row. An index made only of
    keys becomes a plain range: the keys are columns, which serving keeps (it drops the
    index)."""
    import pandas as pd

    if isinstance(output, pd.Series):
        output = output.to_frame(output.name if output.name is not None else "prediction")
    if not isinstance(output, pd.DataFrame):
        raise TypeError(f"model.keys needs predictions as a DataFrame or Series, not "
                        f"{type(output).__name__}")
    out = output.copy()
    index_names = [name for name in out.index.names if name is not None]
    moved = [key for key in keys if key not in out.columns and key in index_names]
    if moved:
        out = out.reset_index(level=moved, drop=False)
        if set(index_names) <= set(keys):
            out = out.reset_index(drop=True)
    for key in keys:
        if key in out.columns:
            continue
        source = None
        if isinstance(rows, pd.DataFrame):
            source = rows[key] if key in rows.columns else (
                rows.index.get_level_values(key) if key in rows.index.names else None)
        if source is None:
            raise KeyError(f"model.keys: '{key}' is neither a column or index of the "
                           "predictions nor a column of the rows sent")
        if len(source) != len(out):
            raise ValueError(f"model.keys: '{key}' cannot be taken from the rows sent: "
                             f"{len(source)} rows in, {len(out)} predictions out")
        out.insert(0, key, list(source))
    return out[[*keys, *(c for c in out.columns if c not in keys)]]


if __name__ != "kmlc.model.runtime":  # executed by MLflow as the model's code
    import mlflow
    from mlflow.pyfunc import PythonModel

    class KmlcPipelineModel(PipelineRuntime, PythonModel):
        """The inference pipeline of a kmlc project as one pyfunc model."""

        # MLflow would otherwise wrap predict for type-hint validation (and warn that
        # there are none); the logged signature already describes and checks the input.
        _skip_type_hint_validation = True

    mlflow.models.set_model(KmlcPipelineModel())
