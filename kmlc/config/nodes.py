"""Stage 5, before the checks: the nodes as Kedro will see them.

``expand_nodes`` turns ``nodes:`` and the namespaced entries of ``pipelines:`` into one
flat list of ``NodeDef``: a node without ``name`` gets Kedro's generated name, a node
``namespace:`` prefixes its name, and a pipeline with ``namespace`` adds namespaced
copies of the nodes it selects. A node with ``template: true`` is kept (``is_template``)
for its copies only: the checks and the compiler leave it out of every pipeline. Names
are computed by Kedro itself (``kedro.pipeline.node`` and ``kedro.pipeline.pipeline`` on
stand-in functions), imported only when a file uses
one of these forms, so a flat file is still validated without importing Kedro.

Each ``NodeDef`` keeps the key path of the YAML that defined it and, for a copy, the
key path of the mapping entry that named each renamed dataset, so the checks that run
on the expanded list still point at the line to fix.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kmlc.config.params import is_param_input
from kmlc.config.source import Document, KeyPath
from kmlc.errors import ConfigError, did_you_mean

__all__ = ["NodeDef", "NodeIO", "expand_nodes", "io_names", "io_shape", "mapping_of", "node_io",
           "pipeline_names", "split_func", "strip_transcoding", "tag_list"]

TRANSCODING_SEPARATOR = "@"  # kedro.pipeline.transcoding, without importing Kedro
NodeIO = str | tuple[str, ...] | Mapping[str, str] | None  # a node's inputs or outputs


def pipeline_names(declared: Iterable[str], tags: Iterable[str]) -> tuple[str, ...]:
    """The pipelines a project has: ``__default__``, those under ``pipelines:``, and
    ``training``/``inference`` where a node carries that tag."""
    names = {"__default__", *declared}
    seen = set(tags)
    names.update(name for name in ("training", "inference") if name in seen)
    return tuple(sorted(names))


def split_func(func: str) -> tuple[str, str]:
    """Split ``pkg.mod.fn`` or ``pkg.mod:fn`` into module and attribute path."""
    if ":" in func:
        module, _, attr = func.partition(":")
        return module, attr
    module, _, attr = func.rpartition(".")
    return module, attr


def node_io(value: Any) -> list[tuple[str, tuple[str | int, ...]]]:
    """The dataset names of a node's inputs or outputs, each with its key path suffix.

    Kedro's three forms: one name (``"a"``), a list (``["a", "b"]``) or a mapping of
    argument names (``{x: a}``). This is the one place that reads them; items that are
    not names (in a document no schema has checked yet) are skipped.
    """
    if isinstance(value, str):
        return [(value, ())]
    if isinstance(value, Mapping):
        return [(v, (k,)) for k, v in value.items() if isinstance(v, str)]
    if isinstance(value, (list, tuple)):
        return [(v, (i,)) for i, v in enumerate(value) if isinstance(v, str)]
    return []


def io_names(value: Any) -> tuple[str, ...]:
    """The dataset names of a node's inputs or outputs, in order."""
    return tuple(name for name, _ in node_io(value))


def io_shape(value: Any, sequence: Callable[[Iterable[str]], Any] = list) -> Any:
    """A node's inputs or outputs in Kedro's form: None, a name, a ``sequence`` (a list,
    as Kedro and JSON take it; a tuple in the frozen spec) or a dict."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    return sequence(value)


@dataclass(frozen=True)
class NodeDef:
    """One node of the expanded list; ``inputs``/``outputs`` keep their YAML shape."""

    name: str
    func: str
    inputs: Any
    outputs: Any
    tags: tuple[str, ...]
    path: KeyPath  # ("nodes", i): the node, or the template of a copy
    namespace: str | None = None
    pipeline: str | None = None  # the namespaced pipeline that made this copy
    template: str | None = None  # the name of the node this one copies
    renamed: Mapping[str, KeyPath] = field(default_factory=dict)
    is_template: bool = False  # `template: true`: only copied, never run itself

    def where(self, key: str, suffix: KeyPath, name: str) -> KeyPath:
        """Where ``name`` (an input or output at ``suffix``) is written in the file."""
        return self.renamed.get(name) or (*self.path, key, *suffix)


def tag_list(value: Any) -> tuple[str, ...]:
    """Kedro accepts one tag or a list of tags."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def strip_transcoding(name: str) -> str:
    """``model_input@pandas`` -> ``model_input``, as Kedro relates transcoded names."""
    return name.split(TRANSCODING_SEPARATOR, 1)[0]


def mapping_of(value: Any) -> dict[str, str]:
    """Kedro's ``inputs=``/``outputs=``/``parameters=`` forms as one mapping."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {value: value}
    if isinstance(value, list):
        return {v: v for v in value}
    return dict(value)


def _reshape(template: Any, names: list[str]) -> Any:
    """Put ``names`` (in Kedro's order) back into the shape of ``template``."""
    if template is None:
        return None
    if isinstance(template, str):
        return names[0]
    if isinstance(template, dict):
        return dict(zip(template, names, strict=True))
    return list(names)


def _stand_in(func: str) -> Callable[..., Any]:
    """A function Kedro names exactly as it names the real ``func``."""
    module, attr = split_func(func)

    def stand_in(*args: Any, **kwargs: Any) -> None:
        return None

    stand_in.__name__ = attr.rsplit(".", 1)[-1]
    stand_in.__qualname__ = attr
    stand_in.__module__ = module
    return stand_in


def _needs_kedro(data: Mapping[str, Any]) -> bool:
    return any("name" not in n for n in data["nodes"]) or any(
        isinstance(p, dict) and p.get("namespace")
        for p in (data.get("pipelines") or {}).values())


def expand_nodes(doc: Document) -> tuple[list[NodeDef], list[ConfigError]]:
    """Every node the project runs, and the problems found in the namespace mappings."""
    data = doc.data
    if not _needs_kedro(data):
        return [NodeDef(f"{n['namespace']}.{n['name']}" if n.get("namespace") else n["name"],
                        n["func"], n.get("inputs"), n.get("outputs"), tag_list(n.get("tags")),
                        ("nodes", i), n.get("namespace"), is_template=bool(n.get("template")))
                for i, n in enumerate(data["nodes"])], []
    with warnings.catch_warnings():  # Kedro's advice on dotted dataset names: not ours to give
        warnings.simplefilter("ignore", UserWarning)
        return _expand(doc)


def _expand(doc: Document) -> tuple[list[NodeDef], list[ConfigError]]:
    from kedro.pipeline import node as kedro_node

    data = doc.data
    errors: list[ConfigError] = []
    plain: list[NodeDef] = []
    for i, n in enumerate(data["nodes"]):
        name = n.get("name")
        if name is None:
            try:
                name = kedro_node(_stand_in(n["func"]), n.get("inputs"), n.get("outputs")).name
            except (ValueError, TypeError):
                name = n["func"]  # Kedro refuses the node: the name checks report why
        namespace = n.get("namespace")
        plain.append(NodeDef(f"{namespace}.{name}" if namespace else name, n["func"],
                             n.get("inputs"), n.get("outputs"), tag_list(n.get("tags")),
                             ("nodes", i), namespace, is_template=bool(n.get("template"))))
    copies: list[NodeDef] = []
    for pname, pdef in (data.get("pipelines") or {}).items():
        if isinstance(pdef, dict) and pdef.get("namespace"):
            made, problems = _namespaced(doc, pname, pdef, plain, kedro_node)
            copies.extend(made)
            errors.extend(problems)
    return plain + copies, errors


def selected_templates(pdef: Mapping[str, Any], plain: list[NodeDef]) -> list[NodeDef]:
    """The nodes a namespaced pipeline copies: by ``nodes``, else by ``tags``."""
    if pdef.get("nodes"):
        wanted = set(pdef["nodes"])
        return [n for n in plain if n.name in wanted]
    tags = set(tag_list(pdef.get("tags")))
    return [n for n in plain if tags & set(n.tags)]


def _namespaced(doc: Document, pname: str, pdef: Mapping[str, Any], plain: list[NodeDef],
                kedro_node: Any) -> tuple[list[NodeDef], list[ConfigError]]:
    from kedro.pipeline import Pipeline, pipeline

    templates = selected_templates(pdef, plain)
    named = {n.name for n in plain}
    if not templates or any(name not in named for name in pdef.get("nodes") or ()):
        return [], []  # the pipeline checks report the selection (a misspelt node: the root)
    try:
        built = {t.name: kedro_node(_stand_in(t.func), t.inputs, t.outputs,
                                    name=t.name.rsplit(".", 1)[-1] if t.namespace else t.name,
                                    namespace=t.namespace, tags=list(t.tags))
                 for t in templates}
        base = Pipeline(list(built.values()))
    except (ValueError, TypeError):
        return [], []  # the name and graph checks report why Kedro refuses these nodes
    namespace = pdef["namespace"]
    errors: list[ConfigError] = []
    maps = {kind: mapping_of(pdef.get(kind)) for kind in ("inputs", "outputs", "parameters")}
    free = sorted(n for n in base.inputs() if not is_param_input(n))
    outs = sorted(base.all_outputs())
    params = sorted(n for n in base.inputs() if n.startswith("params:"))

    def located(kind: str, key: str) -> KeyPath:
        value = pdef.get(kind)
        if isinstance(value, list):
            return ("pipelines", pname, kind, value.index(key))
        if isinstance(value, str):
            return ("pipelines", pname, kind)
        return ("pipelines", pname, kind, key)

    valid = {
        "inputs": (free, "a free input of the nodes it copies (Kedro maps only those)"),
        "outputs": (outs, "an output of the nodes it copies"),
        "parameters": (params, "a parameter the nodes it copies read"),
    }
    for kind, mapping in maps.items():
        options, what = valid[kind]
        for key in mapping:
            probe = key if kind != "parameters" or key.startswith("params:") else f"params:{key}"
            bases = {strip_transcoding(o) for o in options}
            if probe in options or (kind != "parameters" and probe in bases):
                continue
            errors.append(doc.error(
                f"pipeline '{pname}': {kind} '{key}' is not {what}", located(kind, key),
                key=isinstance(pdef.get(kind), dict), code="KMLC314",
                hint=did_you_mean(probe, options,
                                  f"valid here: {', '.join(options)}" if options else None)))
    if errors:
        return [], errors
    extra_tags = list(tag_list(pdef.get("tags"))) if pdef.get("nodes") else []
    try:
        copied = pipeline(base, namespace=namespace, inputs=maps["inputs"] or None,
                          outputs=maps["outputs"] or None,
                          parameters=maps["parameters"] or None, tags=extra_tags or None)
    except Exception as exc:  # Kedro's PipelineError and ValueError: report, never raise
        return [], [doc.error(f"pipeline '{pname}': Kedro refuses the namespace: {exc}",
                              ("pipelines", pname, "namespace"), code="KMLC314")]
    renamed: dict[str, KeyPath] = {}
    for kind, mapping in maps.items():
        for key, value in mapping.items():
            full = value if kind != "parameters" or value.startswith("params:") or (
                value == "parameters") else f"params:{value}"
            renamed[full] = located(kind, key)
    by_template = {f"{namespace}.{name}": t for name, t in
                   ((t.name, t) for t in templates)}
    made = []
    for copy in copied.nodes:
        template = by_template[copy.name]
        made.append(NodeDef(
            copy.name, template.func, _reshape(template.inputs, list(copy.inputs)),
            _reshape(template.outputs, list(copy.outputs)), tuple(sorted(copy.tags)),
            template.path, copy.namespace, pname, template.name,
            {n: p for n, p in renamed.items() if n in copy.inputs or n in copy.outputs}))
    return made, []
