"""kmlc: build machine-learning projects on Kedro and MLflow from one YAML file.

The public API follows the data flow: ``load_project`` (read, overlay, render,
validate) -> ``compile_project`` (Kedro objects) -> ``run_pipeline`` (an MLflow run)
-> ``export_model``. Heavy modules are imported on first use, so ``import kmlc``
and ``kmlc validate`` stay light and never import MLflow.
"""

from __future__ import annotations

import importlib
from typing import Any

from kmlc.errors import (
    BindingError,
    ConfigError,
    ConfigErrors,
    ExportError,
    KmlcError,
    RunError,
    TrackingError,
)

__version__ = "0.1.0"

_LAZY = {
    "load_project": "kmlc.config.loader",
    "check_project": "kmlc.config.loader",
    "ProjectSpec": "kmlc.config.spec",
    "compile_project": "kmlc.compiler.project",
    "CompiledProject": "kmlc.compiler.project",
    "run_pipeline": "kmlc.run",
    "RunOptions": "kmlc.run",
    "RunResult": "kmlc.run",
    "Selection": "kmlc.config.selection",
    "export_model": "kmlc.model.export",
    "log_pipeline_model": "kmlc.model.logged",
    "import_kedro": "kmlc.importer",
    "run_sweep": "kmlc.sweep.loop",
    "SweepResult": "kmlc.sweep.loop",
}

__all__ = [
    "BindingError",
    "CompiledProject",
    "ConfigError",
    "ConfigErrors",
    "ExportError",
    "KmlcError",
    "ProjectSpec",
    "RunError",
    "RunOptions",
    "RunResult",
    "Selection",
    "SweepResult",
    "TrackingError",
    "__version__",
    "check_project",
    "compile_project",
    "export_model",
    "import_kedro",
    "load_project",
    "log_pipeline_model",
    "run_pipeline",
    "run_sweep",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kmlc' has no attribute {name!r}")
