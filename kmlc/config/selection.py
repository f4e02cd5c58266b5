"""The nodes of each pipeline, and a run's node selection checked on the spec alone.

``pipeline_members`` is the one definition of which nodes make each pipeline (the
compiler builds its Kedro pipelines from it); ``check_selection`` refuses a pipeline, a
node, a dataset, a tag or a namespace of ``kmlc run``'s filters that the file does not
have. It reads the spec only, so ``kmlc run`` refuses a misspelt filter before it
imports Kedro or MLflow or starts its tracking worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import Field, dataclass, field, fields
from typing import Any

from kmlc.config.spec import NodeSpec, ProjectSpec
from kmlc.errors import RunError, did_you_mean

__all__ = ["BOUND_PIPELINES", "Selection", "check_load_versions", "check_selection", "filters",
           "pipeline_members"]

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


def _filter(flags: tuple[str, ...], kedro: str, kind: str, help: str) -> Any:
    """A node filter: its command-line ``flags``, its keyword of Kedro's
    ``Pipeline.filter`` (``kedro``), what its values name (``kind``: node, dataset, tag or
    namespace) and the option's ``help``."""
    return field(default=(), metadata={"flags": flags, "kedro": kedro, "kind": kind,
                                       "help": help})


@dataclass(frozen=True)
class Selection:
    """What of a pipeline a run runs, as ``kedro run`` selects it: the node filters and the
    dataset versions to load. One value from the command line to the compiled pipeline.

    Each filter is one field; its metadata say how the command line spells it, which
    keyword of ``Pipeline.filter`` (and of Kedro's ``run_params``) it is and what its
    values name: adding a filter is adding a field here.
    """

    tags: tuple[str, ...] = _filter(("--tags",), "tags", "tag",
                                    "Run only nodes with these tags (comma-separated).")
    nodes: tuple[str, ...] = _filter(("--nodes",), "node_names", "node",
                                     "Run only these nodes (comma-separated).")
    from_nodes: tuple[str, ...] = _filter(("--from-nodes",), "from_nodes", "node",
                                          "Run from these nodes on.")
    to_nodes: tuple[str, ...] = _filter(("--to-nodes",), "to_nodes", "node",
                                        "Run up to these nodes.")
    from_inputs: tuple[str, ...] = _filter(
        ("--from-inputs",), "from_inputs", "dataset",
        "Run the nodes that depend on these datasets (comma-separated).")
    to_outputs: tuple[str, ...] = _filter(
        ("--to-outputs",), "to_outputs", "dataset",
        "Run the nodes needed to make these datasets (comma-separated).")
    namespaces: tuple[str, ...] = _filter(
        ("--namespace", "--namespaces"), "node_namespaces", "namespace",
        "Run only the nodes in these namespaces (comma-separated).")
    load_versions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in filters():  # lists from the Python API too: a frozen value compares
            object.__setattr__(self, f.name, tuple(getattr(self, f.name)))

    @property
    def filtered(self) -> bool:
        """Whether any node filter is set (the pipeline is then cut)."""
        return any(getattr(self, f.name) for f in filters())

    def kedro_filter(self) -> dict[str, list[str] | None]:
        """The keyword arguments of Kedro's ``Pipeline.filter``."""
        return {f.metadata["kedro"]: list(getattr(self, f.name)) or None for f in filters()}

    def run_params(self) -> dict[str, Any]:
        """The selection's entries of Kedro's ``run_params`` (as ``KedroSession.run``)."""
        params: dict[str, Any] = {
            "namespaces" if f.name == "namespaces" else f.metadata["kedro"]:
                list(getattr(self, f.name)) for f in filters()}
        return {**params, "load_versions": dict(self.load_versions)}


def filters() -> tuple[Field[Any], ...]:
    """The node filters of ``Selection``, in the order ``kedro run`` lists them."""
    return tuple(f for f in fields(Selection) if "kedro" in f.metadata)


def check_selection(spec: ProjectSpec, name: str, selection: Selection | None = None, *,
                    force_nodes: Sequence[str] = ()) -> None:
    """Refuse (``RunError``) a pipeline or a filter name that pipeline ``name`` lacks, a
    ``--force-nodes`` node it lacks, a ``--load-versions`` dataset that is not versioned."""
    selection = selection or Selection()
    members = pipeline_members(spec)
    if name not in members:
        hint = did_you_mean(name, members, f"pipelines: {', '.join(sorted(members))}")
        raise RunError(f"pipeline '{name}' does not exist", hint=hint, code="KMLC602")
    chosen = members[name]
    known = sorted(n.name for n in chosen)
    datasets = sorted({ds for n in chosen for ds in (*n.input_names, *n.output_names)})
    tags = sorted({tag for n in chosen for tag in n.tags})
    spaces = sorted({prefix for n in chosen for prefix in _namespaces(n)})
    # per kind of name: the names the pipeline has, the refusal, how the hint lists them
    kinds: dict[str, tuple[list[str], str, str | None, str | None]] = {
        "node": (known, "{option}: node '{value}' is not in pipeline '{name}'", "nodes", ""),
        "dataset": (datasets, "{option}: dataset '{value}' is not used by pipeline '{name}'",
                    None, None),
        "tag": (tags, "{option}: no node of pipeline '{name}' has tag '{value}'", "tags",
                "no node of this pipeline has a tag"),
        "namespace": (spaces, "{option}: no node of pipeline '{name}' is in namespace "
                      "'{value}'", "namespaces", "this pipeline has no namespaced node"),
    }
    checks = [(f.metadata["flags"][0], f.metadata["kind"], getattr(selection, f.name))
              for f in filters()]
    checks.append(("--force-nodes", "node", force_nodes))
    order = list(kinds)  # the first refusal: nodes, then datasets, tags, namespaces
    for option, kind, values in sorted(checks, key=lambda check: order.index(check[1])):
        names, message, listing, none = kinds[kind]
        for value in values:
            if value not in names:
                otherwise = (None if listing is None else
                             f"{listing}: {', '.join(names)}" if names else none)
                raise RunError(message.format(option=option, value=value, name=name),
                               hint=did_you_mean(value, names, otherwise), code="KMLC603")
    check_load_versions(spec, selection.load_versions)


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
