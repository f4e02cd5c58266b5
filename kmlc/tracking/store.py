"""Run stage, MLflow plumbing shared by the run, the hooks and the datasets.

Everything here talks to MLflow through an explicit ``MlflowClient`` and an explicit
run id, never through MLflow's thread-local "active run": that is what lets the
thread and process runners land every parameter, metric and artifact in one run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from kmlc.config.params import flatten_params
from kmlc.config.secrets import Secrets, redact_uri
from kmlc.config.spec import mask_secrets, resolve_tracking_uri
from kmlc.errors import TrackingError

__all__ = [
    "ATTEMPTS_ENV",
    "RUN_ID_ENV",
    "attach_run_to_model",
    "check_reachable",
    "configure_http",
    "create_sqlite_store",
    "ensure_experiment",
    "finalize_model",
    "local_artifact_root",
    "log_metric_tuples",
    "log_model_folder",
    "log_param_pairs",
    "logged_model_location",
    "open_client",
    "param_pairs",
    "resolve_tracking_uri",
    "store_problem",
    "with_retry",
]

RUN_ID_ENV = "MLFLOW_RUN_ID"  # the run kmlc opened, for its datasets and node code
ATTEMPTS_ENV = "KMLC_STORE_ATTEMPTS"  # attempts of a store call that finds the store busy
DEFAULT_ATTEMPTS = 12
MAX_PARAM_VALUE = 6000  # MLflow's limit on a parameter value
MAX_TAG_VALUE = 8000
BATCH_PARAMS = 100  # MLflow's limit of parameters per log_batch
BATCH_METRICS = 1000  # MLflow's limit of metrics per log_batch
_RETRY_MARKERS = ("database is locked", "database table is locked", "deadlock detected",
                  "could not serialize access", "connection reset", "temporarily unavailable",
                  "too many connections", "unique constraint failed: experiments")

T = TypeVar("T")
_log = logging.getLogger(__name__)


class _BusyStoreFilter(logging.Filter):
    """Drops MLflow's traceback of a store error: kmlc reports it, on one line.

    MLflow's sqlite sessions log every ``OperationalError`` with its traceback before
    raising it: "database is locked" (``with_retry`` retries it, then reports it), "database
    or disk is full", a read-only file... The error is raised all the same, and kmlc's own
    line names it; the traceback above it is noise on the user's terminal.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            return not (message.startswith("SQLAlchemy database error")
                        or _retryable(Exception(message)))
        except Exception:  # a broken record is logging's to report
            return True


logging.getLogger("mlflow.store.db.utils").addFilter(_BusyStoreFilter())


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
    elif uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if str(path) != ":memory:" and not path.parent.is_dir():
            raise TrackingError(f"tracking store {redact_uri(uri)}: folder {path.parent} "
                                "does not exist")


def _retryable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _RETRY_MARKERS)


def _attempts() -> int:
    """``KMLC_STORE_ATTEMPTS`` (1: no retry), else 12."""
    try:
        return max(1, int(os.environ.get(ATTEMPTS_ENV, "")))
    except ValueError:
        return DEFAULT_ATTEMPTS


def with_retry(fn: Callable[..., T], *args: Any, attempts: int | None = None,
               **kwargs: Any) -> T:
    """Call ``fn``, retrying with jittered backoff where the store is busy or locked.

    sqlite answers "database is locked" when another connection holds a write lock
    longer than MLflow's busy timeout (MLflow 3 waits 20 s, then gives up); a short
    backoff is all that is needed. ``attempts`` (default: ``KMLC_STORE_ATTEMPTS``, else
    12) bounds the calls; each retry is logged at DEBUG on ``kmlc.tracking.store``.
    A store still busy after the last attempt is a ``TrackingError``; any other error
    is raised as it is, at once.
    """
    attempts = attempts or _attempts()
    delay = 0.05
    started = time.perf_counter()
    for attempt in range(1, attempts + 1):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not _retryable(exc):
                raise
            reason = _first_line(exc)
            if attempt == attempts:
                raise TrackingError(
                    f"the tracking store is busy: {reason} (gave up after {attempts} "
                    f"attempt{'s' if attempts > 1 else ''} in "
                    f"{time.perf_counter() - started:.0f} s)",
                    hint="another process holds a lock on the store; try again when it "
                         f"is done (more attempts: {ATTEMPTS_ENV}), or use a tracking "
                         "server for many concurrent writers") from exc
            pause = delay * (1 + random.random())
            _log.debug("tracking store busy (%s) in %s; attempt %d of %d failed, "
                       "retrying in %.2f s", reason, getattr(fn, "__name__", fn), attempt,
                       attempts, pause)
            time.sleep(pause)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")  # pragma: no cover


def _first_line(exc: BaseException) -> str:
    """The driver's own words, without the SQL and parameters SQLAlchemy adds."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if _retryable(Exception(line)):
            return line
    return lines[0] if lines else type(exc).__name__


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


def open_client(uri: str, registry_uri: str | None = None) -> Any:
    """An ``MlflowClient`` whose store is ready.

    A new sqlite store creates its tables on first use; several processes starting at
    once would race to create them, so the first use is serialized on the database's
    folder.
    """
    from mlflow.tracking import MlflowClient

    path = sqlite_path(uri)
    if path is not None:
        with _folder_lock(path.parent):
            if not path.exists():
                create_sqlite_store(path)
            else:
                _wait_for_creator(path)
            client = MlflowClient(uri, registry_uri)
            try:
                with_retry(client.search_experiments, max_results=1)
            except TrackingError:
                raise
            except Exception as exc:
                raise _store_error(path, exc) from exc
        return client
    return MlflowClient(uri, registry_uri)


def create_sqlite_store(path: Path) -> None:
    """Create a new sqlite store at ``path``, whole or not at all.

    The store is built in a temporary file beside ``path`` (a copy of kmlc's seed, else
    MLflow's own migrations) and renamed to ``path`` once complete: a disk that fills, or a
    process killed, meanwhile leaves no half-built store behind, only the error.
    """
    if seed_sqlite_store(path):
        return
    from mlflow.tracking import MlflowClient

    staged = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        with_retry(MlflowClient(f"sqlite:///{staged}").search_experiments, max_results=1)
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


def _has_runs(path: Path) -> bool | None:
    """Whether the sqlite store at ``path`` records any run (None: it cannot be read)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                                timeout=1)) as db:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "runs" not in tables:
                return False
            return bool(db.execute("SELECT count(*) FROM runs").fetchone()[0])
    except sqlite3.Error:
        return None


def _store_error(path: Path, exc: BaseException) -> TrackingError:
    """The error of a sqlite store MLflow cannot open, named with what to do."""
    known = store_problem(path, exc)
    if known is not None:
        return known
    return TrackingError(f"the tracking store {path} cannot be opened: {_cause(exc)}",
                         hint="if it was made by a newer MLflow, or an upgrade was cut off, "
                              "back it up and run `mlflow db upgrade` on it")


def store_problem(path: Path, exc: BaseException) -> TrackingError | None:
    """A full disk or a half-built store behind ``exc``, named with what to do (None:
    neither)."""
    cause = _cause(exc)
    text = cause.lower()
    if "disk is full" in text or "no space left" in text:
        return TrackingError(f"the tracking store {path} cannot be written: {cause}",
                             hint="free space on its disk and run again; what the store "
                                  "held is kept")
    if any(marker in text for marker in ("already exists", "no such table", "no such column",
                                         "duplicate column")) and not _has_runs(path):
        return TrackingError(
            f"the tracking store {path} is half-built: its creation was cut off (a full "
            f"disk, a killed process) and MLflow cannot finish it ({cause}); it holds no run",
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

    from mlflow.tracking import MlflowClient

    template.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
        fresh = Path(tmp) / "empty.db"
        with_retry(MlflowClient(f"sqlite:///{fresh}").search_experiments, max_results=1)
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


def param_pairs(params: Mapping[str, Any], *, flatten: bool = False, sep: str = ".",
                long_values: str = "fail", secrets: Iterable[str] = ()
                ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``params`` as MLflow will store them: ``(params, tags)`` of ``(key, text)`` pairs.

    A value longer than MLflow's limit fails (``fail``), becomes a run tag
    ``param.KEY`` (``tag``), or is cut at the limit (``truncate``). Secret values are
    masked. Needs no MLflow import.
    """
    flat = flatten_params(params, sep) if flatten else dict(params)
    pairs: list[tuple[str, str]] = []
    tags: list[tuple[str, str]] = []
    for key, value in flat.items():
        # a parameter computed from a secret is masked whole, however short its text
        secret = isinstance(secrets, Secrets) and secrets.param_is_secret(
            str(key), sep if flatten else ".")
        text = (str(secrets.mask_value(value)) if secret and isinstance(secrets, Secrets)
                else mask_secrets(str(value), secrets))
        if len(text) > MAX_PARAM_VALUE:
            if long_values == "fail":
                raise TrackingError(
                    f"parameter '{key}' is {len(text)} characters long, over MLflow's "
                    f"limit of {MAX_PARAM_VALUE}",
                    hint="set tracking.params.long_values to 'tag' or 'truncate', or "
                         "tracking.params.flatten to true")
            if long_values == "tag":
                tags.append((f"param.{key}", text[:MAX_TAG_VALUE]))
                continue
            text = text[:MAX_PARAM_VALUE]
        pairs.append((key, text))
    return pairs, tags


def log_param_pairs(client: Any, run_id: str, params: Sequence[tuple[str, str]],
                    tags: Sequence[tuple[str, str]] = ()) -> None:
    """Log prepared pairs in batches of 100 (one ``log_batch`` each)."""
    from mlflow.entities import Param, RunTag

    batch = [Param(key, value) for key, value in params]
    run_tags = [RunTag(key, value) for key, value in tags]
    for start in range(0, len(batch), BATCH_PARAMS):
        with_retry(client.log_batch, run_id, params=batch[start:start + BATCH_PARAMS],
                   tags=run_tags if start == 0 else [])
    if run_tags and not batch:
        with_retry(client.log_batch, run_id, tags=run_tags)


def log_metric_tuples(client: Any, run_id: str,
                      metrics: Sequence[tuple[str, float, int, int]]) -> None:
    """Log ``(key, value, timestamp_ms, step)`` tuples, 1,000 per ``log_batch``."""
    from mlflow.entities import Metric

    entities = [Metric(key, value, timestamp, step) for key, value, timestamp, step in metrics]
    for start in range(0, len(entities), BATCH_METRICS):
        with_retry(client.log_batch, run_id, metrics=entities[start:start + BATCH_METRICS])


def log_model_folder(client: Any, run_id: str, name: str,
                     save: Callable[[str, Any], None], *, model_type: str | None = None,
                     finalize: bool = True) -> str:
    """Log a model as an MLflow 3 LoggedModel of run ``run_id``; returns its model id.

    ``save(path, mlflow_model)`` writes the model folder (a flavor's ``save_model``);
    the folder is staged, uploaded with ``client``, then (``finalize``) attached to the
    run and marked READY; on any error it is marked FAILED and the error raised.
    ``finalize=False`` leaves it PENDING for ``finalize_model``. ``client`` names the
    store: nothing here reads MLflow's process-wide tracking URI.
    """
    import tempfile

    from mlflow.entities import LoggedModelStatus
    from mlflow.models import Model

    run = with_retry(client.get_run, run_id)
    logged = with_retry(client.create_logged_model, run.info.experiment_id, name=name,
                        source_run_id=run_id, model_type=model_type)
    try:
        with tempfile.TemporaryDirectory(prefix="kmlc-stage-") as tmp:
            staged = str(Path(tmp) / "model")
            save(staged, Model(run_id=run_id, model_id=logged.model_id,
                               artifact_path=name))
            with_retry(client.log_model_artifacts, logged.model_id, staged)
        if finalize:
            finalize_model(client, run_id, logged.model_id)
    except BaseException:
        with contextlib.suppress(Exception):  # the original error matters more
            client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    return str(logged.model_id)


def logged_model_location(client: Any, run_id: str, name: str) -> str | None:
    """Where the files of run ``run_id``'s LoggedModel ``name`` are, through ``client``.

    MLflow's own ``runs:/RUN/NAME`` resolution of a LoggedModel reads the process-wide
    store; this reads the one ``client`` names.
    """
    run = with_retry(client.get_run, run_id)
    for output in (run.outputs.model_outputs if run.outputs else None) or []:
        logged = with_retry(client.get_logged_model, output.model_id)
        if logged.name == name:
            return str(logged.artifact_location)
    return None


def finalize_model(client: Any, run_id: str, model_id: str, *, ok: bool = True) -> None:
    """Attach a logged model to its run and mark it READY, or mark it FAILED."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    if not ok:
        with_retry(client.finalize_logged_model, model_id, LoggedModelStatus.FAILED)
        return
    with_retry(client.log_outputs, run_id, [LoggedModelOutput(model_id, 0)])
    with_retry(client.finalize_logged_model, model_id, LoggedModelStatus.READY)


def attach_run_to_model(client: Any, run_id: str, model_id: str,
                        dataset: tuple[str, str] | None = None) -> None:
    """Give the LoggedModel ``model_id`` its run's parameters and latest metrics.

    MLflow's model views and ``search_logged_models`` read a model's own params and
    metrics, not its source run's. Each metric's latest point (MLflow's ``latest``:
    highest step, then newest) is logged again with the model's id: the run's metric
    table already holds that very point, so only the model gains it. ``dataset``
    (``(name, digest)`` of a dataset input of the run) is named on each of the model's
    metrics: MLflow links a model to the data it was evaluated with through them.
    """
    from mlflow.entities import Metric

    run = with_retry(client.get_run, run_id)
    params = dict(run.data.params)
    keys = sorted(params)
    for start in range(0, len(keys), BATCH_PARAMS):
        with_retry(client.log_model_params, model_id,
                   {key: params[key] for key in keys[start:start + BATCH_PARAMS]})
    metrics = []
    for key in sorted(run.data.metrics):
        history = with_retry(client.get_metric_history, run_id, key)
        if not history:
            continue
        latest = max(history, key=lambda m: (m.step, m.timestamp))
        metrics.append(Metric(key, latest.value, latest.timestamp, latest.step,
                              model_id=model_id,
                              dataset_name=dataset[0] if dataset else None,
                              dataset_digest=dataset[1] if dataset else None))
    for start in range(0, len(metrics), BATCH_METRICS):
        with_retry(client.log_batch, run_id, metrics=metrics[start:start + BATCH_METRICS])
