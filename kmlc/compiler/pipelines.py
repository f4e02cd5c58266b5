"""Compile stage: node specs -> one ``kedro.pipeline.Pipeline`` per name.

``training`` and ``inference`` come from node tags, each entry of ``pipelines:``
selects nodes by tags or names, and ``__default__`` holds every node. An entry with
``namespace`` is a modular pipeline: Kedro's own ``pipeline(nodes, namespace=...,
inputs=..., outputs=..., parameters=..., tags=...)`` makes the namespaced copies of the
nodes it selects. The copies are nodes like any other: they join ``__default__`` and
every pipeline their tags select, as they would in a Kedro registry that sums its
pipelines into ``__default__``. Template nodes (``template: true``) are built only to be
copied: they are in no pipeline.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

from kedro.pipeline import Node, Pipeline, node, pipeline

from kmlc.config.nodes import io_shape
from kmlc.config.selection import pipeline_members
from kmlc.config.spec import NodeSpec, PipelineSpec, ProjectSpec

__all__ = ["build_pipelines"]


# Kedro warns (once per process, ten lines under rich) about any dataset name with a '.'
# read outside its node's namespace; the README recommends "{namespace}.regressor" for
# namespaced datasets, and `kmlc validate` checks the names itself. Kedro 1.1 words it
# once per name ("Dataset name 'x.y' contains '.' characters"), later ones once in all.
warnings.filterwarnings(
    "ignore", message=r"(One or more dataset names contain|Dataset name '[^']*' contains) '\.'",
    category=UserWarning, module=r"kedro\.pipeline\.node")


def _kedro_node(spec: NodeSpec, func: Callable[..., Any]) -> Node:
    # a spec without a name in the file carries Kedro's generated name: the same node
    return node(func, io_shape(spec.inputs), io_shape(spec.outputs), name=spec.base_name,
                tags=list(spec.tags), namespace=spec.namespace)


def _copies(pdef: PipelineSpec, spec: ProjectSpec, built: Mapping[str, Node]) -> list[Node]:
    """The namespaced copies of ``pdef``, made by Kedro from the template nodes."""
    names = {n.template for n in spec.nodes if n.pipeline == pdef.name}
    templates = [built[n.name] for n in (*spec.nodes, *spec.templates) if n.name in names]
    extra = list(pdef.tags) if pdef.nodes else None
    copied = pipeline(Pipeline(templates), namespace=pdef.namespace,
                      inputs=dict(pdef.inputs) or None, outputs=dict(pdef.outputs) or None,
                      parameters=dict(pdef.parameters) or None, tags=extra)
    return list(copied.nodes)


def build_pipelines(spec: ProjectSpec, functions: Mapping[str, Callable[..., Any]]
                    ) -> dict[str, Pipeline]:
    """Build every named pipeline; ``functions`` maps node names to imported callables."""
    built = {n.name: _kedro_node(n, functions[n.name])
             for n in (*spec.nodes, *spec.templates) if n.pipeline is None}
    for pdef in spec.pipelines.values():
        if pdef.namespace:
            built.update((copy.name, copy) for copy in _copies(pdef, spec, built))
    return {name: Pipeline([built[n.name] for n in members])
            for name, members in pipeline_members(spec).items()}
