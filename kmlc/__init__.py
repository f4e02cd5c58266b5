"""kmlc: build machine-learning projects on Kedro and MLflow from one YAML file.

The public API follows the data flow: ``load_project`` (read, overlay, render,
validate) -> ``compile_project`` (Kedro objects) -> ``run_pipeline`` (an MLflow run)
-> ``export_model``. Heavy modules are imported on first use, so ``import kmlc``
and ``kmlc validate`` stay light and never import MLflow.
"""

from __future__ import annotations

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
from kmlc.version import __version__

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
    """The heavy parts of the API, imported on first use (each import names its module,
    so that import-linter sees it)."""
    if name in {"load_project", "check_project"}:
        import kmlc.config.loader

        return getattr(kmlc.config.loader, name)
    if name == "ProjectSpec":
        import kmlc.config.spec

        return getattr(kmlc.config.spec, name)
    if name in {"compile_project", "CompiledProject"}:
        import kmlc.compiler.project

        return getattr(kmlc.compiler.project, name)
    if name in {"run_pipeline", "RunOptions", "RunResult"}:
        import kmlc.run

        return getattr(kmlc.run, name)
    if name == "Selection":
        import kmlc.config.selection

        return getattr(kmlc.config.selection, name)
    if name == "export_model":
        import kmlc.model.export

        return getattr(kmlc.model.export, name)
    if name == "log_pipeline_model":
        import kmlc.model.logged

        return getattr(kmlc.model.logged, name)
    if name == "import_kedro":
        import kmlc.importer

        return getattr(kmlc.importer, name)
    if name in {"run_sweep", "SweepResult"}:
        import kmlc.sweep.loop

        return getattr(kmlc.sweep.loop, name)
    raise AttributeError(f"module 'kmlc' has no attribute {name!r}")
