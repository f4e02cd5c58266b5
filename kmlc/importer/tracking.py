"""Import stage 2b: kedro-mlflow's ``mlflow.yml`` -> the ``tracking:`` block.

``mlflow.yml`` is read as plain configuration (kedro-mlflow is never imported); every
key kmlc has no place for becomes a problem with what to do instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["convert_tracking"]

Problem = tuple[str, str, str]  # (mlflow.yml key, what, what to do)


def _get(config: Mapping[str, Any], *keys: str) -> Any:
    value: Any = config
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


#: the variables a password found in a store's URI is read from (``env(..., secret=true)``)
TRACKING_PASSWORD = "MLFLOW_TRACKING_PASSWORD"
REGISTRY_PASSWORD = "KMLC_REGISTRY_PASSWORD"


def _password(uri: str) -> str | None:
    try:
        return urlsplit(uri).password
    except ValueError:
        return None


def _without_password(uri: str, variable: str, key: tuple[str, ...],
                      problems: list[Problem]) -> str:
    """``uri`` with its password (``scheme://user:PASSWORD@host``) replaced by a template
    reading it, as a secret, from ``variable``; the user is told to set it."""
    password = _password(uri)
    if not password:
        return uri
    parts = urlsplit(uri)
    user = parts.netloc.rpartition("@")[0].partition(":")[0]
    host = parts.netloc.rpartition("@")[2]
    template = "{{ env('" + variable + "', secret=true) }}"
    netloc = f"{user}:{template}@{host}"
    problems.append((".".join(key), "the password in the URI is not copied into "
                     f"mlproject.yml: it is read from the environment variable {variable} "
                     "(a secret, masked wherever kmlc shows or logs it)",
                     f"set {variable} to the password as the URI wrote it (percent-encoded) "
                     "before `kmlc run`"))
    return urlunsplit(parts._replace(netloc=netloc))


def convert_tracking(config: Mapping[str, Any], rename: Callable[[str], str | None]
                     ) -> tuple[dict[str, Any], dict[tuple[str, ...], tuple[str, ...]],
                                list[Problem]]:
    """The ``tracking:`` mapping, where each kmlc key came from, and what was not converted.

    ``rename`` maps a Kedro pipeline name to its kmlc name (``None``: not imported).
    """
    out: dict[str, Any] = {}
    moved: dict[tuple[str, ...], tuple[str, ...]] = {}
    problems: list[Problem] = []

    def put(kmlc: tuple[str, ...], kedro: tuple[str, ...], value: Any) -> None:
        target = out
        for key in kmlc[:-1]:
            target = target.setdefault(key, {})
        target[kmlc[-1]] = value
        moved[kmlc] = kedro

    uri = _get(config, "server", "mlflow_tracking_uri")
    if uri:
        text = str(uri)
        if "://" in text and not text.lower().startswith("file:"):
            where = ("server", "mlflow_tracking_uri")
            put(("uri",), where, _without_password(text, TRACKING_PASSWORD, where, problems))
        else:
            problems.append(("server.mlflow_tracking_uri",
                             f"the file store '{text}' is not converted (MLflow 3 refuses "
                             "file stores)", "kmlc uses sqlite:///mlflow.db beside the file; "
                             "set tracking.uri to a database or server URI"))
    registry = _get(config, "server", "mlflow_registry_uri")
    if registry:
        where = ("server", "mlflow_registry_uri")
        tracking_password = urlsplit(str(uri)).password if uri and "@" in str(uri) else None
        variable = (TRACKING_PASSWORD if tracking_password is not None
                    and tracking_password == _password(str(registry)) else REGISTRY_PASSWORD)
        put(("registry_uri",), where,
            _without_password(str(registry), variable, where, problems))
    if _get(config, "server", "credentials"):
        problems.append(("server.credentials", "MLflow credentials exported as environment "
                         "variables are not converted",
                         "set them in the environment (e.g. MLFLOW_TRACKING_TOKEN) before "
                         "`kmlc run`"))
    if _get(config, "server", "request_header_provider", "type"):
        problems.append(("server.request_header_provider", "a request header provider is not "
                         "converted", "register it as an MLflow plugin "
                         "(entry point mlflow.request_header_provider)"))
    experiment = _get(config, "tracking", "experiment", "name")
    if experiment:
        put(("experiment",), ("tracking", "experiment", "name"), str(experiment))
    create_kwargs = _get(config, "tracking", "experiment", "create_experiment_kwargs") or {}
    if any(v is not None for v in create_kwargs.values()):
        problems.append(("tracking.experiment.create_experiment_kwargs",
                         "experiment creation arguments are not converted",
                         "create the experiment once with `mlflow experiments create`"))
    run_name = _get(config, "tracking", "run", "name")
    if run_name:
        put(("run_name",), ("tracking", "run", "name"), str(run_name))
    if _get(config, "tracking", "run", "id"):
        problems.append(("tracking.run.id", "resuming a given run id is not converted",
                         "each `kmlc run` opens a new run"))
    disabled = _get(config, "tracking", "disable_tracking", "pipelines") or []
    names = [rename(str(p)) for p in disabled]
    if [n for n in names if n]:
        put(("disable_for",), ("tracking", "disable_tracking", "pipelines"),
            [n for n in names if n])
    dict_params = _get(config, "tracking", "params", "dict_params") or {}
    if dict_params.get("flatten"):
        put(("params", "flatten"), ("tracking", "params", "dict_params", "flatten"), True)
        if dict_params.get("recursive") is False:
            problems.append(("tracking.params.dict_params.recursive",
                             "non-recursive flattening is not converted",
                             "kmlc flattens nested dictionaries all the way down"))
    if dict_params.get("sep") not in (None, "."):
        put(("params", "sep"), ("tracking", "params", "dict_params", "sep"),
            str(dict_params["sep"]))
    strategy = _get(config, "tracking", "params", "long_params_strategy")
    if strategy and strategy != "fail":
        put(("params", "long_values"), ("tracking", "params", "long_params_strategy"),
            str(strategy))
    for key in ("host", "port"):
        value = _get(config, "ui", key)
        default = {"host": "127.0.0.1", "port": "5000"}[key]
        if value is not None and str(value) != default:
            put(("ui", key), ("ui", key), int(value) if key == "port" else str(value))
    return out, moved, problems
