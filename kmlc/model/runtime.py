"""The runtime of a logged kmlc model (MLflow models-from-code).

This file is copied into every logged model and executed by
``mlflow.pyfunc.load_model``; it must stay self-contained: it imports MLflow, Kedro's
dataset loader (for the artifacts) and the node modules shipped in the model's
``code`` folder, never kmlc itself. So a model loads where kmlc is not installed.

``load_context`` reads the plan (``kmlc_plan.json``), loads each artifact once and
resolves each step to a function with a precomputed argument layout. ``predict``
then only calls functions on in-memory values: no runner, no catalog, no copies.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel

PLAN_ARTIFACT = "kmlc_plan"


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


class KmlcPipelineModel(PythonModel):
    """The inference pipeline of a kmlc project as one pyfunc model."""

    # MLflow would otherwise wrap predict for type-hint validation (and warn that there
    # are none); the logged signature already describes and checks the input.
    _skip_type_hint_validation = True

    def __init__(self) -> None:
        self.plan: dict[str, Any] = {}
        self._values: dict[str, Any] = {}
        self._steps: list[tuple[Callable[..., Any], tuple[str, ...], tuple[str, ...] | None,
                                Any]] = []
        self._param_keys: dict[str, str] = {}

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
            steps.append((func, names, keywords, step["outputs"]))
        self._steps = steps
        # pyfunc params address parameters by their dotted path, without "params:"
        self._param_keys = {key[len("params:"):]: key for key in plan["params"]
                            if key.startswith("params:")}

    def predict(self, context, model_input, params=None):
        values = dict(self._values)
        if params:
            for key, value in params.items():
                target = self._param_keys.get(key)
                if target is not None:
                    values[target] = value
        values[self.plan["input"]] = model_input
        for func, names, keywords, outputs in self._steps:
            args = [values[name] for name in names]
            result = func(**dict(zip(keywords, args, strict=True))) if keywords else func(*args)
            if outputs is None:
                continue
            if isinstance(outputs, str):
                values[outputs] = result
            elif isinstance(outputs, dict):
                for key, name in outputs.items():
                    values[name] = result[key]
            else:
                for name, value in zip(outputs, result, strict=True):
                    values[name] = value
        return values[self.plan["output"]]


mlflow.models.set_model(KmlcPipelineModel())
