"""Stage 5, checks and spec: the MLflow keys each metric dataset writes.

A namespaced copy's metrics are logged under its namespace: an ``mlflow.metric`` (or
``mlflow.metric_history``) dataset's key is its name, which the copy prefixes already;
an ``mlflow.metrics`` dataset written by a copy gets the prefix ``<namespace>`` unless
it sets ``prefix`` itself (``prefix: ""`` keeps the bare names). ``collisions`` finds
the datasets that would still write one MLflow key in one run: two metrics with one
key, or two ``mlflow.metrics`` with one prefix written by the same node code (copies
of one template), which then writes the same names twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kmlc.config.nodes import NodeDef, node_io
from kmlc.config.shorthands import shorthand
from kmlc.config.source import KeyPath

__all__ = ["MetricWriter", "metric_writers", "namespace_prefix"]

@dataclass(frozen=True)
class MetricWriter:
    dataset: str
    type: str
    key: str | None  # mlflow.metric(_history): the key
    prefix: str | None  # mlflow.metrics: the prefix (None: bare names)
    origin: str  # the node whose code writes it (a copy's template)
    where: KeyPath  # where the file says it: the dataset, else the copying pipeline


def namespace_prefix(name: str, config: Mapping[str, Any],
                     producer: NodeDef | None) -> str | None:
    """The prefix an ``mlflow.metrics`` dataset gets: its own, else its copy's namespace."""
    if "prefix" in config:
        return str(config["prefix"] or "") or None
    if producer is not None and producer.pipeline and producer.namespace and name.startswith(
            producer.namespace + "."):
        return producer.namespace
    return None


def metric_writers(nodes: Sequence[NodeDef], datasets: Mapping[str, Any],
                   factory: Mapping[str, tuple[str, Mapping[str, Any]]]) -> list[MetricWriter]:
    """Every metric dataset a node writes, with the key or prefix it writes under."""
    out = []
    for node in nodes:
        for name, _ in node_io(node.outputs):
            declared = datasets.get(name)
            config = declared if isinstance(declared, Mapping) else factory.get(
                name, ("", None))[1]
            if not isinstance(config, Mapping):
                continue
            kind = config.get("type")
            logs = shorthand(kind)
            if logs is None or logs.metric is None:
                continue
            where: KeyPath = ("datasets", name) if declared is not None else (
                ("pipelines", node.pipeline) if node.pipeline else node.path)
            origin = node.template or node.name
            if logs.metric != "many":
                out.append(MetricWriter(name, str(kind), str(config.get("key") or name), None,
                                        origin, where))
            else:
                out.append(MetricWriter(name, str(kind), None,
                                        namespace_prefix(name, config, node), origin, where))
    return out


def collisions(writers: Sequence[MetricWriter]) -> list[tuple[MetricWriter, MetricWriter, str]]:
    """(first, second, the key or key family) for each pair that writes one MLflow key."""
    found = []
    seen: dict[tuple[str, ...], MetricWriter] = {}
    for writer in writers:
        if writer.key is not None:
            ident: tuple[str, ...] = ("key", writer.key)
            label = f"key '{writer.key}'"
        else:
            ident = ("prefix", writer.prefix or "", writer.origin)
            label = (f"the keys '{writer.prefix}.*'" if writer.prefix
                     else "the same unprefixed keys")
        if ident in seen:
            found.append((seen[ident], writer, label))
        else:
            seen[ident] = writer
    return found
