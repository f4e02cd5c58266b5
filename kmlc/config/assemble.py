"""Stage 6, spec: a document that passed every check -> the frozen ``ProjectSpec``.

``build_spec`` is the last stage ``loader.py`` runs: it reads the validated, rendered
document (plain dicts, with positions) into the typed spec objects of ``spec.py``,
each keeping where in the file it came from, and dumps the rendered file that every
run logs and hashes.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from kmlc.config.checks import CheckResult, run_checks
from kmlc.config.metric_keys import namespace_prefix
from kmlc.config.nodes import NodeDef, io_shape, mapping_of, node_io, tag_list
from kmlc.config.params import param_value
from kmlc.config.secrets import Secrets
from kmlc.config.shorthands import shorthand
from kmlc.config.source import Document
from kmlc.config.spec import (
    DatasetSpec,
    ModelSpec,
    NodeSpec,
    ParamsSpec,
    PipelineSpec,
    ProjectSpec,
    PromoteSpec,
    RunnerSpec,
    SourceRef,
    SweepParam,
    SweepSpec,
    TrackingSpec,
)
from kmlc.config.sweep import param_candidate

__all__ = ["build_spec"]

_KMLC_DATASET_KEYS = ("track", "allow_outside")  # kmlc's keys of a dataset: not Kedro's


def _ref(doc: Document, path: tuple[str | int, ...]) -> SourceRef:
    line, column = doc.locate(path)
    return SourceRef(doc.file, line, column, path)


def build_spec(doc: Document, path: Path, code_dirs: list[Path], env: str | None,
               credentials: dict[str, Any], secrets: Secrets,
               checks: CheckResult | None = None) -> ProjectSpec:
    """Build the frozen spec from a document that passed every check."""
    data = doc.data
    checks = checks or run_checks(doc, path.parent, code_dirs)
    datasets = {name: _dataset(doc, name, cfg)
                for name, cfg in (data.get("datasets") or {}).items()}
    for name, (pattern, cfg) in checks.factory_matches.items():
        datasets[name] = replace(_dataset(doc, pattern, cfg), name=name, pattern=pattern)
    producers = {out: n for n in checks.nodes for out, _ in node_io(n.outputs)}
    for name, ds in datasets.items():  # a namespaced copy's metrics: under its namespace
        kind = shorthand(ds.type)
        if kind is not None and kind.metric == "many" and "prefix" not in ds.config:
            prefix = namespace_prefix(name, ds.config, producers.get(name))
            if prefix:
                datasets[name] = replace(ds, config={**ds.config, "prefix": prefix})
    tracking = data.get("tracking") or {}
    params = tracking.get("params") or {}
    ui = tracking.get("ui") or {}
    http = tracking.get("http") or {}
    model = data.get("model")
    text = _dump(data)
    return ProjectSpec(
        path=path,
        name=data["name"],
        version=data["version"],
        code=tuple(code_dirs),
        tracking=TrackingSpec(
            uri=tracking.get("uri") or None,
            registry_uri=tracking.get("registry_uri"),
            experiment=tracking.get("experiment") or data["name"],
            run_name=tracking.get("run_name"),
            tags={str(k): str(v) for k, v in (tracking.get("tags") or {}).items()},
            params=ParamsSpec(params.get("flatten", False), params.get("sep", "."),
                              params.get("long_values", "fail")),
            disable_for=tuple(tracking.get("disable_for") or ()),
            ui_host=ui.get("host", "127.0.0.1"),
            ui_port=ui.get("port", 5000),
            http_max_retries=http.get("max_retries"),
            http_timeout=http.get("timeout"),
        ),
        parameters=data.get("parameters") or {},
        datasets=datasets,
        nodes=tuple(_node(doc, n) for n in checks.nodes),
        templates=tuple(_node(doc, n) for n in checks.templates),
        pipelines={name: PipelineSpec(name, tag_list(p.get("tags")),
                                      tuple(p.get("nodes") or ()), _ref(doc, ("pipelines", name)),
                                      p.get("namespace"), mapping_of(p.get("inputs")),
                                      mapping_of(p.get("outputs")),
                                      mapping_of(p.get("parameters")))
                   for name, p in (data.get("pipelines") or {}).items()},
        model=None if model is None else ModelSpec(
            input=model["input"],
            pipeline=model.get("pipeline", "training"),
            artifact_path=model.get("artifact_path", "model"),
            signature=model.get("signature", "auto"),
            input_example=model.get("input_example", True),
            registered_name=model.get("registered_name"),
            alias=model.get("alias"),
            pip_requirements=(model.get("pip_requirements", "auto")
                              if not isinstance(model.get("pip_requirements"), list)
                              else tuple(model["pip_requirements"])),
            extra_pip_requirements=tuple(model.get("extra_pip_requirements") or ()),
            keys=tuple(model.get("keys") or ()),
            promote=_promote(model.get("promote")),
            source=_ref(doc, ("model",)),
        ),
        hooks=tuple(data.get("hooks") or ()),
        env=env,
        credentials=credentials,
        secrets=secrets,
        # masked before dumping, so that the logged file stays YAML (``***`` is an alias)
        rendered_text=(logged := text if secrets.mask(text) == text and not secrets.paths
                       else _dump(secrets.mask_document(data))),
        # the hash of the file as logged, secrets masked: equal to the artifact's hash, and
        # no offline guessing of a secret from the hash of an otherwise public text
        rendered_hash=hashlib.sha256(logged.encode()).hexdigest(),
        runner=RunnerSpec(**(data.get("runner") or {})),
        logging=data.get("logging"),
        cache=(bool(cache.get("enabled", True)) if isinstance(cache := data.get("cache"), dict)
               else bool(cache)),
        cache_memory_limit=int(float(cache.get("memory_limit_mb", 256) if isinstance(
            cache, dict) else 256) * 1024 * 1024),
        sweep=_sweep(doc),
    )


def _node(doc: Document, n: NodeDef) -> NodeSpec:
    return NodeSpec(name=n.name, func=n.func, inputs=io_shape(n.inputs, tuple),
                    outputs=io_shape(n.outputs, tuple), tags=n.tags, source=_ref(doc, n.path),
                    namespace=n.namespace, pipeline=n.pipeline, template=n.template)


def _dataset(doc: Document, name: str, cfg: dict[str, Any]) -> DatasetSpec:
    track = cfg.get("track")
    config = {k: v for k, v in cfg.items() if k not in _KMLC_DATASET_KEYS}
    if str(cfg["type"]).rpartition(".")[2] != "MemoryDataset":
        config.pop("copy_mode", None)  # Kedro's MemoryDataset takes it; file datasets do not
    return DatasetSpec(
        name=name,
        type=cfg["type"],
        config=config,
        track_artifact=track is not None,
        artifact_path=track.get("artifact_path") if isinstance(track, dict) else None,
        source=_ref(doc, ("datasets", name)),
        copy_mode=cfg.get("copy_mode"),
    )


def _dump(data: dict[str, Any]) -> str:
    """The rendered document as YAML (logged with each run; hashed to tag it).

    PyYAML's C dumper (PyYAML comes with Kedro) is ten times faster than a pure-Python
    one, which matters for files of hundreds of nodes.
    """
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    body = {k: v for k, v in data.items() if k != "environments"}
    return str(yaml.dump(body, Dumper=dumper, sort_keys=False, default_flow_style=False,
                         allow_unicode=True))


def _promote(data: dict[str, Any] | None) -> PromoteSpec | None:
    if data is None:
        return None
    better = data.get("better_than_current") or {}
    return PromoteSpec(alias=data["alias"], when=data.get("when"), metric=better.get("metric"),
                       mode=better.get("mode", "max"))


def _sweep(doc: Document) -> SweepSpec | None:
    data = doc.data.get("sweep")
    if data is None:
        return None
    candidates = tuple(data.get("candidates") or ())
    params = []
    for path, entry in (data.get("parameters") or {}).items():
        where = ("sweep", "parameters", path)
        if "values" in entry:
            param = SweepParam(path, values=tuple(entry["values"]))
        else:
            current = param_value(doc.data.get("parameters") or {}, path)
            given = entry.get("type") or ("int" if isinstance(current, int) else "float")
            kind: Literal["int", "float"] = "int" if given == "int" else "float"
            param = SweepParam(path, low=entry["low"], high=entry["high"],
                               log=bool(entry.get("log", False)), type=kind)
        params.append(replace(param, candidate=param_candidate(path, candidates),
                              source=_ref(doc, where)))
    return SweepSpec(metric=data["metric"], direction=data["direction"],
                     parameters=tuple(params), candidates=candidates,
                     method=data.get("method", "grid"), trials=data.get("trials"),
                     seed=data.get("seed"), parallel=int(data.get("parallel", 1)),
                     fail_fast=bool(data.get("fail_fast", False)),
                     pipeline=data.get("pipeline"), source=_ref(doc, ("sweep",)))
