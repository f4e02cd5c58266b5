"""Stage 5, checks: names, the graph, node functions and the model binding.

These run on a document that passed the JSON Schema. Each check yields every
problem it finds, located at the YAML that caused it, with "did you mean" where a
name is close to a valid one. Warnings (unused datasets and parameters) never fail
a run, only ``kmlc validate --strict``.
"""

from __future__ import annotations

import difflib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmlc.config.dataset_types import flavor_problem, type_problem
from kmlc.config.functions import FunctionImportError, import_function, static_signature
from kmlc.config.inference import inference_graph
from kmlc.config.kedro_forms import interpolation_problem
from kmlc.config.localpath import local_part
from kmlc.config.metric_keys import collisions, metric_writers
from kmlc.config.nodes import (
    NodeDef,
    expand_nodes,
    node_io,
    split_func,
    strip_transcoding,
    tag_list,
)
from kmlc.config.params import PARAMS_PREFIX, has_param, is_param_input, param_paths
from kmlc.config.shorthands import PATH_KEYS, shorthand
from kmlc.config.source import Document, KeyPath
from kmlc.config.sweep import candidate_nodes, check_sweep, inference_candidates
from kmlc.errors import BindingError, ConfigError, did_you_mean

__all__ = ["CheckResult", "run_checks"]



@dataclass
class CheckResult:
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)
    nodes: list[NodeDef] = field(default_factory=list)  # the nodes that run
    templates: list[NodeDef] = field(default_factory=list)  # `template: true`: copied only
    # dataset name -> (the factory pattern it matched, the entry Kedro resolved)
    factory_matches: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


def run_checks(doc: Document, root: Path, code_dirs: list[Path],
               expanded: tuple[list[NodeDef], list[ConfigError]] | None = None) -> CheckResult:
    """Run the semantic checks in order; later stages run only when earlier ones pass.

    ``expanded``: what ``expand_nodes(doc)`` returned, when the caller has it already.
    """
    result = CheckResult()
    _check_kedro_forms(doc, result)
    every, problems = expanded if expanded is not None else expand_nodes(doc)
    result.nodes = [n for n in every if not n.is_template]
    result.templates = [n for n in every if n.is_template]
    result.errors.extend(problems)
    _check_templates(doc, result)
    _check_names(doc, result)
    if not result.errors:
        _check_graph(doc, result)
        if any(e.code == "KMLC310" for e in result.errors):
            # the wiring is wrong: which dataset is unused follows from the fix, not the file
            result.warnings = [w for w in result.warnings
                               if w.code not in ("KMLC350", "KMLC352") or "factory" in w.message]
    if not result.errors:
        _check_metric_keys(doc, result)
    _check_paths(doc, root, result)
    _check_types(doc, code_dirs, result)
    _check_functions(doc, code_dirs, result)
    if not result.errors and "model" in doc.data:
        _check_binding(doc, result)
    if (doc.data.get("model") or {}).get("promote") is not None:
        _check_promote(doc, result)
    if doc.data.get("sweep") is not None:
        result.errors.extend(check_sweep(doc, result.nodes, result.factory_matches))
    if isinstance(doc.data.get("model"), dict):
        _check_requirements(doc, result)
    return result


def _check_requirements(doc: Document, result: CheckResult) -> None:
    """Each line of ``model.pip_requirements`` (a list) and ``extra_pip_requirements`` is
    a requirement pip reads: PEP 508, or a pip option, URL or path line."""
    model = doc.data["model"]
    named = [(key, i, line) for key in ("pip_requirements", "extra_pip_requirements")
             if isinstance(model.get(key), list)
             for i, line in enumerate(model[key])
             if isinstance(line, str) and not line.startswith(("-", ".", "/"))
             and "://" not in line]
    if not named:
        return  # packaging is imported only for a file that names requirements
    from packaging.requirements import InvalidRequirement, Requirement

    for key, i, line in named:
        try:
            Requirement(line)
        except InvalidRequirement as exc:
            result.errors.append(doc.error(
                f"'{line}' is not a requirement pip reads: {str(exc).splitlines()[0]}",
                ("model", key, i),
                code="KMLC513", hint="a name with an optional version, e.g. 'pyarrow>=15'"))


GATE_NAMES = ("metrics", "params")  # what a model.promote.when expression can read


def _check_promote(doc: Document, result: CheckResult) -> None:
    """``model.promote``: a registered name to promote in, one alias, a gate that parses."""
    import jinja2
    from jinja2 import meta
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    model = doc.data["model"]
    promote = model["promote"]
    path: KeyPath = ("model", "promote")
    if not model.get("registered_name"):
        result.errors.append(doc.error(
            "model.promote needs model.registered_name: versions are promoted within a "
            "registered model", (*path,), key=True, code="KMLC510",
            hint="add `registered_name: NAME` under model:"))
    if model.get("alias") is not None:
        result.errors.append(doc.error(
            "model.alias moves the alias after every run, model.promote only when the gate "
            "passes: set one of them", ("model", "alias"), key=True, code="KMLC511",
            hint="remove model.alias; model.promote.alias is the alias to move"))
    when = promote.get("when")
    if when is None:
        return
    env = ImmutableSandboxedEnvironment()
    try:
        env.compile_expression(when)
        names = meta.find_undeclared_variables(env.parse("{{ (" + when + ") }}"))
    except jinja2.TemplateSyntaxError as exc:
        result.errors.append(doc.error(
            f"the gate is not a valid expression: {exc.message}", (*path, "when"),
            code="KMLC512", hint="for example: metrics['accuracy'] >= 0.9"))
        return
    except (SyntaxError, RecursionError, MemoryError):
        # valid for Jinja, but nested past what Python compiles (each `and` nests once)
        result.errors.append(doc.error(
            "the gate is nested too deeply to compile (Python's limit on nested "
            "parentheses: about 200 `and`/`or` terms)", (*path, "when"), code="KMLC512",
            hint="fewer terms: compute the decision in a node, log it as one metric and "
                 "test that metric"))
        return
    for name in sorted(names - set(GATE_NAMES)):
        result.errors.append(doc.error(
            f"the gate reads '{name}', which is not defined: it can read "
            f"{' and '.join(GATE_NAMES)}", (*path, "when"), code="KMLC512",
            hint=did_you_mean(name, GATE_NAMES, "for example: metrics['accuracy'] >= 0.9")))


def _check_names(doc: Document, result: CheckResult) -> None:
    data = doc.data
    datasets: dict[str, Any] = data.get("datasets") or {}
    params = data.get("parameters") or {}
    nodes = result.nodes
    seen: dict[str, NodeDef] = {}
    producers: dict[str, int] = {}
    for i, node in enumerate(nodes):
        name = node.name
        if name in seen:
            first = seen[name]
            where = f"nodes[{first.path[1]}]" if first.pipeline is None else (
                f"a copy made by pipeline '{first.pipeline}'")
            result.errors.append(doc.error(
                f"node name '{name}' is already used by {where}",
                (*node.path, "name") if node.pipeline is None else ("pipelines", node.pipeline),
                code="KMLC301", hint="node names must be unique"))
        seen.setdefault(name, node)
        for out, suffix in node_io(node.outputs):
            base = strip_transcoding(out)
            if is_param_input(out):
                result.errors.append(doc.error(
                    f"'{out}' cannot be an output: parameters are read-only",
                    node.where("outputs", suffix, out), code="KMLC302"))
            elif base in producers:
                result.errors.append(doc.error(
                    f"dataset '{out}' is already produced by node "
                    f"'{nodes[producers[base]].name}'",
                    node.where("outputs", suffix, out), code="KMLC302",
                    hint="each dataset is produced by at most one node"))
            else:
                producers[base] = i
    produced = {out for n in nodes for out, _ in node_io(n.outputs)}
    transcoded = {strip_transcoding(name) for n in nodes for name in (
        *(x for x, _ in node_io(n.inputs)), *produced) if "@" in name}
    for node in nodes:
        for key in ("inputs", "outputs"):
            for name, suffix in node_io(getattr(node, key)):
                if name in transcoded:
                    result.errors.append(doc.error(
                        f"'{name}' is also used with transcoding ('{name}@...'): Kedro needs "
                        "the same dataset named the same way everywhere",
                        node.where(key, suffix, name), code="KMLC305",
                        hint=f"write '{name}@<format>' here too, with a `datasets:` entry for "
                        "each format"))
    factories = _Factories(doc, datasets, result)
    known = sorted({*(d for d in datasets if "{" not in d), *produced})
    known_params = param_paths(params)
    read_params: set[str] = set()
    reads_all = False
    consumed: set[str] = set()
    unknown: dict[str, list[tuple[NodeDef, KeyPath]]] = {}  # in file order
    for node in nodes:
        for name, suffix in node_io(node.inputs):
            path = node.where("inputs", suffix, name)
            if name == "parameters":
                reads_all = True
            elif name.startswith(PARAMS_PREFIX):
                dotted = name[len(PARAMS_PREFIX):]
                read_params.add(dotted)
                if not has_param(params, dotted):
                    hint = did_you_mean(dotted, known_params)
                    result.errors.append(doc.error(
                        f"parameter '{dotted}' is not defined in `parameters`", path,
                        code="KMLC304", hint=hint.replace("'", "'params:", 1) if hint else None))
            elif (name not in datasets and name not in produced
                  and not ("@" in name and strip_transcoding(name) in producers)
                  and not factories.match(name)):
                unknown.setdefault(name, []).append((node, path))
            consumed.add(name)
    for node in nodes:  # in file order: the factory lines of `kmlc validate` follow it
        for name, _ in node_io(node.outputs):
            if name not in datasets:
                factories.match(name)
    dropped = _dropped_outputs(nodes, datasets, consumed, result)
    roots: set[str] = set()  # dropped outputs an unknown input is a misspelling of
    for name, readers in unknown.items():
        close = difflib.get_close_matches(name, list(dropped), n=1)
        if close:  # the root is where one of the two is misspelt: said once
            out = close[0]
            maker, out_path = dropped[out]
            roots.add(out)
            if len(readers) > 1:  # read in several places: the output is the odd one
                names = ", ".join(f"'{n.name}'" for n, _ in readers)
                result.errors.append(doc.error(
                    f"output '{out}' of node '{maker.name}' is read by no node, while "
                    f"'{name}' is read by nodes {names} and made by none", out_path,
                    code="KMLC303", hint=f"did you mean '{name}'?"))
                continue
            hint = f"did you mean '{out}', the output of node '{maker.name}' that no node reads?"
        else:  # never a name its readers read already: the two are not one
            read = {n for reader, _ in readers for n, _ in node_io(reader.inputs)}
            hint = did_you_mean(name, [k for k in known if k not in read]) or (
                f"no dataset factory matches it: {', '.join(factories.patterns)}"
                if factories.patterns else
                "list it in the outputs of the node that makes it, or declare it under "
                "`datasets:`")
        if len(readers) > 1:  # one mistake, said once, at its first reader
            names = ", ".join(f"'{n.name}'" for n, _ in readers)
            result.errors.append(doc.error(
                f"input '{name}' of nodes {names} is not a declared dataset nor any node's "
                "output", readers[0][1], code="KMLC303", hint=hint))
            continue
        result.errors.append(doc.error(
            f"input '{name}' is not a declared dataset nor any node's output", readers[0][1],
            code="KMLC303", hint=hint))
    unmade = sorted(name for name in datasets if "{" not in name and name in consumed
                    and name not in produced)
    model = "model" in data
    for out, (maker, out_path) in dropped.items():
        if out in roots or (model and "inference" in maker.tags and "training" not in maker.tags):
            continue  # said above; or the answer of the model the file binds
        close = difflib.get_close_matches(out, unmade, n=1)
        near = difflib.get_close_matches(out, [n for n in unmade if _is_file(datasets[n])],
                                         n=1, cutoff=MISSPELT)
        if near:  # the readers would load whatever file an earlier run left there
            reading = [f"'{n.name}'" for n in nodes
                       if near[0] in {name for name, _ in node_io(n.inputs)}]
            result.errors.append(doc.error(
                f"output '{out}' of node '{maker.name}' is read by no node, while "
                f"'{near[0]}' ({datasets[near[0]]['filepath']}) is read by "
                f"node{'s' if len(reading) > 1 else ''} {', '.join(reading)} "
                "and made by none: they would load the file an earlier run left", out_path,
                code="KMLC303", hint=f"did you mean '{near[0]}'?"))
            continue
        copiers = sorted(pname for pname, pdef in (data.get("pipelines") or {}).items()
                         if isinstance(pdef, dict) and pdef.get("namespace")
                         and maker.name in (pdef.get("nodes") or ()))
        result.warnings.append(doc.error(
            f"output '{out}' of node '{maker.name}' is read by no node and kept nowhere: "
            "its value is dropped", out_path, code="KMLC352", severity="warning",
            hint=(f"did you mean '{close[0]}', a dataset that nodes read and no node makes?"
                  if close else
                  f"only its copies in {', '.join(copiers)} should run? mark node "
                  f"'{maker.name}' `template: true`" if copiers else
                  "declare it under `datasets:` to keep it, or remove the output")))
    for name in datasets:
        if "{" in name:
            if name not in factories.used:
                result.warnings.append(doc.error(
                    f"dataset factory '{name}' matches no dataset of any node",
                    ("datasets", name), key=True, code="KMLC350", severity="warning"))
            continue
        if name not in consumed and name not in produced:
            result.warnings.append(doc.error(
                f"dataset '{name}' is not used by any node", ("datasets", name), key=True,
                code="KMLC350", severity="warning"))
    if not reads_all:
        for key in params:
            if not any(p == key or p.startswith(key + ".") for p in read_params):
                result.warnings.append(doc.error(
                    f"parameter '{key}' is not read by any node", ("parameters", key), key=True,
                    code="KMLC351", severity="warning"))


#: how close a dropped output's name must be to a file dataset nodes read and none makes
#: for it to be that dataset misspelt (an error); a looser match is only suggested
MISSPELT = 0.8


def _is_file(config: Any) -> bool:
    return isinstance(config, dict) and isinstance(config.get("filepath"), str)


def _dropped_outputs(nodes: list[NodeDef], datasets: dict[str, Any],
                     consumed: set[str], result: CheckResult
                     ) -> dict[str, tuple[NodeDef, KeyPath]]:
    """The node outputs nothing reads and nothing keeps: in memory (no `datasets:` entry,
    no factory) and read by no node. Each with its node and where it is written."""
    read = {strip_transcoding(name) for name in consumed}
    out: dict[str, tuple[NodeDef, KeyPath]] = {}
    for node in nodes:
        for name, suffix in node_io(node.outputs):
            base = strip_transcoding(name)
            if (is_param_input(name) or name in datasets or base in read
                    or name in result.factory_matches):
                continue
            out.setdefault(name, (node, node.where("outputs", suffix, name)))
    return out


_RUNTIME = {"{default}": {"type": "kedro.io.MemoryDataset"}}  # Kedro's own default


class _Factories:
    """Kedro's dataset factory resolution (its ``CatalogConfigResolver``) over ``datasets:``.

    Kedro is imported only when the file declares a pattern; ``match`` records, for each
    name it resolves, the pattern and the resolved entry.
    """

    def __init__(self, doc: Document, datasets: dict[str, Any], result: CheckResult):
        self.result = result
        self.credentials: dict[str, Any] = {}
        self.used: set[str] = set()
        self.patterns: list[str] = []
        self.resolver: Any = None
        patterns = {name: cfg for name, cfg in datasets.items() if "{" in name}
        if not patterns:
            return
        # Kedro's resolver looks a pattern's `credentials:` name up as it reads the
        # pattern; the names are checked against the credentials file elsewhere
        # (KMLC121), so the resolver reads the entries without them and each match
        # gets its pattern's name back, for the catalog to look up
        self.credentials = {name: cfg["credentials"] for name, cfg in patterns.items()
                            if isinstance(cfg, dict) and "credentials" in cfg}
        patterns = {name: ({k: v for k, v in cfg.items() if k != "credentials"}
                           if isinstance(cfg, dict) else cfg)
                    for name, cfg in patterns.items()}
        from kedro.io.catalog_config_resolver import CatalogConfigResolver
        from kedro.io.core import DatasetError

        for name, cfg in list(patterns.items()):
            try:
                CatalogConfigResolver({name: cfg}, default_runtime_patterns=_RUNTIME)
            except DatasetError as exc:
                result.errors.append(doc.error(
                    f"dataset factory '{name}': {exc}", ("datasets", name), key=True,
                    code="KMLC315", hint="every {placeholder} of the entry must appear in its "
                    "name, e.g. \"{name}_csv\": {filepath: \"data/{name}.csv\"}"))
                del patterns[name]
                self.used.add(name)
        self.patterns = sorted(patterns)
        self.resolver = CatalogConfigResolver(patterns, default_runtime_patterns=_RUNTIME)

    def match(self, name: str) -> bool:
        if self.resolver is None:
            return False
        if name in self.result.factory_matches:
            return True
        pattern = self.resolver.match_dataset_pattern(name)
        if pattern is None:
            return False
        self.used.add(pattern)
        entry = self.resolver.resolve_pattern(name)
        if pattern in self.credentials:
            entry = {**entry, "credentials": self.credentials[pattern]}
        self.result.factory_matches[name] = (pattern, entry)
        return True


def _check_templates(doc: Document, result: CheckResult) -> None:
    """A template node that no namespaced pipeline copies would never run: refused."""
    copied = {n.template for n in result.nodes if n.template}
    namespaced = [p for p, d in (doc.data.get("pipelines") or {}).items()
                  if isinstance(d, dict) and d.get("namespace")]
    for node in result.templates:
        if node.name not in copied:
            result.errors.append(doc.error(
                f"node '{node.name}' is a template (`template: true`) but no namespaced "
                "pipeline copies it: it would never run", (*node.path, "template"), key=True,
                code="KMLC317", hint=(f"select it in the `nodes:` or `tags:` of one of: "
                                      f"{', '.join(namespaced)}" if namespaced else
                                      "add a pipeline with `namespace:` that selects it, or "
                                      "remove `template: true`")))


def _check_metric_keys(doc: Document, result: CheckResult) -> None:
    """Two datasets that would write one MLflow key in one run: refused, both located."""

    writers = metric_writers(result.nodes, doc.data.get("datasets") or {},
                             result.factory_matches)
    for first, second, label in collisions(writers):
        file, line, column = doc.where(first.where, key=first.where[0] in ("datasets", "pipelines"))
        result.errors.append(doc.error(
            f"metric datasets '{first.dataset}' and '{second.dataset}' would both write "
            f"{label} in one run (the first is at {file}:{line}:{column})", second.where,
            key=second.where[0] in ("datasets", "pipelines"), code="KMLC316",
            hint="give one its own `key:` (mlflow.metric) or `prefix:` (mlflow.metrics); "
                 "a namespaced copy's metrics are logged under its namespace unless its "
                 "dataset sets one"))


def _check_kedro_forms(doc: Document, result: CheckResult) -> None:
    """Kedro's ``${...}`` interpolation is refused where it is written, with kmlc's form."""

    def walk(value: Any, path: KeyPath) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(sub, (*path, key))
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                walk(sub, (*path, i))
        elif isinstance(value, str) and "${" in value:
            problem = interpolation_problem(value)
            if problem:
                result.errors.append(doc.error(problem[0], path, code="KMLC206",
                                               hint=problem[1]))

    walk({k: v for k, v in doc.data.items() if k != "environments"}, ())


def _check_graph(doc: Document, result: CheckResult) -> None:
    nodes = result.nodes
    producer = {strip_transcoding(out): i for i, n in enumerate(nodes)
                for out, _ in node_io(n.outputs)}
    deps = {i: sorted({producer[strip_transcoding(name)] for name, _ in node_io(n.inputs)
                       if strip_transcoding(name) in producer})
            for i, n in enumerate(nodes)}
    state: dict[int, int] = {}
    stack: list[int] = []

    def visit(i: int) -> list[int] | None:
        state[i] = 1
        stack.append(i)
        for j in deps[i]:
            if state.get(j) == 1:
                return [*stack[stack.index(j):], j]
            if j not in state:
                found = visit(j)
                if found:
                    return found
        stack.pop()
        state[i] = 2
        return None

    for i in range(len(nodes)):
        if i not in state:
            cycle = visit(i)
            if cycle:
                chain = " -> ".join(nodes[j].name for j in reversed(cycle))
                result.errors.append(doc.error(
                    f"the nodes form a cycle: {chain}", (*nodes[cycle[0]].path, "inputs"),
                    code="KMLC310"))
                break
    tags = {t for n in (*nodes, *result.templates) for t in n.tags}
    names = [n.name for n in nodes]
    templates = [n.name for n in (*nodes, *result.templates) if n.pipeline is None]
    for pname, pdef in (doc.data.get("pipelines") or {}).items():
        namespaced = bool(pdef.get("namespace"))
        selected = 0
        if not (namespaced and pdef.get("nodes")):  # there, `tags` are tags to add
            for j, tag in enumerate(tag_list(pdef.get("tags"))):
                if tag in tags:
                    selected += 1
                else:
                    at: KeyPath = ("pipelines", pname, "tags") if isinstance(
                        pdef["tags"], str) else ("pipelines", pname, "tags", j)
                    result.errors.append(doc.error(
                        f"no node has tag '{tag}'", at,
                        code="KMLC312", hint=did_you_mean(tag, tags)))
        for j, node in enumerate(pdef.get("nodes") or []):
            if node in (templates if namespaced else names):
                selected += 1
            else:
                result.errors.append(doc.error(
                    f"no node is named '{node}'" + (" in `nodes`" if namespaced else ""),
                    ("pipelines", pname, "nodes", j), code="KMLC312",
                    hint=did_you_mean(node, templates if namespaced else names)))
                if namespaced:  # no copy was made: its parameters are unread because of this
                    unread = f"parameters.{pdef['namespace']}"
                    result.warnings = [w for w in result.warnings
                                       if not (w.code == "KMLC351" and w.path == unread)]
        if not selected and not pdef.get("tags") and not pdef.get("nodes"):
            result.errors.append(doc.error(
                f"pipeline '{pname}' selects no node", ("pipelines", pname), code="KMLC311",
                hint="select the nodes with `nodes: [...]` or `tags: [...]`"))
    known = {"__default__", *(doc.data.get("pipelines") or {}), *({"training", "inference"} & tags)}
    disabled = (doc.data.get("tracking") or {}).get("disable_for") or []
    for j, pname in enumerate(disabled):
        if pname not in known:
            result.warnings.append(doc.error(
                f"pipeline '{pname}' does not exist", ("tracking", "disable_for", j),
                code="KMLC313", severity="warning", hint=did_you_mean(pname, known)))


_OUTSIDE_WHAT = {"code": "code folder", "credentials": "credentials file",
                 "logging": "logging config file"}


def _check_outside(doc: Document, root: Path, result: CheckResult) -> None:
    """A warning for each file kmlc reads besides datasets (``code:``, ``credentials:``,
    ``logging:``) that lies outside the project folder."""
    entries: list[tuple[KeyPath, Any]] = [(("credentials",), doc.data.get("credentials")),
                                          (("logging",), doc.data.get("logging"))]
    code = doc.data.get("code")
    if isinstance(code, list):
        entries += [(("code", i), entry) for i, entry in enumerate(code)]
    for path, value in entries:
        if not isinstance(value, str) or "\0" in value:
            continue
        try:
            target = (root / value).resolve()
        except (OSError, ValueError, RuntimeError):
            continue  # reported where the file is read
        if not target.is_relative_to(root):
            how = "is" if Path(value).is_absolute() else "resolves"
            result.warnings.append(doc.error(
                f"{_OUTSIDE_WHAT[str(path[0])]} '{value}' {how} outside the project folder",
                path, code="KMLC323", severity="warning",
                hint="kmlc reads it from there; a run elsewhere (a Dask worker, another "
                     "machine, a copy of the project) will not find it"))


def _check_paths(doc: Document, root: Path, result: CheckResult) -> None:
    resolved_root = root.resolve()
    logging_file = doc.data.get("logging")
    if isinstance(logging_file, str) and not (resolved_root / logging_file).is_file():
        result.errors.append(doc.error(
            f"logging config file '{logging_file}' does not exist", ("logging",),
            code="KMLC322", hint="a path relative to this file, or a dictConfig mapping"))
    _check_outside(doc, resolved_root, result)
    _check_store_folders(doc, resolved_root, result)
    for name, cfg in (doc.data.get("datasets") or {}).items():
        for key in PATH_KEYS:
            value = cfg.get(key)
            if not isinstance(value, str):
                continue
            problem = _path_problem(value, resolved_root, bool(cfg.get("allow_outside")))
            if problem:
                result.errors.append(doc.error(
                    problem, ("datasets", name, key), code="KMLC320",
                    hint="use a path inside the project, or set `allow_outside: true` "
                    "on this dataset"))
    track_path = ("model", "artifact_path")
    artifact_path = (doc.data.get("model") or {}).get("artifact_path")
    if isinstance(artifact_path, str) and ".." in artifact_path.split("/"):
        result.errors.append(doc.error("artifact_path must not contain '..'", track_path,
                                       code="KMLC321"))
    for name, cfg in (doc.data.get("datasets") or {}).items():
        track = cfg.get("track")
        sub = track.get("artifact_path") if isinstance(track, dict) else cfg.get("artifact_path")
        if isinstance(sub, str) and (".." in sub.split("/") or sub.startswith("/")):
            where: KeyPath = (("datasets", name, "track", "artifact_path")
                              if isinstance(track, dict) else ("datasets", name, "artifact_path"))
            result.errors.append(doc.error("artifact_path must be a relative path without '..'",
                                           where, code="KMLC321"))


_STORE_ROLES = {"uri": "tracking store", "registry_uri": "model registry"}


def _check_store_folders(doc: Document, root: Path, result: CheckResult) -> None:
    """A warning for a sqlite store or registry of the file whose folder does not exist:
    ``kmlc run`` refuses it before any node runs (it creates the database file, never a
    folder), and here the setting can be named by its line."""
    tracking = doc.data.get("tracking")
    if not isinstance(tracking, dict):
        return
    for key, role in _STORE_ROLES.items():
        value = tracking.get(key)
        if not isinstance(value, str) or not value.startswith("sqlite:///"):
            continue
        local = value[len("sqlite:///"):]
        if not local or local == ":memory:" or "\0" in local:
            continue
        try:
            folder = (root / local).resolve().parent
            missing = not folder.is_dir()
        except (OSError, ValueError, RuntimeError):
            continue  # refused, with the reason, where the store is opened
        if missing:
            result.warnings.append(doc.error(
                f"the {role}'s folder {folder} does not exist: `kmlc run` refuses it "
                "before any node runs", ("tracking", key), code="KMLC324",
                severity="warning",
                hint="create the folder, or correct the path; a relative one is read from "
                     "this file's folder"))


def _path_problem(value: str, root: Path, allow_outside: bool) -> str | None:
    """Why the dataset path ``value`` is refused, or ``None``; remote URLs are never
    checked, local ones (``file://``, ``FILE://``, ``local://``...: ``local_part``) are."""
    local = local_part(value)
    if local is None:
        return None
    if "\0" in local:
        return f"{json.dumps(value)} contains a NUL character"
    if allow_outside:
        return None
    try:
        target = (root / local).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        return f"{json.dumps(value)} is not a valid path: {exc}"
    if target.is_relative_to(root):
        return None
    if Path(local).is_absolute():
        return f"'{value}' is outside the project folder"
    return f"'{value}' resolves outside the project folder"


def _check_types(doc: Document, code_dirs: list[Path], result: CheckResult) -> None:
    for name, cfg in (doc.data.get("datasets") or {}).items():
        if "{" in cfg["type"]:
            continue  # a factory's placeholder: checked once resolved, at run
        problem = type_problem(cfg["type"], code_dirs)
        if problem:
            message, hint = problem
            result.errors.append(doc.error(message, ("datasets", name, "type"), code="KMLC331",
                                           hint=hint))
        kind = shorthand(cfg["type"])
        flavor = cfg.get("flavor") if kind is not None and kind.flavor else None
        problem = flavor_problem(flavor) if isinstance(flavor, str) else None
        if problem:
            message, hint = problem
            result.errors.append(doc.error(message, ("datasets", name, "flavor"),
                                           code="KMLC332", hint=hint))


def _check_functions(doc: Document, code_dirs: list[Path], result: CheckResult) -> None:
    modules: dict[str, Any] = {}  # each module's source is read once for all its nodes
    # a module that cannot be imported is one error, at its first node, naming every node
    broken: dict[str, tuple[FunctionImportError, int, list[str]]] = {}
    for i, node in enumerate(doc.data["nodes"]):
        path = ("nodes", i, "func")
        inputs = node.get("inputs")
        module = split_func(node["func"])[0]
        label = str(node.get("name") or node["func"])  # a name is optional (Kedro's default)
        if module in broken:
            broken[module][2].append(label)
            continue
        signature = static_signature(node["func"], code_dirs, modules)
        if signature is not None and _bind_error(signature, inputs) is None:
            continue  # read from the source: the module was not imported
        try:
            func = import_function(node["func"], code_dirs)
        except FunctionImportError as exc:
            if exc.code in ("KMLC401", "KMLC402"):  # the module, not this function
                broken[module] = (exc, i, [label])
            else:
                result.errors.append(doc.error(exc.message, path, code=exc.code, hint=exc.hint))
            continue
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            continue
        result.errors.extend(_signature_errors(doc, i, node, signature))
    for failure, first, names in broken.values():
        message = failure.message
        if len(names) > 1:
            message += f"; nodes using it: {', '.join(names)}"
        result.errors.append(doc.error(message, ("nodes", first, "func"), code=failure.code,
                                       hint=failure.hint))


def _signature_errors(doc: Document, i: int, node: dict[str, Any],
                      signature: inspect.Signature) -> list[ConfigError]:
    """Why node ``i``'s inputs do not fit its function, unexpected argument names first."""
    inputs = node.get("inputs")
    error = _bind_error(signature, inputs)
    if error is None:
        return []
    params = signature.parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if isinstance(inputs, dict) and not takes_any:
        named = [n for n, p in params.items()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unexpected = [key for key in inputs if key not in named]
        if unexpected:
            free = [n for n in named if n not in inputs]
            required = [n for n in free if params[n].default is params[n].empty]
            only = (f"did you mean '{required[0]}'?"
                    if len(unexpected) == 1 and len(required) == 1 else None)
            return [doc.error(f"{node['func']}{signature} has no argument '{key}'",
                              ("nodes", i, "inputs", key), key=True, code="KMLC405",
                              hint=did_you_mean(key, free) or only)
                    for key in unexpected]
    count = len(node_io(inputs))
    declared = (f"inputs {sorted(inputs)}" if isinstance(inputs, dict)
                else f"{count} input{'s' if count != 1 else ''}")
    return [doc.error(f"{node['func']}{signature} does not accept the {declared}: {error}",
                      ("nodes", i, "inputs") if inputs is not None else ("nodes", i, "func"),
                      code="KMLC405")]


def _bind_error(signature: inspect.Signature, inputs: Any) -> TypeError | None:
    """Why a node's inputs (a list, or a mapping of argument names) do not fit ``signature``."""
    try:
        if isinstance(inputs, dict):
            signature.bind(**dict.fromkeys(inputs))
        else:
            signature.bind(*[None] * len(node_io(inputs)))
    except TypeError as exc:
        return exc
    return None


def _check_binding(doc: Document, result: CheckResult) -> None:
    """The model binding, located. When candidates of ``sweep:`` have inference nodes of
    their own, the model is bound per candidate (the shared inference nodes and that
    candidate's copies): each binding is checked, a problem of one candidate's said so."""
    sweep = doc.data.get("sweep")
    candidates = [c for c in (sweep.get("candidates") or []) if isinstance(c, str)] if (
        isinstance(sweep, dict)) else []
    by_candidate: dict[str | None, list[tuple[str, KeyPath, str | None, str]]] = {
        None: _binding_errors(doc, result, result.nodes)}
    if inference_candidates(result.nodes, candidates):
        by_candidate = {c: _binding_errors(doc, result,
                                           candidate_nodes(result.nodes, candidates, c))
                        for c in candidates}
    seen: set[tuple[str, KeyPath]] = set()
    for candidate, found in by_candidate.items():
        for message, path, hint, code in found:
            if (message, path) in seen:
                continue
            seen.add((message, path))
            if candidate is not None and not all(
                    any(other[:2] == (message, path) for other in others)
                    for others in by_candidate.values()):
                message = f"candidate '{candidate}': {message}"
            line, column = doc.locate(path)
            result.errors.append(BindingError(message, file=doc.file, line=line,
                                              column=column, key_path=path, code=code,
                                              hint=hint))


def _binding_errors(doc: Document, result: CheckResult, nodes: list[NodeDef]
                    ) -> list[tuple[str, KeyPath, str | None, str]]:
    """The model binding of ``nodes``: the inference graph (``config/inference.py``)."""
    data = doc.data
    model_input = data["model"]["input"]
    datasets: dict[str, Any] = data.get("datasets") or {}
    graph = inference_graph(nodes, model_input)
    errors: list[tuple[str, KeyPath, str | None, str]] = []

    def error(message: str, path: KeyPath, hint: str | None = None, code: str = "KMLC501") -> None:
        errors.append((message, path, hint, code))

    if not graph.has_training:
        error("no node is tagged 'training'", ("model",), "tag the training nodes [training]",
              "KMLC501")
    if not graph.nodes:
        error("no node is tagged 'inference'", ("model",), "tag the inference nodes [inference]",
              "KMLC501")
    bound = data["model"].get("pipeline", "training")
    named = sorted(data.get("pipelines") or {})
    if bound != "training" and bound not in named:
        error(f"model.pipeline '{bound}' is not a pipeline: name one under `pipelines:` (its "
              "run logs the model) or leave it out for `training`", ("model", "pipeline"),
              did_you_mean(bound, named, f"add `{bound}: {{tags: [training]}}` under "
                           "pipelines:"), "KMLC506")
    if not graph.has_training or not graph.nodes:
        return errors
    # a cycle among the inference nodes is one among all nodes: _check_graph reported it
    # training need not read it: kedro-mlflow's input_name may be data only inference sees
    # (the signature and example then come from the dataset as the catalog loads it)
    if model_input not in graph.inputs:
        error(f"model.input '{model_input}' is not an input of the inference pipeline",
              ("model", "input"), did_you_mean(model_input, graph.inputs), "KMLC502")
    train_io = graph.training_outputs | graph.training_inputs
    for name in graph.needed:
        where = (*graph.readers(name)[0].path, "inputs")
        if name not in train_io:
            error(f"inference input '{name}' is neither read nor written by the training "
                  "pipeline", where, "every inference input but model.input must be a "
                  "persisted dataset that training reads or writes", "KMLC503")
            continue
        cfg = datasets.get(name) or result.factory_matches.get(name, ("", None))[1]
        kind = shorthand(cfg.get("type")) if cfg is not None else None
        if cfg is None or not any(k in cfg for k in PATH_KEYS) or (
                kind is not None and kind.tracking):
            error(f"inference input '{name}' must be persisted to a file dataset to be packed "
                  "into the model", ("datasets", name) if name in datasets else where,
                  f"declare '{name}' in `datasets` with a type and a filepath, "
                  "e.g. pickle.PickleDataset", "KMLC504")
    if len(graph.free_outputs) != 1:
        found = ", ".join(graph.free_outputs) if graph.free_outputs else "none"
        error(f"the inference pipeline must have exactly one free output, found: {found}",
              ("model",), "the model returns the one output no inference node reads", "KMLC505")
    return errors
