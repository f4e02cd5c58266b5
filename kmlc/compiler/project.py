"""Compile stage: ``ProjectSpec`` -> ``CompiledProject`` (real Kedro objects).

Imports the node functions from the ``code`` folders, builds one Kedro ``Pipeline``
per name and instantiates the user's hooks. The catalog is built per run (the
parallel runner needs a shared-memory catalog), from ``catalog.build_catalog``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from kmlc.compiler.catalog import build_catalog
from kmlc.compiler.pipelines import build_pipelines
from kmlc.config.functions import FunctionImportError, import_function
from kmlc.config.spec import ProjectSpec
from kmlc.errors import ConfigError, ConfigErrors, RunError, did_you_mean

__all__ = ["CompiledProject", "compile_project"]


@dataclass(frozen=True)
class CompiledProject:
    """The Kedro objects of one project; ``catalog()`` builds a fresh catalog per run."""

    spec: ProjectSpec
    functions: Mapping[str, Callable[..., Any]]
    pipelines: Mapping[str, Pipeline]
    hooks: tuple[Any, ...]

    def catalog(self, *, shared_memory: bool = False,
                tracking_uri: str | None = None,
                load_versions: Mapping[str, str] | None = None) -> DataCatalog:
        return build_catalog(self.spec, shared_memory=shared_memory, tracking_uri=tracking_uri,
                             load_versions=load_versions)

    def pipeline(self, name: str, *, tags: Sequence[str] = (), nodes: Sequence[str] = (),
                 from_nodes: Sequence[str] = (), to_nodes: Sequence[str] = (),
                 from_inputs: Sequence[str] = (), to_outputs: Sequence[str] = (),
                 namespaces: Sequence[str] = ()) -> Pipeline:
        """The named pipeline, filtered as ``kedro run`` filters it (``Pipeline.filter``):
        ``--tags``, ``--nodes``, ``--from-nodes``, ``--to-nodes``, ``--from-inputs``,
        ``--to-outputs`` and ``--namespaces``."""
        if name not in self.pipelines:
            hint = did_you_mean(name, self.pipelines,
                                f"pipelines: {', '.join(sorted(self.pipelines))}")
            raise RunError(f"pipeline '{name}' does not exist", hint=hint, code="KMLC602")
        pipeline = self.pipelines[name]
        known = {n.name for n in pipeline.nodes}
        for option, names in (("--nodes", nodes), ("--from-nodes", from_nodes),
                              ("--to-nodes", to_nodes)):
            for node_name in names:
                if node_name not in known:
                    raise RunError(f"{option}: node '{node_name}' is not in pipeline '{name}'",
                                   hint=did_you_mean(node_name, sorted(known)),
                                   code="KMLC603")
        datasets = sorted(pipeline.datasets())
        for option, names in (("--from-inputs", from_inputs), ("--to-outputs", to_outputs)):
            for ds_name in names:
                if ds_name not in datasets:
                    raise RunError(f"{option}: dataset '{ds_name}' is not used by pipeline "
                                   f"'{name}'", hint=did_you_mean(ds_name, datasets),
                                   code="KMLC603")
        known_ns = {prefix for n in pipeline.nodes for prefix in n.namespace_prefixes if prefix}
        for namespace in namespaces:
            if namespace not in known_ns:
                raise RunError(
                    f"--namespace: no node of pipeline '{name}' is in namespace '{namespace}'",
                    hint=did_you_mean(namespace, sorted(known_ns), (
                        f"namespaces: {', '.join(sorted(known_ns))}" if known_ns else
                        "this pipeline has no namespaced node")), code="KMLC603")
        if tags or nodes or from_nodes or to_nodes or from_inputs or to_outputs or namespaces:
            try:
                pipeline = pipeline.filter(tags=list(tags) or None,
                                           node_names=list(nodes) or None,
                                           from_nodes=list(from_nodes) or None,
                                           to_nodes=list(to_nodes) or None,
                                           from_inputs=list(from_inputs) or None,
                                           to_outputs=list(to_outputs) or None,
                                           node_namespaces=list(namespaces) or None)
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


def compile_project(spec: ProjectSpec) -> CompiledProject:
    """Import functions and hooks and build the pipelines of ``spec``."""
    functions: dict[str, Callable[..., Any]] = {}
    errors: list[ConfigError] = []
    for n in (*spec.nodes, *spec.templates):
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
    hooks = tuple(_load_hook(path, spec) for path in spec.hooks)
    return CompiledProject(spec, functions, build_pipelines(spec, functions), hooks)
