"""Plan stage: the compiled project as a manifest, without running anything.

``build_manifest`` turns a ``ProjectSpec`` into plain JSON: every pipeline's nodes in
Kedro's execution order, every dataset as resolved, the parameters each node reads and
what a run would log, the tracking settings (secrets masked), the inference plan and
the model's requirements, and a content hash per node. Keys are sorted on output, so
the diff of two manifests shows what a change to the file changes. MLflow is never
imported (the parameter and requirement rules it reuses need no MLflow).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kmlc.compiler.fingerprint import node_fingerprint, node_hash
from kmlc.compiler.inference_plan import plan_from_spec
from kmlc.compiler.project import CompiledProject, compile_project
from kmlc.config.functions import code_path
from kmlc.config.nodes import io_shape
from kmlc.config.params import ALL_PARAMS, PARAMS_PREFIX, is_param_input, param_inputs
from kmlc.config.spec import DatasetSpec, ProjectSpec
from kmlc.config.target import tracking_target
from kmlc.errors import ExportError, KmlcError, RunError
from kmlc.model.build import requirements
from kmlc.model.closure import module_closure
from kmlc.tracking.batch import param_pairs
from kmlc.tracking.lineage import persisted_inputs
from kmlc.tracking.run_hooks import params_read
from kmlc.version import __version__

__all__ = ["MANIFEST_VERSION", "build_manifest", "dataset_kind", "format_summary",
           "manifest_json", "node_hash"]

MANIFEST_VERSION = 1


def _relative(path: str | None, root: Path) -> str | None:
    if path is None or "://" in path or not Path(path).is_absolute():
        return path
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def dataset_kind(name: str, spec: ProjectSpec) -> str:
    """``parameter``, ``memory`` (undeclared), ``mlflow`` (``mlflow.*`` types), ``persisted``."""
    if is_param_input(name):
        return "parameter"
    ds = spec.datasets.get(name)
    if ds is None or ds.type.split(".")[-1] in ("MemoryDataset", "SharedMemoryDataset"):
        return "memory"
    return "mlflow" if ds.is_mlflow else "persisted"


def _track(ds: DatasetSpec) -> Any:
    if ds.is_mlflow:
        return ds.type
    if ds.track_artifact:
        return {"artifact_path": ds.artifact_path}
    return None


def _dataset_entry(name: str, spec: ProjectSpec, packed: set[str]) -> dict[str, Any]:
    kind = dataset_kind(name, spec)
    ds = spec.datasets.get(name)
    entry: dict[str, Any] = {"kind": kind, "packed_in_model": name in packed}
    if ds is None:
        entry.update({"type": "MemoryDataset" if kind == "memory" else "parameter",
                      "filepath": None, "track": None, "config": {}, "factory": None})
        return entry
    config = {k: v for k, v in ds.config.items() if k not in ("type", "filepath", "path")}
    entry.update({"type": ds.type, "filepath": _relative(ds.filepath, spec.root),
                  "track": _track(ds), "config": config, "factory": ds.pattern})
    if ds.is_factory:
        entry["kind"] = "factory"
    return entry


def _masked_reads(reads: Mapping[str, Any], spec: ProjectSpec) -> dict[str, Any]:
    """A node's parameter inputs with every value computed from a secret masked whole."""
    out: dict[str, Any] = {}
    for name, value in reads.items():
        if name == ALL_PARAMS:
            out[name] = spec.secrets.mask_document({"parameters": value})["parameters"]
        elif spec.secrets.param_is_secret(name[len(PARAMS_PREFIX):]):
            out[name] = spec.secrets.mask_value(value)
        else:
            out[name] = value
    return out


def _logged_params(pipeline: Any, spec: ProjectSpec) -> dict[str, Any]:
    """What ``kmlc run PIPELINE`` logs: MLflow params and (for long values) tags."""

    options = spec.tracking.params
    try:
        pairs, tags = param_pairs(params_read(pipeline, spec.parameters), flatten=options.flatten,
                                  sep=options.sep, long_values=options.long_values,
                                  secrets=spec.secrets)
    except RunError as exc:  # long_values: fail - the run would stop here
        return {"error": str(exc), "params": {}, "tags": {}}
    return {"params": dict(pairs), "tags": dict(tags)}


def _tracking(spec: ProjectSpec) -> dict[str, Any]:

    t = spec.tracking
    out: dict[str, Any] = {
        "uri": t.uri, "uri_from": None, "registry_uri": t.registry_uri,
        "registry_uri_from": None, "experiment": t.experiment or spec.name,
        "run_name": t.run_name, "tags": dict(t.tags),
        "params": {"flatten": t.params.flatten, "sep": t.params.sep,
                   "long_values": t.params.long_values},
        "disable_for": list(t.disable_for)}
    try:
        target = tracking_target(spec)
    except KmlcError as exc:  # a file store: the run would stop here
        return {**out, "error": str(exc)}
    return {**out, "uri": target.given, "uri_from": target.source,
            "registry_uri": target.registry_given, "registry_uri_from": target.registry_source}


def _model(spec: ProjectSpec) -> dict[str, Any] | None:
    if spec.model is None:
        return None

    m = spec.model
    plan = plan_from_spec(spec)
    # from the code and the dataset types only: the modules named inside the pickles
    # training writes are added when the model is logged (a plan does not depend on
    # whether training ran), so no artifact file is read here
    nowhere = {a.name: spec.root / ".kmlc-plan-reads-no-artifact" for a in plan.artifacts}
    try:
        imports = module_closure(plan.modules, spec.code).external
        reqs: Any = requirements(spec, plan, imports, nowhere)
    except ExportError as exc:
        reqs = {"error": str(exc)}
    out: dict[str, Any] = {
        "input": m.input, "artifact_path": m.artifact_path, "signature": m.signature,
        "input_example": m.input_example, "registered_name": m.registered_name,
        "alias": m.alias, "inference_plan": plan.to_dict(), "requirements": reqs,
    }
    promote = getattr(m, "promote", None)
    if promote is not None:
        out["promote"] = promote.to_dict()
    return out


def build_manifest(spec: ProjectSpec, pipeline: str | None = None,
                   compiled: CompiledProject | None = None) -> dict[str, Any]:
    """The manifest of ``spec``; ``pipeline`` keeps only that pipeline and what it uses."""
    with code_path(spec.code):
        compiled = compiled or compile_project(spec, run=False)  # imports no node module
        names = [pipeline] if pipeline else sorted(compiled.pipelines)
        pipelines = {name: compiled.pipeline(name) for name in names}
        own = {n.name for n in spec.nodes}
        plan_artifacts = ({a.name for a in plan_from_spec(spec).artifacts}
                          if spec.model is not None else set())
        used: set[str] = set()
        nodes: dict[str, Any] = {}
        kedro_nodes = {n.name: n for p in pipelines.values() for n in p.nodes}
        for name, node in sorted(kedro_nodes.items()):
            used.update(node.inputs, node.outputs)
            reads = param_inputs(tuple(node.inputs), spec.parameters)
            func = node.func
            nodes[name] = {
                "func": (spec.node(name).func if name in own else
                         f"{func.__module__}.{getattr(func, '__qualname__', func.__name__)}"),
                "inputs": io_shape(getattr(node, "_inputs", node.inputs)),
                "outputs": io_shape(getattr(node, "_outputs", node.outputs)),
                "tags": sorted(node.tags), "namespace": node.namespace,
                "params": _masked_reads(reads, spec),
                "hash": node_fingerprint(node, spec),
            }
        datasets = {name: _dataset_entry(name, spec, plan_artifacts)
                    for name in sorted(used | (set(spec.datasets) if pipeline is None else set()))}
        manifest: dict[str, Any] = {
            "kmlc_manifest_version": MANIFEST_VERSION,
            "kmlc_version": __version__,
            "project": {"name": spec.name, "file": spec.path.name, "env": spec.env,
                        "rendered_hash": spec.rendered_hash},
            "parameters": spec.secrets.mask_document(
                {"parameters": dict(spec.parameters)})["parameters"],
            "pipelines": {name: {"nodes": [n.name for n in p.nodes],
                                 "inputs": sorted(p.inputs()), "outputs": sorted(p.outputs()),
                                 "dataset_inputs": persisted_inputs(spec, p.inputs()),
                                 "logged": _logged_params(p, spec),
                                 "tracked": name not in spec.tracking.disable_for}
                          for name, p in pipelines.items()},
            "nodes": nodes,
            "datasets": datasets,
            "tracking": _tracking(spec),
            "model": _model(spec),
        }
    masked: dict[str, Any] = spec.secrets.mask_data(manifest)
    return masked


def manifest_json(manifest: Mapping[str, Any]) -> str:
    """The manifest as text: sorted keys, two-space indent, a final newline."""
    return json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"


def _names(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return ", ".join(value)


def format_summary(manifest: Mapping[str, Any],
                   cache: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """A readable summary of a manifest, for a terminal; ``cache`` is pipeline -> node ->
    what ``kmlc run --cache`` would do with it (``kmlc.cache.cache_state``)."""
    lines = [f"project {manifest['project']['name']} "
             f"(manifest v{manifest['kmlc_manifest_version']}, kmlc {manifest['kmlc_version']})"]
    nodes = manifest["nodes"]
    for name, p in sorted(manifest["pipelines"].items()):
        tracked = "" if p["tracked"] else " (tracking disabled)"
        lines.append(f"\npipeline {name}: {len(p['nodes'])} nodes{tracked}")
        for i, node_name in enumerate(p["nodes"], 1):
            n = nodes[node_name]
            state = (cache or {}).get(name, {}).get(node_name)
            lines.append(f"  {i:>2}. {node_name} [{n['func']}] {n['hash'][7:19]}"
                         + (f" (cache: {state})" if state else ""))
            lines.append(f"      {_names(n['inputs'])} -> {_names(n['outputs'])}")
        if p.get("dataset_inputs"):
            lines.append("  dataset inputs (lineage): " + ", ".join(p["dataset_inputs"]))
        logged = p["logged"]
        if logged.get("error"):
            lines.append(f"  logs: error: {logged['error']}")
        elif logged["params"] or logged["tags"]:
            pairs = [f"{k}={v}" for k, v in sorted(logged["params"].items())]
            pairs += [f"tag {k}" for k in sorted(logged["tags"])]
            lines.append("  logs params: " + ", ".join(pairs))
    lines.append("\ndatasets:")
    for name, d in sorted(manifest["datasets"].items()):
        if d["kind"] == "parameter":
            continue
        extra = [d["filepath"]] if d["filepath"] else []
        if d["track"]:
            extra.append(f"track={d['track']}")
        if d["packed_in_model"]:
            extra.append("packed in the model")
        lines.append(f"  {name}: {d['kind']} {d['type']}" + (f" ({', '.join(extra)})"
                                                            if extra else ""))
    t = manifest["tracking"]
    if t.get("error"):
        lines.append(f"\ntracking: error: {t['error']}")
    else:
        lines.append(f"\ntracking: {t['uri']} (from {t['uri_from']}) experiment "
                     f"{t['experiment']}")
    if t.get("registry_uri"):
        lines.append(f"registry: {t['registry_uri']} (from {t['registry_uri_from']})")
    model = manifest["model"]
    if model:
        plan = model["inference_plan"]
        steps = " -> ".join(s["name"] for s in plan["steps"])
        lines.append(f"model: {plan['input']} -> {steps} -> {plan['output']}; packs "
                     + (", ".join(a["name"] for a in plan["artifacts"]) or "nothing"))
        reqs = model["requirements"]
        if isinstance(reqs, list):
            lines.append(f"  requirements: {', '.join(reqs)}")
        if model.get("registered_name"):
            lines.append(f"  registers: {model['registered_name']}")
        if model.get("promote"):
            lines.append(f"  promotes: {model['promote']}")
    return "\n".join(lines)
