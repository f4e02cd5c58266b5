"""The nodes of each pipeline, and a run's node selection checked on the spec alone.

``pipeline_members`` is the one definition of which nodes make each pipeline (the
compiler builds its Kedro pipelines from it); ``check_selection`` refuses a pipeline, a
node, a dataset, a tag or a namespace of ``kmlc run``'s filters that the file does not
have. It reads the spec only, so ``kmlc run`` refuses a misspelt filter before it
imports Kedro or MLflow or starts its tracking worker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from kmlc.config.spec import NodeSpec, ProjectSpec
from kmlc.errors import RunError, did_you_mean

__all__ = ["BOUND_PIPELINES", "check_load_versions", "check_selection", "pipeline_members"]

BOUND_PIPELINES = ("training", "inference")  # made from the node tags of that name


def pipeline_members(spec: ProjectSpec) -> dict[str, list[NodeSpec]]:
    """Each pipeline's nodes, in file order: ``__default__`` (every node), ``training``
    and ``inference`` (by tag), then each entry of ``pipelines:`` (by name or tag; a
    namespaced one: the copies it made)."""
    out: dict[str, list[NodeSpec]] = {"__default__": list(spec.nodes)}
    for tag in BOUND_PIPELINES:
        chosen = [n for n in spec.nodes if tag in n.tags]
        if chosen:
            out[tag] = chosen
    for name, pdef in spec.pipelines.items():
        if pdef.namespace:
            out[name] = [n for n in spec.nodes if n.pipeline == name]
        else:
            out[name] = [n for n in spec.nodes
                         if n.name in pdef.nodes or set(n.tags) & set(pdef.tags)]
    return out


def _namespaces(node: NodeSpec) -> list[str]:
    """Kedro's ``Node.namespace_prefixes``: ``a`` and ``a.b`` for namespace ``a.b``."""
    parts = (node.namespace or "").split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if node.namespace]


def check_selection(spec: ProjectSpec, name: str, *, tags: Sequence[str] = (),
                    nodes: Sequence[str] = (), from_nodes: Sequence[str] = (),
                    to_nodes: Sequence[str] = (), from_inputs: Sequence[str] = (),
                    to_outputs: Sequence[str] = (), namespaces: Sequence[str] = (),
                    force_nodes: Sequence[str] = (),
                    load_versions: Mapping[str, str] | None = None) -> None:
    """Refuse (``RunError``) a pipeline or a filter name that pipeline ``name`` lacks, a
    ``--force-nodes`` node it lacks, a ``--load-versions`` dataset that is not versioned."""
    members = pipeline_members(spec)
    if name not in members:
        hint = did_you_mean(name, members, f"pipelines: {', '.join(sorted(members))}")
        raise RunError(f"pipeline '{name}' does not exist", hint=hint, code="KMLC602")
    chosen = members[name]
    known = [n.name for n in chosen]
    for option, names in (("--nodes", nodes), ("--from-nodes", from_nodes),
                          ("--to-nodes", to_nodes), ("--force-nodes", force_nodes)):
        for node_name in names:
            if node_name not in known:
                raise RunError(f"{option}: node '{node_name}' is not in pipeline '{name}'",
                               hint=did_you_mean(node_name, sorted(known),
                                                 f"nodes: {', '.join(sorted(known))}"),
                               code="KMLC603")
    datasets = sorted({ds for n in chosen for ds in (*n.input_names, *n.output_names)})
    for option, names in (("--from-inputs", from_inputs), ("--to-outputs", to_outputs)):
        for ds_name in names:
            if ds_name not in datasets:
                raise RunError(f"{option}: dataset '{ds_name}' is not used by pipeline "
                               f"'{name}'", hint=did_you_mean(ds_name, datasets),
                               code="KMLC603")
    _check_known(tags, sorted({tag for n in chosen for tag in n.tags}),
                 lambda tag: f"--tags: no node of pipeline '{name}' has tag '{tag}'",
                 "tags", "no node of this pipeline has a tag")
    _check_known(namespaces, sorted({prefix for n in chosen for prefix in _namespaces(n)}),
                 lambda ns: f"--namespace: no node of pipeline '{name}' is in namespace '{ns}'",
                 "namespaces", "this pipeline has no namespaced node")
    check_load_versions(spec, load_versions or {})



def _check_known(values: Sequence[str], known: list[str], message: Callable[[str], str],
                 kind: str, none: str) -> None:
    """Each of ``values`` is one of ``known``, else KMLC603 with a did-you-mean (or the
    ``kind`` listed, or ``none`` when there is none)."""
    for value in values:
        if value not in known:
            raise RunError(message(value), hint=did_you_mean(
                value, known, f"{kind}: {', '.join(known)}" if known else none),
                code="KMLC603")

def check_load_versions(spec: ProjectSpec, load_versions: Mapping[str, str]) -> None:
    """``--load-versions`` names only versioned datasets of the file."""
    versioned = sorted(name for name, ds in spec.datasets.items()
                       if ds.config.get("versioned") and not ds.is_factory)
    for name in load_versions:
        if name not in versioned:
            raise RunError(
                f"--load-versions: '{name}' is not a versioned dataset",
                hint=did_you_mean(name, versioned, (
                    f"versioned datasets: {', '.join(versioned)}" if versioned
                    else "set `versioned: true` on the dataset")), code="KMLC604")
