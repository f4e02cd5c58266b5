"""Checks stage, for the secrets: a located error for each secret that cannot be masked.

``Secrets.mask`` (``secrets.py``) masks a secret wherever kmlc hands a value to
something that keeps or shows it; where masking would make no sense (a name, a path,
the wiring of the pipeline, what a logged model carries in clear), ``refusals`` has
validate refuse the secret instead. It runs before the schema's verdict is known, so
it reads the document defensively; the loader runs it before anything imports Kedro.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from kmlc.config.inference import inference_graph
from kmlc.config.nodes import tag_list
from kmlc.config.params import ALL_PARAMS, PARAMS_PREFIX
from kmlc.config.shorthands import PLAN_DROPPED_KEYS, shorthand
from kmlc.config.source import Document, KeyPath
from kmlc.errors import ConfigError

__all__ = ["refusals"]

_HINT = ("secrets may go where kmlc masks them: parameters inference does not read, "
         "tracking tags, run_name and URIs, dataset arguments; or in the credentials file")
_MASKED_TRACKING = ("run_name", "uri", "registry_uri")
# dataset keys that name, place or wire a dataset: stored and shown as they are
_DATASET_PLAIN = ("type", "filepath", "path", "track", "credentials", "flavor", "artifact_path",
                  "key", "prefix", "run_id", "model_uri", "versioned", "allow_outside")
_NAMES: dict[tuple[str, ...], str] = {
    ("name",): "the project's name is the default MLflow experiment name",
    ("tracking", "experiment"): "the MLflow experiment name",
    ("model", "registered_name"): "the registered model's name",
    ("model", "alias"): "the registered model's alias",
    ("model", "artifact_path"): "the model's artifact path in the run",
}


def refusals(doc: Document, paths: Iterable[KeyPath],
             nodes: Sequence[Any] | None = None) -> list[ConfigError]:
    """A located error for each secret-holding value that cannot be masked.

    ``nodes``: every node the project runs (``nodes.expand_nodes``: namespaced copies
    included), once the document has passed the schema; else the nodes as written.
    """
    packed_params, packed_datasets = _packed(doc.data, nodes)
    datasets = doc.data.get("datasets") if isinstance(doc.data, dict) else None
    logged = {name for name, cfg in (datasets if isinstance(datasets, dict) else {}).items()
              if isinstance(cfg, dict) and (kind := shorthand(cfg.get("type"))) is not None
              and kind.logs_save_args}
    errors = []
    for path in paths:
        why = _why_not(path, packed_params, packed_datasets, PLAN_DROPPED_KEYS, logged)
        if why is not None:
            errors.append(doc.error(f"a secret cannot be used here: {why}", path,
                                    code="KMLC115", hint=_HINT))
    return errors


def _why_not(path: KeyPath, packed_params: set[str] | None, packed_datasets: set[str],
             dropped: tuple[str, ...], logged: set[str]) -> str | None:
    named = _NAMES.get(tuple(map(str, path[:2]))) or _NAMES.get((str(path[0]),))
    if named:
        return f"{named} is stored and shown in clear"
    if path[0] == "parameters":
        dotted = ".".join(str(p) for p in path[1:])
        if packed_params is None or any(
                dotted == p or dotted.startswith(p + ".") or p.startswith(dotted + ".")
                for p in packed_params):
            return ("inference reads this parameter, and the model carries what inference "
                    "reads in clear")
        return None
    if path[0] == "tracking" and ((len(path) == 3 and path[1] == "tags")
                                  or (len(path) == 2 and path[1] in _MASKED_TRACKING)):
        return None
    if path[0] == "datasets" and len(path) >= 3:
        name, key = str(path[1]), str(path[2])
        if key in _DATASET_PLAIN:
            return f"datasets.{name}.{key} names, places or wires the dataset, in clear"
        if name in logged and key == "save_args":
            return f"the save_args of '{name}' are logged with its model, in clear"
        if name in packed_datasets and key not in dropped:
            return f"'{name}' is packed into a model, which carries its {key} in clear"
        return None
    return "names, paths and the pipeline's wiring are stored and shown in clear"


def _packed(data: Any, expanded: Sequence[Any] | None = None
            ) -> tuple[set[str] | None, set[str]]:
    """The parameters (dotted; ``None``: all of them) and datasets the model carries
    (with their config but the keys the plan drops, such as ``save_args``)."""
    model = data.get("model") if isinstance(data, dict) else None
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(model, dict) or not isinstance(nodes, list):
        return set(), set()
    # the document has not passed the schema yet: read only what is well formed
    model_input = model.get("input")
    if expanded is not None:
        graph_nodes = [_RawNode(n.name, n.inputs, n.outputs, tuple(n.tags)) for n in expanded]
    else:
        graph_nodes = [_RawNode(f"nodes[{i}]", n.get("inputs"), n.get("outputs"),
                                tag_list(n["tags"]))
                       for i, n in enumerate(nodes) if isinstance(n, dict)
                       and isinstance(n.get("tags"), (str, list))]
    graph = inference_graph(graph_nodes, model_input if isinstance(model_input, str) else None)
    free = graph.free_inputs
    params: set[str] | None = {n[len(PARAMS_PREFIX):] for n in free if n.startswith(PARAMS_PREFIX)}
    if ALL_PARAMS in free:
        params = None
    return params, set(graph.needed)


class _RawNode(NamedTuple):
    """A node of the document as the inference graph reads it."""

    name: str
    inputs: Any
    outputs: Any
    tags: tuple[str, ...]
