"""Config stage: where a command's runs and models go, and where that was decided.

``tracking_target`` is the one home of the rule (MLflow's own convention for its
variables): the tracking URI is the first that is set of ``--tracking-uri``, the file's
``tracking.uri`` (after ``--env``), ``MLFLOW_TRACKING_URI``, then ``sqlite:///mlflow.db``
beside the file; the registry URI, of the file's ``tracking.registry_uri`` and
``MLFLOW_REGISTRY_URI``, else the tracking store. Relative sqlite paths resolve against the
file's folder, except the environment's, which resolve against the current folder (as
MLflow resolves them). Nothing here imports MLflow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

from kmlc.config.secrets import redact_uri
from kmlc.config.spec import ProjectSpec, TrackingTarget
from kmlc.errors import TrackingError

__all__ = [
    "DEFAULT_TRACKING_URI",
    "REGISTRY_ENV",
    "TRACKING_ENV",
    "TrackingTarget",
    "given_tracking_uri",
    "loaded_target",
    "resolve_tracking_uri",
    "tracking_target",
]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"

TRACKING_ENV = "MLFLOW_TRACKING_URI"
REGISTRY_ENV = "MLFLOW_REGISTRY_URI"
CLI = "--tracking-uri"
FILE = "tracking.uri"
FILE_REGISTRY = "tracking.registry_uri"
DEFAULT = "default"


def resolve_tracking_uri(uri: str, root: Path) -> str:
    """Make a relative ``sqlite:///`` path absolute against ``root``; refuse file stores."""
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
        if path and not path.startswith("/") and path != ":memory:":
            return "sqlite:///" + str((root / path).resolve())
        return uri
    scheme = urlparse(uri).scheme
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        raise TrackingError(
            f"tracking uri '{redact_uri(uri)}' is a file store, which MLflow 3 no longer accepts",
            hint="use a database, e.g. 'sqlite:///mlflow.db' (the default), or a server URL")
    return uri


def given_tracking_uri(tracking_uri: str | None, file_uri: str | None,
                       environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The tracking URI as its source wrote it, and that source (see the module docstring).

    ``tracking_uri``: the command line's; ``file_uri``: the file's ``tracking.uri``.
    """
    env = os.environ if environ is None else environ
    for value, source in ((tracking_uri, CLI), (file_uri, FILE),
                          (env.get(TRACKING_ENV), TRACKING_ENV)):
        if value:
            return value, source
    return DEFAULT_TRACKING_URI, DEFAULT


def tracking_target(spec: ProjectSpec, tracking_uri: str | None = None,
                    environ: Mapping[str, str] | None = None) -> TrackingTarget:
    """Where ``spec``'s runs go; ``tracking_uri`` is the command line's ``--tracking-uri``.

    ``environ`` defaults to ``os.environ``. A file store is refused (``TrackingError``).
    The target the loader resolved (``spec.target``) is returned as it is while what it
    read is unchanged: the variables, the current folder and ``--tracking-uri`` (None: the
    one the project was loaded with).
    """
    env = os.environ if environ is None else environ
    if tracking_uri is None:  # the command line's, as the project was loaded
        tracking_uri = spec.tracking_uri_option
    loaded = spec.target
    if loaded is not None and loaded.read == _read(tracking_uri, env):
        return loaded
    given, source = given_tracking_uri(tracking_uri, spec.tracking.uri, env)
    uri = _resolved(given, source, Path.cwd() if source == TRACKING_ENV else spec.root)
    if spec.tracking.registry_uri:
        registry, registry_source = spec.tracking.registry_uri, FILE_REGISTRY
        resolved = _resolved(registry, registry_source, spec.root)
    elif env.get(REGISTRY_ENV):
        registry, registry_source = env[REGISTRY_ENV], REGISTRY_ENV
        resolved = _resolved(registry, registry_source, Path.cwd())
    else:
        return TrackingTarget(uri, source, given, read=_read(tracking_uri, env))
    return TrackingTarget(uri, source, given, resolved, registry_source, registry,
                          read=_read(tracking_uri, env))


def _read(tracking_uri: str | None, env: Mapping[str, str]) -> tuple[str | None, ...]:
    return (tracking_uri, env.get(TRACKING_ENV), env.get(REGISTRY_ENV), os.getcwd())


def _resolved(uri: str, source: str, root: Path) -> str:
    """``resolve_tracking_uri``, its refusal naming where the URI came from."""
    try:
        return resolve_tracking_uri(uri, root)
    except TrackingError as exc:
        raise TrackingError(f"{exc.message} (from {source})", hint=exc.hint) from exc


def loaded_target(spec: ProjectSpec, tracking_uri: str | None = None) -> ProjectSpec:
    """``spec`` carrying its target (``spec.target``), resolved once as it loads; a store
    the resolution refuses is left to whoever uses it (``kmlc validate`` does not track)."""
    spec = replace(spec, tracking_uri_option=tracking_uri)
    try:
        return replace(spec, target=tracking_target(spec))
    except TrackingError:
        return spec  # tracking_target raises it again where a store is needed
