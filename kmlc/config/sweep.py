"""Checks stage, for ``sweep:``: what ``kmlc sweep`` varies must exist and fit.

Run after the JSON Schema passed: every swept path is a parameter the file defines
(did-you-mean otherwise), a range only on a number, every candidate a namespace of
the nodes, the metric a key some metric dataset logs, and the method given what it
needs. Each problem is located at the key of ``sweep:`` that caused it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from kmlc.config.nodes import NodeDef
from kmlc.config.params import has_param, param_paths, param_value
from kmlc.config.shorthands import shorthand
from kmlc.config.source import Document
from kmlc.config.spec import ProjectSpec
from kmlc.errors import ConfigError, RunError, did_you_mean

__all__ = ["candidate_nodes", "check_sweep", "for_candidate", "inference_candidates",
           "metric_keys", "param_candidate"]

N = TypeVar("N")


def in_candidate(namespace: str | None, candidate: str) -> bool:
    """Whether a node of ``namespace`` belongs to ``candidate`` (its namespace or below)."""
    return namespace is not None and (namespace == candidate
                                      or namespace.startswith(candidate + "."))


def candidate_nodes(nodes: Sequence[N], candidates: Iterable[str], candidate: str) -> list[N]:
    """``nodes`` without those of the other ``candidates``: what a run of ``candidate``
    (one of the sweep's trials of it, ``kmlc run --candidate``) has."""
    others = [c for c in candidates if c != candidate]
    return [n for n in nodes
            if not any(in_candidate(getattr(n, "namespace", None), c) for c in others)]


def inference_candidates(nodes: Iterable[Any], candidates: Iterable[str]) -> tuple[str, ...]:
    """The candidates that have inference nodes of their own: when there are any, the bound
    model depends on which candidate a run trained (its copy of the inference nodes)."""
    inference = [n for n in nodes if "inference" in n.tags]
    return tuple(c for c in candidates
                 if any(in_candidate(getattr(n, "namespace", None), c) for n in inference))


def for_candidate(spec: ProjectSpec, candidate: str) -> ProjectSpec:
    """``spec`` with the other candidates' nodes left out: the project as one candidate's
    trial runs it (``kmlc run --candidate``), its model bound to that candidate's copy of
    the inference nodes."""
    candidates = spec.sweep.candidates if spec.sweep is not None else ()
    if candidate not in candidates:
        raise RunError(f"candidate '{candidate}' is not one of sweep.candidates"
                       + (f" ({', '.join(candidates)})" if candidates else ": the file has none"),
                       code="KMLC637", hint=did_you_mean(candidate, list(candidates)))
    others = [c for c in candidates if c != candidate]
    return replace(spec, nodes=tuple(candidate_nodes(spec.nodes, candidates, candidate)),
                   pipelines={name: p for name, p in spec.pipelines.items()
                              if not any(in_candidate(p.namespace, c) for c in others)})


def metric_keys(datasets: Mapping[str, Any]) -> tuple[set[str], set[str], bool]:
    """The metric keys the datasets log: exact keys, prefixes of ``mlflow.metrics``
    datasets (``prefix.<name>``), and whether one logs keys as returned (any key)."""
    keys: set[str] = set()
    prefixes: set[str] = set()
    any_key = False
    for name, cfg in datasets.items():
        if not isinstance(cfg, Mapping) or "{" in name:
            continue
        kind = shorthand(cfg.get("type"))
        if kind is None or kind.metric is None:
            continue
        if kind.metric != "many":
            keys.add(str(cfg.get("key") or name))
        else:
            if cfg.get("prefix"):
                prefixes.add(str(cfg["prefix"]))
            else:
                any_key = True
    return keys, prefixes, any_key


def param_candidate(path: str, candidates: Iterable[str]) -> str | None:
    """The candidate a swept path belongs to (``ridge.alpha`` -> ``ridge``), if any."""
    for candidate in sorted(candidates, key=len, reverse=True):
        if path.startswith(candidate + "."):
            return candidate
    return None


def _namespaces(nodes: Iterable[NodeDef]) -> list[str]:
    found: dict[str, None] = {}
    for node in nodes:
        parts = (node.namespace or "").split(".")
        for i in range(1, len(parts) + 1):
            if parts[0]:
                found.setdefault(".".join(parts[:i]))
    return list(found)


def check_sweep(doc: Document, nodes: list[NodeDef],
                factory_matches: Mapping[str, tuple[str, dict[str, Any]]]) -> list[ConfigError]:
    """Every problem of ``sweep:`` (the schema has passed), located."""
    sweep = doc.data.get("sweep")
    if not isinstance(sweep, dict):
        return []
    errors: list[ConfigError] = []
    params = doc.data.get("parameters") or {}
    known = param_paths(params)
    namespaces = _namespaces(nodes)
    candidates = list(sweep.get("candidates") or [])
    for i, candidate in enumerate(candidates):
        if candidate not in namespaces:
            errors.append(doc.error(
                f"candidate '{candidate}' is not a namespace of any node",
                ("sweep", "candidates", i),
                code="KMLC531", hint=did_you_mean(candidate, namespaces, (
                    f"namespaces: {', '.join(namespaces)}" if namespaces else
                    "a candidate is a namespaced pipeline (`pipelines: NAME: {namespace: NAME, "
                    "nodes: [...]}`)"))))
    method = sweep.get("method", "grid")
    swept = sweep.get("parameters") or {}
    for path, entry in swept.items():
        where = ("sweep", "parameters", path)
        if not has_param(params, path):
            errors.append(doc.error(
                f"parameter '{path}' is not defined in `parameters`", where, key=True,
                code="KMLC530", hint=did_you_mean(path, known)))
            continue
        if "values" in entry:
            continue
        current = param_value(params, path)
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            errors.append(doc.error(
                f"a range needs a numeric parameter; '{path}' is {type(current).__name__} "
                f"{current!r:.40}", where, key=True, code="KMLC532",
                hint="list the values to try: {values: [...]}"))
            continue
        low, high = entry["low"], entry["high"]
        if low > high:
            errors.append(doc.error(f"low ({low}) is above high ({high})", (*where, "low"),
                                    code="KMLC532"))
        if entry.get("log") and low <= 0:
            errors.append(doc.error(f"a log range needs low > 0, got {low}", (*where, "low"),
                                    code="KMLC532"))
        if method == "grid":
            errors.append(doc.error(
                f"method grid tries listed values; '{path}' is a range", where, key=True,
                code="KMLC533", hint="list the values ({values: [...]}), or use method: random "
                "or optuna with `trials:`"))
    if method in ("random", "optuna") and "trials" not in sweep:
        errors.append(doc.error(f"method {method} needs `trials:` (how many to run)",
                                ("sweep", "method"), code="KMLC533"))
    if not swept and not candidates:
        errors.append(doc.error("the sweep varies nothing: give `parameters:` or `candidates:`",
                                ("sweep",), key=True, code="KMLC534"))
    datasets: dict[str, Any] = dict(doc.data.get("datasets") or {})
    datasets.update({name: entry for name, (_, entry) in factory_matches.items()})
    keys, prefixes, any_key = metric_keys(datasets)
    metric = sweep["metric"]
    if not (any_key or metric in keys or any(metric.startswith(p + ".") for p in prefixes)):
        logged = sorted(keys) + [f"{p}.*" for p in sorted(prefixes)]
        errors.append(doc.error(
            f"metric '{metric}' is not logged by any metric dataset", ("sweep", "metric"),
            code="KMLC535", hint=did_you_mean(metric, [*keys, *(f"{p}." for p in prefixes)], (
                f"logged keys: {', '.join(logged)}" if logged else
                "declare a dataset of type mlflow.metric (or mlflow.metrics) that logs it"))))
    pipeline = sweep.get("pipeline")
    if pipeline is not None:
        tags = {t for n in nodes for t in n.tags}
        names = {"__default__", *(doc.data.get("pipelines") or {}),
                 *({"training", "inference"} & tags)}
        if pipeline not in names:
            errors.append(doc.error(f"pipeline '{pipeline}' does not exist",
                                    ("sweep", "pipeline"), code="KMLC536",
                                    hint=did_you_mean(pipeline, sorted(names))))
    return errors
