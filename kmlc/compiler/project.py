"""Compile stage: ``ProjectSpec`` -> ``CompiledProject`` (real Kedro objects).

Imports the node functions from the ``code`` folders, builds one Kedro ``Pipeline``
per name and instantiates the user's hooks. The catalog is built per run (the
parallel runner needs a shared-memory catalog), from ``catalog.build_catalog``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from kmlc.compiler.catalog import build_catalog
from kmlc.compiler.pipelines import build_pipelines
from kmlc.config.functions import FunctionImportError, import_function, static_stand_in
from kmlc.config.selection import Selection, check_selection
from kmlc.config.spec import ProjectSpec
from kmlc.config.target import TrackingTarget
from kmlc.errors import ConfigError, ConfigErrors, RunError

__all__ = ["CompiledProject", "compile_project"]


@dataclass(frozen=True)
class CompiledProject:
    """The Kedro objects of one project; ``catalog()`` builds a fresh catalog per run."""

    spec: ProjectSpec
    functions: Mapping[str, Callable[..., Any]]
    pipelines: Mapping[str, Pipeline]
    hooks: tuple[Any, ...]

    def catalog(self, *, shared_memory: bool = False,
                target: TrackingTarget | None = None,
                load_versions: Mapping[str, str] | None = None) -> DataCatalog:
        return build_catalog(self.spec, shared_memory=shared_memory, target=target,
                             load_versions=load_versions)

    def pipeline(self, name: str, selection: Selection | None = None) -> Pipeline:
        """The named pipeline, cut by ``selection``'s node filters as ``kedro run`` cuts
        it (``Pipeline.filter``)."""
        selection = selection or Selection()
        check_selection(self.spec, name, selection)
        pipeline = self.pipelines[name]
        if selection.filtered:
            try:
                pipeline = pipeline.filter(**selection.kedro_filter())
            except ValueError as exc:
                raise RunError(f"the filters select no node of '{name}': {exc}",
                               code="KMLC603") from exc
        return pipeline


def _load_hook(path: str, spec: ProjectSpec) -> Any:
    try:
        target = import_function(path, list(spec.code))
    except FunctionImportError as exc:
        index = spec.hooks.index(path)
        raise ConfigError(f"hook '{path}': {exc.message}", file=str(spec.path),
                          key_path=("hooks", index), hint=exc.hint, code="KMLC407") from exc
    return target() if isinstance(target, type) else target


def compile_project(spec: ProjectSpec, *, run: bool = True) -> CompiledProject:
    """Import functions and hooks and build the pipelines of ``spec``.

    ``run=False``: for what only reads the pipelines (``kmlc plan``, ``kmlc graph``): a
    plain function is read from its source (``static_stand_in``: same signature, same
    source hash, never called) instead of imported, and the hooks are not loaded.
    """
    functions: dict[str, Callable[..., Any]] = {}
    errors: list[ConfigError] = []
    sources: dict[str, Any] = {}
    for n in (*spec.nodes, *spec.templates):
        stand_in = None if run else static_stand_in(n.func, list(spec.code), sources)
        if stand_in is not None:
            functions[n.name] = stand_in
            continue
        try:
            functions[n.name] = import_function(n.func, list(spec.code))
        except FunctionImportError as exc:
            src = n.source
            errors.append(ConfigError(
                exc.message, file=src.file if src else str(spec.path),
                line=src.line if src else 0, column=src.column if src else 0,
                key_path=(*(src.key_path if src else ()), "func"), hint=exc.hint, code=exc.code))
    if errors:
        raise ConfigErrors(errors)
    hooks = tuple(_load_hook(path, spec) for path in spec.hooks) if run else ()
    return CompiledProject(spec, functions, build_pipelines(spec, functions), hooks)
