"""The front end: read -> overlay -> render -> schema -> checks -> ``ProjectSpec``.

This module is the stage sequence; each stage lives in its own module (the last one,
document -> frozen spec, in ``build.py``). ``load_project`` is what ``kmlc validate``
and every other command call first. It imports neither MLflow nor Kedro's runners:
validating a file stays light.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kmlc.config.assemble import build_spec
from kmlc.config.checks import run_checks
from kmlc.config.nodes import expand_nodes
from kmlc.config.overlay import apply_overlays
from kmlc.config.runner import check_runner, resolve_runner
from kmlc.config.schema import schema_errors
from kmlc.config.secret_checks import refusals
from kmlc.config.secrets import Secrets, uri_secrets
from kmlc.config.source import Document, KeyPath, has_templates, read_document
from kmlc.config.spec import ProjectSpec
from kmlc.config.target import loaded_target
from kmlc.errors import ConfigError, ConfigErrors

__all__ = ["LoadResult", "check_project", "load_project"]

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

    ``runner``/``address`` are the command line's: the spec's ``runner`` is the file's
    with them over it, resolved here once for the whole run (``resolve_runner``); a remote
    Dask scheduler asks for storage its workers reach, and ``tracking_uri`` (the command
    line's) says where the runs go (``config/runner.py``).
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
        rendered_secrets: set[str] = set()
        secret_paths: tuple[KeyPath, ...] = ()
        if has_templates(doc.data):
            # Jinja is imported only for a file that has templates: a refusal that needs
            # only the file stays under half a second (tests/benchmarks/bench_refusal.py)
            from kmlc.config.render import render_document

            rendered = render_document(doc)
            doc, rendered_secrets, secret_paths = (rendered.doc, rendered.secrets,
                                                   rendered.secret_paths)
    except ConfigErrors as exc:
        return LoadResult(None, exc.errors, exc.warnings)
    except ConfigError as exc:
        return LoadResult(None, [exc])
    # a value given with --params for a value the file declares secret is secret too
    overridden = [path for path in declared if path in doc.overrides]
    tracking = doc.data.get("tracking")
    uris = ([tracking.get("uri"), tracking.get("registry_uri")]
            if isinstance(tracking, dict) else [])
    secrets = Secrets([*rendered_secrets, *(v for u in uris if isinstance(u, str)
                                            for v in uri_secrets(u)),
                       *filter(None, map(os.environ.get, _MLFLOW_SECRETS)),
                       *(str(_at(doc.data, path)) for path in overridden)],
                      (*secret_paths, *overridden))
    errors = schema_errors(doc)
    # namespaced copies of nodes may pack datasets too: once the document is well formed,
    # the refusals read every node the project runs
    expanded = None if errors else expand_nodes(doc)
    errors += refusals(doc, (*secret_paths, *overridden),
                       expanded[0] if expanded is not None else None)
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
    checks = run_checks(doc, root, code_dirs, expanded)
    errors.extend(checks.errors)
    runner_errors, runner_warnings = check_runner(doc, runner, address, tracking_uri)
    errors.extend(runner_errors)
    checks.warnings.extend(runner_warnings)
    if errors:
        return LoadResult(None, _by_position(errors), _by_position(checks.warnings), doc.text,
                          secrets)
    spec = build_spec(doc, file.resolve(), code_dirs, env, credentials, secrets, checks)
    spec = replace(spec, runner=resolve_runner(spec.runner, runner, address))
    spec = loaded_target(spec, tracking_uri)
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
