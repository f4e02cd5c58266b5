"""Tracking stage: the one factory of MLflow clients, and the stores they open.

``open_client`` is the only place kmlc constructs an ``MlflowClient``. A local sqlite
store is made ready first: created whole (seeded from a copy of an empty store this
MLflow made, else by MLflow's migrations in a staged file), waited for while another
process creates it, and reported with what to do when it is full or half-built. Each
sqlite store is made ready once per process. Everything else talks to MLflow through
the client it is given and an explicit run id, never through MLflow's thread-local
"active run": that is what lets the thread and process runners land every parameter,
metric and artifact in one run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kmlc.config.secrets import redact_uri
from kmlc.config.spec import TrackingTarget
from kmlc.errors import TrackingError
from kmlc.tracking.retry import with_retry

__all__ = ["check_reachable", "configure_http", "create_sqlite_store", "ensure_experiment",
           "local_artifact_root", "open_client", "seed_sqlite_store", "sqlite_path",
           "store_problem"]

_ready: set[str] = set()  # sqlite stores this process has made ready


def _mlflow_client(uri: str | None, registry_uri: str | None = None) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri)


def configure_http(max_retries: int | None, timeout: int | None) -> None:
    """Apply ``tracking.http`` to MLflow's HTTP client (it reads these variables)."""
    if max_retries is not None:
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(max_retries)
    if timeout is not None:
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(timeout)


def check_reachable(uri: str, timeout: float | None = None) -> None:
    """Fail fast, naming the URI, when the tracking store cannot be reached."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        import requests

        # connecting fails fast; a server that accepted the connection gets the request
        # timeout of tracking.http (or 15 s: a busy server is slow, not unreachable)
        connect = min(float(timeout or 5), float(os.environ.get("KMLC_CONNECT_TIMEOUT", "5")))
        read = float(timeout) if timeout else 15.0
        try:
            response = requests.get(uri.rstrip("/") + "/health", timeout=(connect, read))
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise TrackingError(
                f"tracking server {redact_uri(uri)} is unreachable ({reason}); nothing was run",
                hint="start the server, or pass --tracking-uri to use another store") from exc
        if response.status_code >= 500:
            raise TrackingError(f"tracking server {redact_uri(uri)} answered HTTP "
                                f"{response.status_code} on /health; nothing was run")
    else:
        path = sqlite_path(uri)
        if path is not None:
            _check_folder(uri, path, "tracking store")


def _check_folder(uri: str, path: Path, role: str) -> None:
    """Refuse the sqlite store ``uri`` (at ``path``) when its folder does not exist;
    ``role``: the tracking store or the model registry."""
    if not path.parent.is_dir():
        raise TrackingError(f"the {role} {redact_uri(uri)} cannot be opened: its folder "
                            f"{path.parent} does not exist",
                            hint="create the folder, or correct the path: "
                                 + ("tracking.registry_uri" if role == "model registry"
                                    else "tracking.uri, --tracking-uri"))


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on a folder (flock on its descriptor; a no-op where unsupported)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a local sqlite store (None for any other store)."""
    if uri.startswith("sqlite:///") and not uri.endswith(":memory:"):
        return Path(uri[len("sqlite:///"):])
    return None


def open_client(uri: str | TrackingTarget | None = None,
                registry_uri: str | None = None) -> Any:
    """An ``MlflowClient`` of store ``uri`` (None: MLflow's own resolution) whose stores
    are ready; given a ``TrackingTarget``, of its tracking and registry URIs.

    A new sqlite store creates its tables on first use; several processes starting at
    once would race to create them, so the first use in each process is serialized on
    the database's folder. A registry in a sqlite file of its own is made ready the
    same way as the tracking store (MLflow would otherwise run its migrations there
    on the first registration, racing any other process doing the same).
    """
    if isinstance(uri, TrackingTarget):
        target = uri
        uri, registry_uri = target.uri, target.registry_uri
    _make_ready(uri, "tracking store")
    if registry_uri != uri:
        _make_ready(registry_uri, "model registry")
    return _mlflow_client(uri, registry_uri)


def _make_ready(uri: str | None, role: str) -> None:
    """Create (whole) or wait for the local sqlite store ``uri``, once per process; any
    other kind of store is left to MLflow."""
    path = sqlite_path(uri) if uri else None
    if uri is None or path is None or (uri in _ready and path.exists()):
        return  # (a removed store is made again)
    _check_folder(uri, path, role)
    with _folder_lock(path.parent):
        if not path.exists():
            create_sqlite_store(path)
            complete = True  # whole: renamed into place once built
        else:
            _wait_for_creator(path)
            head = _head_revision()
            complete = head is not None and _revision(path) == head
        if not complete:  # older, or left half-built by another: MLflow's checks (and any
            _open_store(uri, path, role)  # migration it runs), one process at a time
    if complete:
        # MLflow's first open of a store (its database layer, the schema check: about a
        # second of CPU) needs no lock on a complete store: processes opening it at once
        # (a sweep's parallel trials, concurrent runs) are not made to take turns
        _open_store(uri, path, role)
    _ready.add(uri)


def _open_store(uri: str, path: Path, role: str) -> None:
    """MLflow's first use of the sqlite store ``uri`` in this process; its failure named."""
    try:
        with_retry(_mlflow_client(uri).search_experiments, max_results=1)
    except TrackingError:
        raise
    except Exception as exc:
        raise _store_error(path, exc, role) from exc


def create_sqlite_store(path: Path) -> None:
    """Create a new sqlite store at ``path``, whole or not at all.

    The store is built in a temporary file beside ``path`` (a copy of kmlc's seed, else
    MLflow's own migrations) and renamed to ``path`` once complete: a disk that fills, or a
    process killed, meanwhile leaves no half-built store behind, only the error.
    """
    if seed_sqlite_store(path):
        return
    staged = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        with_retry(_mlflow_client(f"sqlite:///{staged}").search_experiments, max_results=1)
        os.replace(staged, path)
    except Exception as exc:
        raise TrackingError(f"cannot create the tracking store {path}: {_cause(exc)}",
                            hint="nothing was left behind; free space (or fix the folder's "
                                 "permissions) and run again") from exc
    finally:
        for leftover in (staged, staged.with_name(staged.name + "-journal")):
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)


def _cause(exc: BaseException) -> str:
    """The first line of the innermost cause (the driver's or the OS's own words)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__).removeprefix("(sqlite3.OperationalError) ")


_RECORDS = ("runs", "registered_models", "logged_models")  # what a store must never lose


def _holds_records(path: Path) -> bool | None:
    """Whether the sqlite store at ``path`` records any run, registered model or logged
    model (None: it cannot be read)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                                timeout=1)) as db:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            return any(db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()  # our names
                       for table in _RECORDS if table in tables)
    except sqlite3.Error:
        return None


def _store_error(path: Path, exc: BaseException, role: str) -> TrackingError:
    """The error of a sqlite store MLflow cannot open, named with what to do."""
    known = store_problem(path, exc, role)
    if known is not None:
        return known
    return TrackingError(f"the {role} {path} cannot be opened: {_cause(exc)}",
                         hint="if it was made by a newer MLflow, or an upgrade was cut off, "
                              "back it up and run `mlflow db upgrade` on it")


def store_problem(path: Path, exc: BaseException,
                  role: str = "tracking store") -> TrackingError | None:
    """A full disk or a half-built store behind ``exc``, named with what to do (None:
    neither). ``role``: what the file is to the project (its tracking store, or its
    model registry)."""
    cause = _cause(exc)
    text = cause.lower()
    if "disk is full" in text or "no space left" in text:
        return TrackingError(f"the {role} {path} cannot be written: {cause}",
                             hint="free space on its disk and run again; what the store "
                                  "held is kept")
    if any(marker in text for marker in ("already exists", "no such table", "no such column",
                                         "duplicate column")) and _holds_records(path) is False:
        return TrackingError(
            f"the {role} {path} is half-built: its creation was cut off (a full disk, a "
            f"killed process) and MLflow cannot finish it ({cause}); it holds no run and "
            "no model",
            hint=f"delete {path} and run again: kmlc creates a store whole or not at all")
    return None


_CREATION_QUIET = 5.0  # s without a write after which a store is no longer being created
_CREATION_WAIT = 120.0  # s at most spent waiting for another process to create a store


def _revision(path: Path) -> str | None:
    """The schema revision a sqlite store records (None while it has none)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                                timeout=1)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def _wait_for_creator(path: Path) -> None:
    """Wait while a process that is not kmlc (`mlflow ui`, a notebook) creates the store.

    MLflow creates a store's tables by running its migrations, one statement after the
    other and not in one transaction; a second MLflow process that opens the store
    meanwhile runs them too, and one of the two fails halfway ("table … already
    exists", "no such column"). A store being created is young, still written to, and
    not yet at the schema revision of an empty store this MLflow made (kmlc's seed
    template); kmlc waits until it is complete or has not changed for a few seconds (an
    older store that needs an upgrade is then MLflow's to report).
    """
    deadline = time.monotonic() + _CREATION_WAIT
    while time.monotonic() < deadline:
        try:
            quiet = time.time() - path.stat().st_mtime
        except OSError:
            return
        if quiet > _CREATION_QUIET:
            return
        head = _head_revision()
        if head is None or _revision(path) == head:
            return
        time.sleep(0.1)


@functools.cache
def _head_revision() -> str | None:
    """The schema revision of a new store of this MLflow (from kmlc's seed template)."""
    template = _template_path()
    if not template.exists():
        with contextlib.suppress(OSError):
            _build_template(template)
    return _revision(template) if template.exists() else None


def _template_folder() -> Path:
    base = os.environ.get("KMLC_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "kmlc" if base else Path.home() / ".cache" / "kmlc"


def _template_path() -> Path:
    from importlib.metadata import version

    return _template_folder() / f"mlflow-{version('mlflow')}-empty.db"


def _build_template(template: Path) -> None:
    """Let MLflow build an empty store, in a temporary folder, and keep it at ``template``."""
    import tempfile

    template.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
        fresh = Path(tmp) / "empty.db"
        with_retry(_mlflow_client(f"sqlite:///{fresh}").search_experiments, max_results=1)
        os.replace(fresh, template)  # atomic: concurrent builders are harmless


def seed_sqlite_store(path: Path) -> bool:
    """Create a new sqlite store at ``path`` from a copy of an empty one MLflow made.

    MLflow builds a new store by running its migrations (1-1.5 s on every new project).
    kmlc lets MLflow build one empty store per MLflow version, in a temporary folder,
    keeps it in the user's cache (``KMLC_CACHE_DIR``, else ``~/.cache/kmlc``) and
    copies it: the same tables, indexes and migration version, byte for byte. The one
    row that depends on where the store was created, the Default experiment's artifact
    location, is set to what MLflow would write here (``./mlruns/0`` of the current
    folder) and its timestamps to now. Returns False (and leaves the store to MLflow)
    when the cache cannot be used.
    """
    import shutil
    import sqlite3

    template = _template_path()
    try:
        if not template.exists():
            _build_template(template)
        staged = path.with_name(f".{path.name}.{os.getpid()}.seed")
        shutil.copyfile(template, staged)
        now = int(time.time() * 1000)
        with contextlib.closing(sqlite3.connect(staged)) as db, db:
            db.execute("UPDATE experiments SET artifact_location = ?, creation_time = ?, "
                       "last_update_time = ? WHERE experiment_id = 0",
                       (str(Path.cwd().resolve() / "mlruns" / "0"), now, now))
        os.replace(staged, path)
    except (OSError, sqlite3.Error):
        return False
    finally:
        with contextlib.suppress(OSError, UnboundLocalError):
            staged.unlink(missing_ok=True)
    return True


def local_artifact_root(uri: str) -> Path | None:
    """Artifacts of a local sqlite store live beside its database, in ``mlartifacts``."""
    path = sqlite_path(uri)
    return path.parent / "mlartifacts" if path is not None else None


def ensure_experiment(client: Any, name: str, artifact_root: Path | None = None) -> str:
    """The experiment's id: created if missing, restored if deleted.

    ``artifact_root`` (used with a local sqlite store) keeps artifacts beside the
    project instead of under whatever folder the command happened to run from.
    """
    experiment = with_retry(client.get_experiment_by_name, name)
    if experiment is None:
        location = artifact_root.resolve().as_uri() if artifact_root is not None else None
        try:
            return str(with_retry(client.create_experiment, name,
                                  artifact_location=location))
        except Exception as exc:
            experiment = with_retry(client.get_experiment_by_name, name)
            if experiment is None:
                raise TrackingError(f"cannot create experiment '{name}': {exc}") from exc
    if experiment.lifecycle_stage == "deleted":
        with_retry(client.restore_experiment, experiment.experiment_id)
    return str(experiment.experiment_id)


