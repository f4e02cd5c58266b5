"""Import stage 3: a loaded Kedro project -> the ``mlproject.yml`` document.

Nodes come from the registered ``Pipeline`` objects (names, namespaces, the shape of
their inputs and outputs as the node was built), datasets and parameters from the
resolved config, ``tracking:`` from ``mlflow.yml`` and ``model:`` from a
``pipeline_ml_factory`` result, recognised by its attributes (``training``,
``inference``, ``input_name``, ``kpm_kwargs``, ``log_model_kwargs``).
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmlc.config.nodes import io_shape
from kmlc.importer.datasets import convert_dataset
from kmlc.importer.kedro_project import KedroImportError, KedroProject
from kmlc.importer.lambdas import LAMBDA_DIR, LAMBDA_MODULE, function_name, lambda_def
from kmlc.importer.tracking import convert_tracking

__all__ = ["Conversion", "Unconverted", "convert_project", "is_pipeline_ml"]

KeyPath = tuple[str | int, ...]
_BOUND = ("training", "inference")


@dataclass(frozen=True)
class Unconverted:
    """One thing the import could not carry over: where it is in Kedro, and what to do."""

    where: str
    what: str
    todo: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}; {self.todo}"


@dataclass
class Conversion:
    """The document to write, comments per key path, and what was left behind."""

    document: dict[str, Any]
    comments: dict[KeyPath, str] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)
    unconverted: list[Unconverted] = field(default_factory=list)
    # lambda nodes copied as functions: name -> (its ``def``, where it was copied from)
    lambdas: dict[str, tuple[str, str]] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)  # Kedro's node name -> kmlc's


def is_pipeline_ml(pipeline: Any) -> bool:
    """Whether ``pipeline`` is a kedro-mlflow ``PipelineML`` (by its attributes)."""
    return (all(hasattr(pipeline, a) for a in ("training", "inference", "input_name"))
            and (hasattr(pipeline, "log_model_kwargs") or hasattr(pipeline, "kpm_kwargs")))


def convert_project(project: KedroProject, output_dir: Path,
                    pipeline_map: Mapping[str, str] | None = None) -> Conversion:
    """Build the kmlc document of ``project`` for a file written in ``output_dir``."""
    wanted = dict(pipeline_map or {})  # kmlc name -> Kedro name
    by_kedro = {kedro: kmlc for kmlc, kedro in wanted.items()}
    for kmlc, kedro in wanted.items():
        if kedro not in project.pipelines:
            _raise_unknown(project, kmlc, kedro)

    def rename(kedro: str) -> str | None:
        if kedro in by_kedro:
            return by_kedro[kedro]
        return None if kedro in wanted else kedro

    conv = Conversion(document={})
    doc = conv.document
    registry = _registry_file(project)
    doc["version"] = 1
    doc["name"] = project.package_name
    doc["code"] = [_rel(project.source_dir, output_dir)]
    conv.sections["version"] = f"imported from the Kedro project {project.project_name!r} " \
                            f"(environment {project.env!r}) by `kmlc import-kedro`"

    if project.mlflow:
        tracking, moved, problems = convert_tracking(project.mlflow, rename)
        mlflow_file = project.describe("mlflow")
        for key, what, todo in problems:
            conv.unconverted.append(Unconverted(f"{mlflow_file}: {key}", what, todo))
        if tracking:
            doc["tracking"] = tracking
            conv.sections["tracking"] = f"from {mlflow_file}"
            for kmlc_path, kedro_path in moved.items():
                _comment(conv, project, "mlflow", kedro_path, ("tracking", *kmlc_path))

    for problem in project.problems:
        conv.unconverted.append(Unconverted(*problem))

    if project.parameters:
        doc["parameters"] = _in_file_order(project, "parameters", project.parameters)
        conv.sections["parameters"] = f"from {project.describe('parameters')}"
        for (kind, path), _ in project.interpolations.items():
            if kind == "parameters":
                _comment(conv, project, "parameters", path, ("parameters", *path))

    for (kind, path), raw in project.interpolations.items():
        if "runtime_params:" in raw and kind in ("parameters", "catalog"):
            dotted = ".".join(str(p) for p in path)
            todo = (f"override it per run with `kmlc run --params {dotted}=VALUE`"
                    if kind == "parameters" else
                    "make it a parameter and write `{{ params.NAME }}` in the dataset")
            conv.unconverted.append(Unconverted(
                project.origin(kind, str(path[0])), f"{dotted}: '{raw}' was written as its "
                "value without runtime parameters", todo))

    _datasets(conv, project, output_dir)
    _nodes_and_pipelines(conv, project, rename, registry)
    _hooks(conv, project)
    return conv


def _raise_unknown(project: KedroProject, kmlc: str, kedro: str) -> None:

    known = ", ".join(sorted(project.pipelines))
    raise KedroImportError(f"--pipelines {kmlc}={kedro}: Kedro has no pipeline '{kedro}'",
                           hint=f"registered: {known}")


def _comment(conv: Conversion, project: KedroProject, kind: str, kedro_path: KeyPath,
             kmlc_path: KeyPath) -> None:
    for (k, path), raw in project.interpolations.items():
        if k == kind and path[:len(kedro_path)] == kedro_path:
            conv.comments[(*kmlc_path, *path[len(kedro_path):])] = f"Kedro: {raw}"


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def _in_file_order(project: KedroProject, kind: str, values: Mapping[str, Any]
                   ) -> dict[str, Any]:
    """``values`` (top-level keys of one config kind) in the order the files write them.

    Kedro's config loader merges its files in set order, which changes from process to
    process (string hashing): two imports of one project must write the same bytes."""
    files = {file: index for index, file in enumerate(project.files.get(kind, []))}

    def place(key: str) -> tuple[int, int, str]:
        found = project.origins.get((kind, str(key)))
        if found is None:
            return (len(files), 0, str(key))
        return (files.get(found.file, len(files)), found.line, str(key))

    return {key: values[key] for key in sorted(values, key=place)}


def _datasets(conv: Conversion, project: KedroProject, output_dir: Path) -> None:
    datasets: dict[str, Any] = {}
    uses_credentials: str | None = None  # where the first dataset naming credentials is
    for name, config in _in_file_order(project, "catalog", project.catalog).items():
        where = project.origin("catalog", name)
        if not isinstance(config, Mapping):
            conv.unconverted.append(Unconverted(where, f"dataset '{name}' is not a mapping",
                                                "declare it by hand"))
            continue
        result = convert_dataset(name, dict(config))
        for what, todo in result.problems:
            conv.unconverted.append(Unconverted(where, what, todo))
        if result.entry is None:
            continue
        entry = result.entry
        for key in ("filepath", "path"):
            value = entry.get(key)
            if not isinstance(value, str) or "://" in value:
                continue
            if not Path(value).is_absolute() and output_dir.resolve() != project.path:
                entry[key] = value = _rel(project.path / value, output_dir)
            if not (output_dir / value).resolve().is_relative_to(output_dir.resolve()):
                # the file Kedro reads lies outside this file's folder (written elsewhere
                # with -o, or an absolute path): say so, as kmlc asks (else KMLC320)
                entry["allow_outside"] = True
                conv.comments[("datasets", name, "allow_outside")] = (
                    "the Kedro project's file, outside this file's folder")
        if "credentials" in entry and uses_credentials is None:
            uses_credentials = f"{where}: dataset '{name}'"
        datasets[name] = entry
        for kmlc_sub, kedro_sub in result.moved.items():
            _comment(conv, project, "catalog", (name, *kedro_sub), ("datasets", name, *kmlc_sub))
    if uses_credentials:
        if project.credentials_file is not None:
            conv.document["credentials"] = _rel(project.credentials_file, output_dir)
        else:
            conv.unconverted.append(Unconverted(
                uses_credentials, f"uses `credentials:` but environment '{project.env}' has "
                "no credentials file", "set `credentials:` to a Kedro-style credentials file"))
    conv.document["datasets"] = datasets
    conv.sections["datasets"] = f"from {project.describe('catalog')} (resolved)"


def _function_path(func: Any) -> str | None:
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or not qualname or "<" in qualname or "." in qualname:
        return None
    if getattr(sys.modules.get(module), qualname, None) is not func:
        return None
    return f"{module}.{qualname}"


def _place(func: Any, project: KedroProject) -> str:
    target = getattr(func, "func", func)  # functools.partial
    try:
        file = Path(inspect.getsourcefile(target) or "")
        line = inspect.getsourcelines(target)[1]
        return f"{_rel(file, project.path)}:{line}"
    except (TypeError, OSError):
        return repr(func)


def _nodes_and_pipelines(conv: Conversion, project: KedroProject, rename: Any,
                         registry: str) -> None:
    from kedro.pipeline import Pipeline

    ordered = sorted(project.pipelines, key=lambda n: n != "__default__")
    nodes: dict[str, Any] = {}
    extra_tags: dict[str, set[str]] = {}
    members: dict[str, list[str]] = {}
    bound = [name for name in ordered if is_pipeline_ml(project.pipelines[name])]
    # one binding registered under several names (`"training": ml, "__default__": ml`) is
    # one model, bound under the project's own name for it rather than __default__
    model_from = next((name for name in bound if name != "__default__"),
                      bound[0] if bound else None)
    model_pipe = project.pipelines[model_from] if model_from else None

    def take(node: Any) -> None:
        seen = nodes.get(node.name)
        if seen is None:
            nodes[node.name] = node
        elif seen is not node and (seen.func, seen.inputs, seen.outputs) != (
                node.func, node.inputs, node.outputs):
            conv.unconverted.append(Unconverted(
                _place(node.func, project), f"two different nodes are named '{node.name}'",
                "name them apart in the Kedro pipelines; the first one was imported"))

    for kedro_name in ordered:
        pipe = project.pipelines[kedro_name]
        kmlc_name = rename(kedro_name)
        if is_pipeline_ml(pipe):
            if kedro_name == model_from:
                _model(conv, pipe, registry)
                for tag, part in (("training", pipe.training), ("inference", pipe.inference)):
                    for node in part.nodes:
                        take(node)
                        extra_tags.setdefault(node.name, set()).add(tag)
            elif pipe is not model_pipe:
                conv.unconverted.append(Unconverted(
                    registry, f"pipeline '{kedro_name}' is a second PipelineML",
                    "kmlc binds one training pipeline to one inference pipeline; "
                    f"'{model_from}' was used"))
        for node in pipe.nodes:
            take(node)
        if kmlc_name is None:
            continue
        members[kmlc_name] = [n.name for n in pipe.nodes]
        if is_pipeline_ml(pipe) and kmlc_name != "training" and kedro_name == model_from:
            # the bound pipeline keeps the project's name (its hooks may check it):
            # `kmlc run NAME` logs the model, as `kedro run -p NAME` did
            conv.document["model"]["pipeline"] = kmlc_name
        elif kmlc_name in _BOUND:
            for name in members[kmlc_name]:
                extra_tags.setdefault(name, set()).add(kmlc_name)

    try:
        order = [n.name for n in Pipeline(list(nodes.values())).nodes]
    except Exception:  # a graph Kedro refuses as a whole keeps the registry's order
        order = list(nodes)
    entries, converted = [], set()
    for name in order:
        entry = _node_entry(conv, project, nodes[name], extra_tags.get(name, set()))
        if entry is not None:
            entries.append(entry)
            converted.add(name)  # Kedro's full name, as `pipelines:` selects it
            if name in conv.renamed:
                conv.comments[("nodes", len(entries) - 1, "name")] = (
                    f"Kedro: {nodes[name].name}; the lambda is copied into "
                    f"{LAMBDA_DIR}/{LAMBDA_MODULE}.py")
            elif getattr(nodes[name], "_name", None) is None:
                conv.comments[("nodes", len(entries) - 1, "name")] = "name generated by Kedro"
    conv.document["nodes"] = entries
    conv.sections["nodes"] = f"from the pipelines registered in {registry}"
    if conv.lambdas:
        conv.document["code"] = [*conv.document.get("code", []), LAMBDA_DIR]
    everything = {conv.renamed.get(n, n) for n in converted}
    model = conv.document.get("model", {})
    pipelines: dict[str, Any] = {}
    for kmlc_name, names in members.items():
        chosen = [conv.renamed.get(n, n) for n in names if n in converted]
        if kmlc_name == "__default__" and set(chosen) == everything:
            if model.get("pipeline") == "__default__":
                del model["pipeline"]  # its nodes carry the training and inference tags
            continue
        if kmlc_name in _BOUND:
            continue  # the tags say it
        if kmlc_name == "__default__":
            kmlc_name = "kedro_default"
            if model.get("pipeline") == "__default__":
                model["pipeline"] = kmlc_name  # the bound pipeline, under its written name
            conv.unconverted.append(Unconverted(
                registry, "Kedro's __default__ pipeline leaves some nodes out; kmlc's "
                "__default__ runs every node", "run `kmlc run kedro_default` instead"))
        if chosen:
            pipelines[kmlc_name] = {"nodes": chosen}
        else:
            conv.unconverted.append(Unconverted(
                registry, f"pipeline '{kmlc_name}' was left out: none of its nodes could be "
                "converted", "convert its nodes (see above), then add it under `pipelines:`"))
    if pipelines:
        conv.document["pipelines"] = pipelines


def _node_entry(conv: Conversion, project: KedroProject, node: Any, extra: set[str]
                ) -> dict[str, Any] | None:
    func_path = _function_path(node.func)
    name, namespace = node.name, node.namespace
    if namespace and name.startswith(f"{namespace}."):
        name = name[len(namespace) + 1:]  # `namespace:` prefixes it again, as in Kedro
    if func_path is None and getattr(node.func, "__name__", None) == "<lambda>":
        try:
            copied = function_name(node.name)
            text = lambda_def(node.func, copied)
        except ValueError as exc:
            conv.unconverted.append(Unconverted(
                _place(node.func, project), f"node '{node.name}': a lambda that cannot be "
                f"copied ({exc})", "define it as a plain function in a module under "
                f"{project.source_dir.name}/ and build the node from it"))
            return None
        conv.lambdas[copied] = (text, _place(node.func, project))
        func_path = f"{LAMBDA_MODULE}.{copied}"
        kmlc_name = name.replace("<lambda>", "lambda")  # `<>` is no part of a kmlc name
        if kmlc_name != name:
            conv.renamed[node.name] = node.name.replace("<lambda>", "lambda")
            name = kmlc_name
    if func_path is None:
        conv.unconverted.append(Unconverted(
            _place(node.func, project),
            f"node '{node.name}': its function is not a module-level function "
            f"({node.func!r})", "define it as a plain function in a module under "
            f"{project.source_dir.name}/ and build the node from it"))
        return None
    entry: dict[str, Any] = {"name": name, "func": func_path}
    if namespace:
        entry["namespace"] = namespace
    inputs = io_shape(getattr(node, "_inputs", node.inputs))
    outputs = io_shape(getattr(node, "_outputs", node.outputs))
    if inputs:
        entry["inputs"] = inputs
    if outputs:
        entry["outputs"] = outputs
    tags = sorted(set(node.tags) | extra)
    if tags:
        entry["tags"] = tags
    if getattr(node, "confirms", None):
        conv.unconverted.append(Unconverted(
            _place(node.func, project), f"node '{node.name}': confirms={node.confirms!r} is "
            "not converted", "kmlc has no dataset confirmation; confirm in a hook"))
    return entry


def _model(conv: Conversion, pipe: Any, registry: str) -> None:
    model: dict[str, Any] = {"input": pipe.input_name}
    kwargs = dict(getattr(pipe, "log_model_kwargs", None) or {})
    # kedro-mlflow 2 reads MLflow 2's `artifact_path` (what kedro-mlflow 0.x projects
    # wrote) as the model's `name`, which defaults to "model"
    name, path = kwargs.pop("name", None), kwargs.pop("artifact_path", None)
    artifact = path if path and name in (None, "model") else name
    if artifact and artifact != "model":
        model["artifact_path"] = str(artifact)
    signature = kwargs.pop("signature", "auto")
    if signature is None:
        model["signature"] = "none"
    elif signature != "auto":
        conv.unconverted.append(Unconverted(
            registry, "log_model_kwargs.signature (a fixed signature) is not converted",
            "kmlc infers input and output schemas (`signature: auto`)"))
    registered = kwargs.pop("registered_model_name", None)
    if registered:
        model["registered_name"] = str(registered)
    example = kwargs.pop("input_example", None)
    if example is not None:
        model["input_example"] = True
    requirements = kwargs.pop("pip_requirements", None)
    if isinstance(requirements, list | tuple):
        model["pip_requirements"] = [str(r) for r in requirements]
    elif requirements is not None:
        conv.unconverted.append(Unconverted(
            registry, "log_model_kwargs.pip_requirements (a file) is not converted",
            "list the requirements under model.pip_requirements"))
    for key in sorted(kwargs):
        conv.unconverted.append(Unconverted(
            registry, f"log_model_kwargs.{key} is not converted",
            "see `model:` in the README for what kmlc logs with the model"))
    for key in sorted(getattr(pipe, "kpm_kwargs", None) or {}):
        conv.unconverted.append(Unconverted(
            registry, f"kpm_kwargs.{key} is not needed",
            "the logged model calls the node functions in order, without a runner or "
            "catalog copies"))
    conv.document["model"] = model
    conv.sections["model"] = f"from the pipeline_ml_factory binding in {registry}"


def _hooks(conv: Conversion, project: KedroProject) -> None:
    paths = []
    for hook in project.hooks:
        cls = type(hook)
        path = f"{cls.__module__}.{cls.__qualname__}"
        if cls.__module__.startswith("kedro_mlflow"):
            continue  # kmlc does MlflowHook's work itself
        paths.append(path)
    if paths:
        conv.document["hooks"] = paths
        conv.unconverted.append(Unconverted(
            f"{project.source_dir.name}/{project.package_name}/settings.py",
            "HOOKS were imported as classes", "kmlc instantiates each hook class without "
            "arguments; check that yours need none"))


def _registry_file(project: KedroProject) -> str:
    module = sys.modules.get(f"{project.package_name}.pipeline_registry")
    file = getattr(module, "__file__", None)
    if file:
        return _rel(Path(file), project.path)
    return f"{project.source_dir.name}/{project.package_name}/pipeline_registry.py"
