"""The front end: read -> overlay -> render -> schema -> checks -> ``ProjectSpec``.

``load_project`` is what ``kmlc validate`` and every other command call first. It
imports neither MLflow nor Kedro's runners: validating a file stays light.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kmlc.config.checks import CheckResult, run_checks
from kmlc.config.nodes import mapping_of, tag_list
from kmlc.config.overlay import apply_overlays
from kmlc.config.render import render_document
from kmlc.config.runner import check_runner
from kmlc.config.schema import schema_errors
from kmlc.config.secrets import Secrets, refusals, uri_secrets
from kmlc.config.source import Document, read_document
from kmlc.config.spec import (
    DEFAULT_TRACKING_URI,
    DatasetSpec,
    ModelSpec,
    NodeSpec,
    ParamsSpec,
    PipelineSpec,
    ProjectSpec,
    PromoteSpec,
    RunnerSpec,
    SourceRef,
    TrackingSpec,
    io_shape,
)
from kmlc.errors import ConfigError, ConfigErrors

__all__ = ["LoadResult", "check_project", "load_project"]

_KMLC_DATASET_KEYS = ("track", "allow_outside")
# what MLflow reads to log in to a tracking server: masked like the file's secrets
_MLFLOW_SECRETS = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


@dataclass
class LoadResult:
    """Everything ``kmlc validate`` reports: the spec (when valid) and all problems."""

    spec: ProjectSpec | None
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)
    text: str = ""
    secrets: Secrets = field(default_factory=Secrets)


def load_project(path: str | Path = "mlproject.yml", env: str | None = None,
                 params: Sequence[str] = (), *, runner: str | None = None,
                 address: str | None = None, tracking_uri: str | None = None) -> ProjectSpec:
    """Load, validate and return the project; raise ``ConfigErrors`` listing every problem.

    ``runner``/``address``/``tracking_uri`` are the command line's: a remote Dask
    scheduler asks for storage its workers reach (``config/runner.py``).
    """
    result = check_project(path, env=env, params=params, runner=runner, address=address,
                           tracking_uri=tracking_uri)
    if result.errors or result.spec is None:
        raise ConfigErrors(result.errors, result.warnings)
    return result.spec


def check_project(path: str | Path = "mlproject.yml", env: str | None = None,
                  params: Sequence[str] = (), *, runner: str | None = None,
                  address: str | None = None, tracking_uri: str | None = None) -> LoadResult:
    """Validate the project and return the spec with every error and warning found.

    Every message is masked (``Secrets.mask``): an error may quote a value that holds
    a secret.
    """
    result = _check(Path(path), str(path), env, params, runner, address, tracking_uri)
    for problem in (*result.errors, *result.warnings):
        problem.message = result.secrets.mask(problem.message)
        problem.hint = result.secrets.mask(problem.hint) if problem.hint else problem.hint
    return result


_SECRET_TEMPLATE = re.compile(r"\{\{.*secret\s*=\s*[Tt]rue.*\}\}", re.S)


def _declared_secrets(data: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Key paths whose value, as the file wrote it, renders a secret (``secret=true``)."""
    if isinstance(data, dict):
        return [p for key, value in data.items() for p in _declared_secrets(value, (*path, key))]
    if isinstance(data, list):
        return [p for i, value in enumerate(data) for p in _declared_secrets(value, (*path, i))]
    return [path] if isinstance(data, str) and _SECRET_TEMPLATE.search(data) else []


def _at(data: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        data = data[step]
    return data


def _check(file: Path, display: str, env: str | None, params: Sequence[str],
           runner: str | None, address: str | None, tracking_uri: str | None) -> LoadResult:
    try:
        doc = read_document(file, display)
        declared = _declared_secrets(doc.data)
        doc = apply_overlays(doc, env, params)
        rendered = render_document(doc)
    except ConfigErrors as exc:
        return LoadResult(None, exc.errors, exc.warnings)
    except ConfigError as exc:
        return LoadResult(None, [exc])
    doc = rendered.doc
    # a value given with --params for a value the file declares secret is secret too
    overridden = [path for path in declared if path in doc.overrides]
    tracking = doc.data.get("tracking")
    uris = ([tracking.get("uri"), tracking.get("registry_uri")]
            if isinstance(tracking, dict) else [])
    secrets = Secrets([*rendered.secrets, *(v for u in uris if isinstance(u, str)
                                            for v in uri_secrets(u)),
                       *filter(None, map(os.environ.get, _MLFLOW_SECRETS)),
                       *(str(_at(doc.data, path)) for path in overridden)])
    errors = schema_errors(doc) + refusals(doc, (*rendered.secret_paths, *overridden))
    if errors:
        return LoadResult(None, _by_position(errors), text=doc.text, secrets=secrets)
    root = file.resolve().parent
    code_dirs: list[Path] = []
    for i, entry in enumerate(doc.data.get("code") or ["."]):
        try:
            folder = (root / entry).resolve()
            exists = folder.is_dir()
        except (OSError, ValueError, RuntimeError) as exc:
            errors.append(doc.error(f"code folder {json.dumps(entry)} is not a valid path: {exc}",
                                    ("code", i), code="KMLC406"))
            continue
        code_dirs.append(folder)
        if not exists:
            errors.append(doc.error(f"code folder '{folder}' does not exist", ("code", i),
                                    code="KMLC406"))
    credentials, cred_errors = _load_credentials(doc, root)
    secrets = secrets | _leaves(credentials)
    errors.extend(cred_errors)
    checks = run_checks(doc, root, code_dirs)
    errors.extend(checks.errors)
    runner_errors, runner_warnings = check_runner(doc, runner, address, tracking_uri)
    errors.extend(runner_errors)
    checks.warnings.extend(runner_warnings)
    if errors:
        return LoadResult(None, _by_position(errors), _by_position(checks.warnings), doc.text,
                          secrets)
    spec = build_spec(doc, file.resolve(), code_dirs, env, credentials, secrets, checks)
    return LoadResult(spec, [], _by_position(checks.warnings), doc.text, secrets)


def _by_position(errors: list[ConfigError]) -> list[ConfigError]:
    """Errors in file order, as ``ConfigErrors`` sorts them."""
    return sorted(errors, key=lambda e: (e.file, e.line, e.column, e.code))


def _leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [str(value)] if value not in (None, "") and len(str(value)) >= 4 else []


def _load_credentials(doc: Document, root: Path) -> tuple[dict[str, Any], list[ConfigError]]:
    ref = doc.data.get("credentials")
    used = {name: cfg["credentials"] for name, cfg in (doc.data.get("datasets") or {}).items()
            if isinstance(cfg.get("credentials"), str)}
    creds: dict[str, Any] = {}
    errors: list[ConfigError] = []
    if ref:
        try:
            cred_file = (root / ref).resolve()
            creds_doc = read_document(cred_file, str(cred_file))
            creds = creds_doc.data
        except ConfigError as exc:
            errors.append(doc.error(f"credentials file: {exc.message}", ("credentials",),
                                    code="KMLC120", hint=exc.hint))
        except (OSError, ValueError, RuntimeError) as exc:
            errors.append(doc.error(f"credentials file {json.dumps(ref)} is not a valid path: "
                                    f"{exc}", ("credentials",), code="KMLC120"))
    for name, key in used.items():
        if key not in creds:
            errors.append(doc.error(
                f"credentials '{key}' not found" + ("" if ref else " (no `credentials:` file)"),
                ("datasets", name, "credentials"), code="KMLC121"))
    return creds, errors


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
            uri=tracking.get("uri") or DEFAULT_TRACKING_URI,
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
        nodes=tuple(
            NodeSpec(name=n.name, func=n.func, inputs=io_shape(n.inputs, tuple),
                     outputs=io_shape(n.outputs, tuple),
                     tags=n.tags, source=_ref(doc, n.path), namespace=n.namespace,
                     pipeline=n.pipeline, template=n.template)
            for n in checks.nodes
        ),
        pipelines={name: PipelineSpec(name, tag_list(p.get("tags")),
                                      tuple(p.get("nodes") or ()), _ref(doc, ("pipelines", name)),
                                      p.get("namespace"), mapping_of(p.get("inputs")),
                                      mapping_of(p.get("outputs")),
                                      mapping_of(p.get("parameters")))
                   for name, p in (data.get("pipelines") or {}).items()},
        model=None if model is None else ModelSpec(
            input=model["input"],
            artifact_path=model.get("artifact_path", "model"),
            signature=model.get("signature", "auto"),
            input_example=model.get("input_example", True),
            registered_name=model.get("registered_name"),
            alias=model.get("alias"),
            pip_requirements=(model.get("pip_requirements", "auto")
                              if not isinstance(model.get("pip_requirements"), list)
                              else tuple(model["pip_requirements"])),
            promote=_promote(model.get("promote")),
            source=_ref(doc, ("model",)),
        ),
        hooks=tuple(data.get("hooks") or ()),
        env=env,
        credentials=credentials,
        secrets=secrets,
        # masked before dumping, so that the logged file stays YAML (``***`` is an alias)
        rendered_text=(logged := text if secrets.mask(text) == text
                       else _dump(secrets.mask_data(data))),
        # the hash of the file as logged, secrets masked: equal to the artifact's hash, and
        # no offline guessing of a secret from the hash of an otherwise public text
        rendered_hash=hashlib.sha256(logged.encode()).hexdigest(),
        runner=RunnerSpec(**(data.get("runner") or {})),
        logging=data.get("logging"),
    )


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
