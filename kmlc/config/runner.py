"""Config stage, the runner: which one a run uses, and what a remote Dask cluster asks.

``resolve_runner`` is the one place the command line's ``--runner``/``--address`` meet the
file's ``runner:`` (``load_project`` puts the result in ``ProjectSpec.runner``; the runners
themselves live in ``kmlc.runners``).

``check_runner`` is a check of the document: on a remote scheduler the nodes run on other
machines, which resolve a path on their own disks: a relative local path (a dataset's
``filepath``, a sqlite tracking store) would point at nothing there, or at another copy.
A scheduler on this machine (no address, or a loopback address) has its workers here
too, so any path is fine.
"""

from __future__ import annotations

import ipaddress
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from kmlc.config.source import Document
from kmlc.config.spec import RunnerSpec
from kmlc.config.target import given_tracking_uri
from kmlc.errors import ConfigError

__all__ = ["check_runner", "is_remote_address", "resolve_runner"]


def resolve_runner(section: RunnerSpec, runner: str | None = None,
                   address: str | None = None) -> RunnerSpec:
    """The runner of the run: the file's ``runner:`` (``section``) with the command line's
    ``runner`` and ``address`` over it; an address alone means the dask runner."""
    runner = runner or ("dask" if address else section.type)
    return RunnerSpec(runner, address or section.address,  # type: ignore[arg-type]
                      section.workers)  # (a name of RUNNERS: the command line's choice)

_SHARED_HINT = ("use an absolute path on storage every worker mounts at the same place "
                "(with `allow_outside: true`), or a URL (s3://, gs://, abfs://, ...); "
                "relative paths are fine on a local cluster (no address, or a 127.0.0.1 "
                "scheduler)")


def is_remote_address(address: str | None) -> bool:
    """Whether the scheduler at ``address`` may have workers on other machines."""
    if not address:
        return False
    scheme, sep, rest = address.partition("://")
    if not sep:
        rest = scheme
    elif scheme == "inproc":
        return False
    host = rest.rstrip("/")
    if host.startswith("["):
        host = host[1:host.find("]")]
    elif host.count(":") == 1:
        host = host.rpartition(":")[0]
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _is_local_relative(value: str) -> bool:
    if "://" in value:
        return False
    return not (PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute())


def _local_store(uri: str) -> tuple[bool, bool]:
    """``(local, relative)`` for a tracking URI: a sqlite file or a local folder."""
    if uri.startswith("sqlite:"):
        path = uri.removeprefix("sqlite:").removeprefix("///")
        return True, not path.startswith("/")
    if uri.startswith("file:"):
        return True, not uri.removeprefix("file:").lstrip("/") or uri.startswith("file:.")
    if "://" in uri or uri.startswith(("databricks", "uc:")):
        return False, False
    return True, _is_local_relative(uri)


def check_runner(doc: Document, runner: str | None = None, address: str | None = None,
                 tracking_uri: str | None = None
                 ) -> tuple[list[ConfigError], list[ConfigError]]:
    """Errors and warnings of ``runner:`` and, for a remote Dask scheduler, of the storage.

    ``runner``, ``address`` and ``tracking_uri`` are the command line's, which override
    the file's.
    """
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    data = doc.data
    section: dict[str, Any] = data.get("runner") or {}
    declared = section.get("type", "sequential")
    if declared != "dask":
        for key in ("address", "workers"):
            if key in section:
                errors.append(doc.error(
                    f"'{key}' applies only to the dask runner (runner.type is '{declared}')",
                    ("runner", key), key=True, code="KMLC360",
                    hint="set `type: dask`, or remove it"))
    resolved = resolve_runner(RunnerSpec(declared, section.get("address")), runner, address)
    if resolved.type != "dask":
        return errors, warnings
    address = resolved.address
    if not is_remote_address(address):
        return errors, warnings
    why = f"the Dask scheduler {address} is remote: nodes run on its workers, which"
    for name, cfg in (data.get("datasets") or {}).items():
        for key in ("filepath", "path"):
            value = cfg.get(key) if isinstance(cfg, dict) else None
            if isinstance(value, str) and _is_local_relative(value):
                errors.append(doc.error(
                    f"relative local path '{value}': {why} would resolve it on their own "
                    "disks", ("datasets", name, key), code="KMLC361", hint=_SHARED_HINT))
    tracking = data.get("tracking") or {}
    uri, source = given_tracking_uri(tracking_uri, tracking.get("uri"))
    local, relative = _local_store(uri)
    where = ("tracking", "uri") if source == "tracking.uri" else (
        ("tracking",) if "tracking" in data else ("runner",) if "runner" in data else ())
    if local and relative:
        errors.append(doc.error(
            f"tracking store '{uri}' is a relative local path: {why} log metrics and "
            "models into the run from there", where, code="KMLC362",
            hint="set tracking.uri to a tracking server the workers reach "
                 "(http://host:5000), or pass --tracking-uri"))
    elif local:
        warnings.append(doc.error(
            f"tracking store '{uri}' is a local file: {why} reach it only on a shared mount "
            "at the same path", where, code="KMLC363", severity="warning",
            hint="a tracking server (mlflow server) is the safe choice for a cluster"))
    return errors, warnings
