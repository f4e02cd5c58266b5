"""Compile stage: node specs -> one ``kedro.pipeline.Pipeline`` per name.

``training`` and ``inference`` come from node tags, each entry of ``pipelines:``
selects nodes by tags or names, and ``__default__`` holds every node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kedro.pipeline import Pipeline, node

from kmlc.config.spec import ProjectSpec

__all__ = ["build_pipelines"]

BOUND_PIPELINES = ("training", "inference")


def _shape(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def build_pipelines(spec: ProjectSpec, functions: Mapping[str, Callable[..., Any]]
                    ) -> dict[str, Pipeline]:
    """Build every named pipeline; ``functions`` maps node names to imported callables."""
    nodes = {
        n.name: node(functions[n.name], _shape(n.inputs), _shape(n.outputs), name=n.name,
                     tags=list(n.tags))
        for n in spec.nodes
    }
    everything = Pipeline(list(nodes.values()))
    out: dict[str, Pipeline] = {"__default__": everything}
    for tag in BOUND_PIPELINES:
        chosen = [nodes[n.name] for n in spec.nodes if tag in n.tags]
        if chosen:
            out[tag] = Pipeline(chosen)
    for name, pdef in spec.pipelines.items():
        chosen = [nodes[n.name] for n in spec.nodes
                  if n.name in pdef.nodes or set(n.tags) & set(pdef.tags)]
        out[name] = Pipeline(chosen)
    return out
