"""The few names of kedro-mlflow a project's registry and settings import, for the import.

``kmlc import-kedro`` runs the project's pipeline registry, which usually imports
``pipeline_ml_factory`` from kedro-mlflow; kmlc does not need kedro-mlflow installed. When
it is not, these stand-ins are put in ``sys.modules`` while the project is loaded (and
removed after): ``pipeline_ml_factory``/``PipelineML`` keep what the conversion reads
(``training``, ``inference``, ``input_name``, ``kpm_kwargs``, ``log_model_kwargs``), and
``MlflowHook`` does nothing (kmlc does its work itself).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

__all__ = ["PROVIDED", "kedro_mlflow_stand_in"]

# what the stand-in offers, by module: anything else a project imports is named as missing
PROVIDED = {
    "kedro_mlflow": (),
    "kedro_mlflow.pipeline": ("pipeline_ml_factory", "PipelineML"),
    "kedro_mlflow.pipeline.pipeline_ml": ("PipelineML",),
    "kedro_mlflow.framework": (),
    "kedro_mlflow.framework.hooks": ("MlflowHook",),
}


def _pipeline_ml_class() -> type:
    from kedro.pipeline import Pipeline

    class PipelineML(Pipeline):
        """kedro-mlflow's binding as the import reads it: the training nodes, plus the rest."""

        def __init__(self, nodes: Any, *args: Any, inference: Any, input_name: str,
                     kpm_kwargs: dict[str, Any] | None = None,
                     log_model_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            super().__init__(nodes, *args, **kwargs)
            self.inference = inference
            self.input_name = input_name
            self.kpm_kwargs = dict(kpm_kwargs or {})
            kwargs_ = dict(log_model_kwargs or {})
            if "artifact_path" in kwargs_ and "name" not in kwargs_:  # as kedro-mlflow 2
                kwargs_["name"] = kwargs_.pop("artifact_path")
            self.log_model_kwargs = {"signature": "auto", "name": "model", **kwargs_}

        @property
        def training(self) -> Any:
            return Pipeline(self.nodes)

    return PipelineML


class MlflowHook:
    """kedro-mlflow's hook, doing nothing: kmlc tracks the run itself."""


def _modules() -> dict[str, ModuleType]:
    pipeline_ml = _pipeline_ml_class()

    def pipeline_ml_factory(training: Any, inference: Any, input_name: str,
                            kpm_kwargs: dict[str, Any] | None = None,
                            log_model_kwargs: dict[str, Any] | None = None) -> Any:
        return pipeline_ml(training.nodes, inference=inference, input_name=input_name,
                           kpm_kwargs=kpm_kwargs, log_model_kwargs=log_model_kwargs)

    values = {"pipeline_ml_factory": pipeline_ml_factory, "PipelineML": pipeline_ml,
              "MlflowHook": MlflowHook}
    modules = {}
    for name, names in PROVIDED.items():
        module = ModuleType(name, "kmlc's stand-in for kedro-mlflow, during kmlc import-kedro")
        module.__path__ = []  # a package: its submodules resolve from sys.modules
        for attr in names:
            setattr(module, attr, values[attr])
        modules[name] = module
    for name, module in modules.items():
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)
    return modules


@contextlib.contextmanager
def kedro_mlflow_stand_in() -> Iterator[bool]:
    """The stand-in modules in ``sys.modules`` for the block, when kedro-mlflow is not
    installed; yields whether they were put there."""
    try:
        installed = importlib.util.find_spec("kedro_mlflow") is not None
    except (ImportError, ValueError):
        installed = "kedro_mlflow" in sys.modules
    if installed:
        yield False
        return
    modules = _modules()
    sys.modules.update(modules)
    try:
        yield True
    finally:
        for name, module in modules.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
