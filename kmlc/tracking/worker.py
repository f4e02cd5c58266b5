"""Run stage, MLflow side: the tracking worker, a second process for kmlc's own MLflow calls.

Importing MLflow and opening its store take about 1.5 s of CPU, and every store call
holds the interpreter lock. So ``kmlc run`` starts a tracking worker as the command
starts: a child Python process that imports MLflow while the main process loads the
file and compiles it, then opens the run, logs the parameters while the nodes run,
logs what the main process's metric and artifact datasets save, and closes the run.
The main process imports MLflow only when something else needs it (a model dataset,
the model logged at the end of a training run). On a machine with two cores or more,
MLflow's work overlaps Kedro's instead of adding to it.

``Operations`` holds the operations and runs wherever MLflow is imported: in the worker
(``Remote`` sends it requests), or in this process (``KMLC_TRACKING_WORKER=0``, or when
the worker cannot be started). Requests are pickled ``(seq, name, args, wait)`` tuples
on the worker's stdin, answered in order on a pipe of their own. Only ``log_params``
does not wait for its answer; an error in it is reported by the next request that
waits, at the latest by ``close_run``, which then marks the run FAILED. The worker
ignores SIGINT and SIGTERM (the main process decides how the run ends) and, when the
main process goes away without closing a run, closes it as KILLED. Work of the layers
above (building the model, a sweep's records) comes as jobs from the table those layers
fill (``kmlc.tracking.jobs``): the worker names no module of theirs.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from kmlc.config.secrets import redact_uri
from kmlc.errors import KmlcError, TrackingError
from kmlc.tracking import client as tracking
from kmlc.tracking.batch import log_metric_tuples, log_param_pairs
from kmlc.tracking.client import open_client
from kmlc.tracking.jobs import Job
from kmlc.tracking.logged_models import create_logged_model, fail_logged_model, upload_logged_model
from kmlc.tracking.retry import with_retry

__all__ = ["FallbackTracker", "Operations", "Remote", "Tracker", "current", "start", "tracker"]

DISABLE_ENV = "KMLC_TRACKING_WORKER"
_ABANDONED = "the kmlc process ended before closing the run"
_OPERATIONS = frozenset({"warm", "open_run", "log_params", "log_metrics", "log_artifact",
                         "create_model", "upload_model", "fail_model", "close_run", "run_job",
                         "wait_job"})

Pair = tuple[str, str]
Metric = tuple[str, float, int, int]


class Tracker(Protocol):
    """kmlc's MLflow operations, wherever they run (this process or the worker)."""

    @property
    def usable(self) -> bool: ...

    def warm(self, uri: str, registry: str | None, http: tuple[int | None, int | None],
             job: Job | None = None) -> None:
        """Open the store and start ``job`` ahead of the run; never raises."""
        ...

    def request_open(self, *args: Any) -> Callable[[], tuple[str, str]]:
        """Start opening a run (see ``Operations.open_run``); the callable waits for it."""
        ...

    def log_params(self, uri: str, run_id: str, params: Sequence[Pair],
                   tags: Sequence[Pair] = ()) -> None: ...

    def log_metrics(self, uri: str, run_id: str, metrics: Sequence[Metric]) -> None: ...

    def log_artifact(self, uri: str, run_id: str, path: str, artifact_path: str | None,
                     folder: bool) -> None: ...

    def create_model(self, uri: str, run_id: str, name: str, model_type: str | None) -> str:
        """A PENDING LoggedModel of the run; its id (the model's files are saved by the
        caller, then ``upload_model`` or ``fail_model``)."""
        ...

    def upload_model(self, uri: str, run_id: str, model_id: str, folder: str) -> None:
        """Upload ``folder`` as the model's files, attach it to the run, mark it READY."""
        ...

    def fail_model(self, uri: str, model_id: str) -> None: ...

    def close_run(self, uri: str, run_id: str, status: str,
                  tags: dict[str, str]) -> tuple[str, str | None]: ...

    def start_job(self, function: Callable[..., Any], kwargs: dict[str, Any]) -> int:
        """Start ``function(**kwargs)``, a job of ``kmlc.tracking.jobs``, on a thread
        where MLflow is loaded."""
        ...

    def wait_job(self, job: int) -> Any:
        """The job's result; its error as a ``TrackingError``."""
        ...


class Operations:
    """kmlc's MLflow operations on explicit store URIs and run ids."""

    usable = True  # as ``Remote.usable``: operations in this process are always at hand

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str | None], Any] = {}
        self.open_runs: dict[str, str] = {}  # run id -> store uri
        self.failed: dict[str, str] = {}  # run id -> first error of a request not waited for
        self._jobs: dict[int, Any] = {}
        self._unawaited: set[int] = set()  # jobs nobody waits for (the warm-ups)
        self._job_numbers = itertools.count(1)

    def client(self, uri: str, registry: str | None = None) -> Any:
        key = (uri, registry)
        if key not in self._clients:
            self._clients[key] = open_client(uri, registry)
        return self._clients[key]

    def open_run(self, uri: str, registry: str | None, experiment: str,
                 artifact_root: str | None, run_name: str, tags: dict[str, str],
                 text: str, http: tuple[int | None, int | None]) -> tuple[str, str]:
        """Experiment created or restored, run created with ``tags``, ``text`` logged."""
        tracking.configure_http(*http)
        tracking.check_reachable(uri, http[1])
        try:
            client = self.client(uri, registry)
            experiment_id = tracking.ensure_experiment(
                client, experiment, Path(artifact_root) if artifact_root else None)
            run = with_retry(client.create_run, experiment_id, run_name=run_name,
                                      tags=tags)
        except TrackingError:
            raise
        except Exception as exc:
            path = tracking.sqlite_path(uri)
            known = tracking.store_problem(path, exc) if path is not None else None
            if known is not None:  # a full disk, a half-built store: named, with what to do
                raise known from exc
            raise TrackingError(redact_uri(f"cannot open a run on {uri}: {exc}")) from exc
        run_id = str(run.info.run_id)
        self.open_runs[run_id] = uri
        try:
            with_retry(client.log_text, run_id, text, "mlproject.yml")
        except Exception as exc:  # e.g. a read-only artifact folder: the run FAILED, said why
            cause = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):  # the cause matters more
                self.close_run(uri, run_id, "FAILED", {
                    "kmlc.error": f"cannot write the run's artifacts: {cause}"[:5000]})
            raise TrackingError(
                f"run {run_id} marked FAILED: cannot write its artifacts to "
                f"{redact_uri(run.info.artifact_uri)}: {cause}",
                hint="nothing was run; make the artifact folder writable (or free its disk) "
                     "and run again") from exc
        self.close_orphans(client, experiment_id, run_id)
        return run_id, experiment_id

    def close_orphans(self, client: Any, experiment_id: str, opened: str) -> None:
        """Close as KILLED the runs of this host left RUNNING by a kmlc process that is
        gone (its store could not be written when it ended: a full disk, a lost server).

        A run records its host and process id (``kmlc.host``, ``kmlc.pid``); one whose
        process still lives, or that another host runs, is left alone. Never raises.
        """
        import socket

        with contextlib.suppress(Exception):
            host = socket.gethostname()
            runs = client.search_runs([experiment_id], "attributes.status = 'RUNNING'",
                                      max_results=100)
            for run in runs:
                tags = run.data.tags
                pid = tags.get("kmlc.pid", "")
                if (run.info.run_id == opened or tags.get("kmlc.host") != host
                        or not pid.isdigit() or _alive(int(pid))):
                    continue
                with contextlib.suppress(Exception):
                    client.set_tag(run.info.run_id, "kmlc.error",
                                   f"the kmlc process (pid {pid}) ended without closing the "
                                   f"run; closed as KILLED by run {opened}")
                    client.set_terminated(run.info.run_id, "KILLED")

    def warm(self, uri: str, registry: str | None, http: tuple[int | None, int | None],
             job: Job | None = None) -> None:
        """Get ready for a run before it is asked for: the store opened, then ``job``
        started on a thread of its own, nobody waiting for it. A sqlite store that
        does not exist yet is not created (the run may never be asked for: the project
        may not compile); only MLflow's database layer is loaded. Never raises:
        ``open_run`` reports what is wrong with the store."""
        with contextlib.suppress(Exception):  # first: the run opens as soon as asked
            tracking.configure_http(*http)
            path = tracking.sqlite_path(uri)
            if path is not None and not path.exists():
                import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
            else:
                self.client(uri, registry)
        if job is not None:
            with contextlib.suppress(Exception):
                self._unawaited.add(self.run_job(job))

    def request_open(self, *args: Any) -> Callable[[], tuple[str, str]]:
        opened = self.open_run(*args)
        return lambda: opened

    def log_params(self, uri: str, run_id: str, params: Sequence[Pair],
                   tags: Sequence[Pair] = ()) -> None:
        log_param_pairs(self.client(uri), run_id, params, tags)

    def log_metrics(self, uri: str, run_id: str,
                    metrics: Sequence[tuple[str, float, int, int]]) -> None:
        log_metric_tuples(self.client(uri), run_id, metrics)

    def log_artifact(self, uri: str, run_id: str, path: str, artifact_path: str | None,
                     folder: bool) -> None:

        client = self.client(uri)
        if folder:
            with_retry(client.log_artifacts, run_id, path, artifact_path)
        else:
            with_retry(client.log_artifact, run_id, path, artifact_path)

    def create_model(self, uri: str, run_id: str, name: str, model_type: str | None) -> str:
        return create_logged_model(self.client(uri), run_id, name, model_type)

    def upload_model(self, uri: str, run_id: str, model_id: str, folder: str) -> None:
        upload_logged_model(self.client(uri), run_id, model_id, folder)

    def fail_model(self, uri: str, model_id: str) -> None:
        fail_logged_model(self.client(uri), model_id)

    def close_run(self, uri: str, run_id: str, status: str,
                  tags: dict[str, str]) -> tuple[str, str | None]:
        """Set ``tags`` and terminate; returns the final status and any earlier error.

        A run whose parameters could not be logged is closed as FAILED, not FINISHED.
        """
        problem = self.failed.pop(run_id, None)
        if problem is not None and status == "FINISHED":
            status = "FAILED"
            tags = {**tags, "kmlc.error": problem[:5000]}
        client = self.client(uri)
        for key, value in tags.items():
            with_retry(client.set_tag, run_id, key, value)
        with_retry(client.set_terminated, run_id, status)
        self.open_runs.pop(run_id, None)
        return status, problem

    def start_job(self, function: Callable[..., Any], kwargs: dict[str, Any]) -> int:
        """Run ``function(**kwargs)`` on a thread of its own; returns a job number.

        Used for work that needs MLflow and may overlap the nodes (the model of a
        training run is built while the last nodes run). ``function`` is a job of
        the table (``kmlc.tracking.jobs``), which the layers above fill: this module
        depends on nothing downstream of it.
        """
        return self.run_job(Job(function, kwargs))

    def run_job(self, job: Job) -> int:
        """Run ``job`` (opened on its thread, when it came sealed from the main process)."""
        from concurrent.futures import ThreadPoolExecutor

        self.forget_jobs()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kmlc-job")
        number = next(self._job_numbers)
        self._jobs[number] = pool.submit(job)
        pool.shutdown(wait=False)
        return number

    def wait_job(self, job: int) -> Any:
        self._unawaited.discard(job)
        return self._jobs.pop(job).result()

    def forget_jobs(self) -> None:
        """Drop the finished jobs nobody waits for (the warm-up of each model); a job
        someone will wait for keeps its result until then."""
        for job in list(self._unawaited):
            future = self._jobs.get(job)
            if future is None or future.done():
                self._jobs.pop(job, None)
                self._unawaited.discard(job)

    def abandon(self) -> None:
        """Close every run still open as KILLED (the main process went away)."""
        for run_id, uri in list(self.open_runs.items()):
            with contextlib.suppress(Exception):  # best effort on the way out
                self.close_run(uri, run_id, "KILLED", {"kmlc.error": _ABANDONED})


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists
        return True
    return True


# ---------------------------------------------------------------- main process side


class Remote:
    """The main process's handle on a worker process; safe to share between threads."""

    def __init__(self, verbose: bool = False) -> None:
        here = str(Path(__file__).resolve().parents[2])  # the folder holding kmlc
        env = dict(os.environ)
        env["KMLC_VERBOSE"] = "1" if verbose else "0"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
        read_answers, write_answers = os.pipe()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", __name__, str(write_answers)],
            stdin=subprocess.PIPE, env=env, pass_fds=(write_answers,))
        os.close(write_answers)
        self._answers: IO[bytes] = os.fdopen(read_answers, "rb")
        self._owner = os.getpid()
        self._lock = threading.Lock()
        self._sent = 0
        self._ready: dict[int, tuple[str, Any]] = {}
        self._broken: str | None = None
        self._open_runs = 0

    @property
    def pid(self) -> int:
        return int(self._proc.pid)

    @property
    def usable(self) -> bool:
        return os.getpid() == self._owner and self._broken is None and \
            self._proc.poll() is None

    def _dead(self, exc: BaseException | None = None) -> TrackingError:
        code = self._proc.poll()
        self._broken = self._broken or (
            f"the tracking worker process stopped (exit code {code})" if code is not None
            else f"the tracking worker process stopped answering ({exc})")
        return TrackingError(self._broken,
                             hint="what was logged before stays in the run; local outputs "
                                  "are intact; KMLC_TRACKING_WORKER=0 tracks in process")

    def send(self, name: str, *args: Any, wait: bool = True) -> int:
        """Send a request; returns its number (see ``answer``)."""
        with self._lock:
            if self._broken:
                raise self._dead()
            self._sent += 1
            seq = self._sent
            if name == "open_run":
                self._open_runs += 1
            try:
                assert self._proc.stdin is not None
                pickle.dump((seq, name, args, wait), self._proc.stdin,
                            protocol=pickle.HIGHEST_PROTOCOL)
                self._proc.stdin.flush()
            except (OSError, ValueError) as exc:
                raise self._dead(exc) from exc
            return seq

    def answer(self, seq: int) -> Any:
        """Wait for the answer to request ``seq``; raises the worker's error as TrackingError."""
        with self._lock:
            while seq not in self._ready:
                if self._broken:
                    raise self._dead()
                try:
                    got, kind, value = pickle.load(self._answers)
                except (OSError, EOFError, pickle.UnpicklingError) as exc:
                    raise self._dead(exc) from exc
                self._ready[got] = (kind, value)
            kind, value = self._ready.pop(seq)
        if kind == "ok":
            return value
        message, hint = value
        raise TrackingError(message, hint=hint)

    def call(self, name: str, *args: Any) -> Any:
        return self.answer(self.send(name, *args))

    def warm(self, uri: str, registry: str | None, http: tuple[int | None, int | None],
             job: Job | None = None) -> None:
        """As ``Operations.warm``, in the worker, without waiting for it: the main
        process goes on compiling the project while the worker opens the store."""
        self.send("warm", uri, registry, http, job, wait=False)

    def request_open(self, *args: Any) -> Callable[[], tuple[str, str]]:
        seq = self.send("open_run", *args)
        return lambda: self.answer(seq)

    def start_job(self, function: Callable[..., Any], kwargs: dict[str, Any]) -> int:
        # sealed: the worker imports the job's module on the job's thread, not here
        return int(self.call("run_job", Job(function, kwargs)))

    def wait_job(self, job: int) -> Any:
        return self.call("wait_job", job)

    def log_params(self, uri: str, run_id: str, params: Sequence[Pair],
                   tags: Sequence[Pair] = ()) -> None:
        self.send("log_params", uri, run_id, list(params), list(tags), wait=False)

    def log_metrics(self, uri: str, run_id: str,
                    metrics: Sequence[tuple[str, float, int, int]]) -> None:
        self.call("log_metrics", uri, run_id, list(metrics))

    def log_artifact(self, uri: str, run_id: str, path: str, artifact_path: str | None,
                     folder: bool) -> None:
        self.call("log_artifact", uri, run_id, path, artifact_path, folder)

    def create_model(self, uri: str, run_id: str, name: str, model_type: str | None) -> str:
        return str(self.call("create_model", uri, run_id, name, model_type))

    def upload_model(self, uri: str, run_id: str, model_id: str, folder: str) -> None:
        self.call("upload_model", uri, run_id, model_id, folder)

    def fail_model(self, uri: str, model_id: str) -> None:
        self.call("fail_model", uri, model_id)

    def close_run(self, uri: str, run_id: str, status: str,
                  tags: dict[str, str]) -> tuple[str, str | None]:
        final, problem = self.call("close_run", uri, run_id, status, tags)
        self._open_runs -= 1
        return str(final), problem

    def close(self, timeout: float = 30.0) -> None:
        """End the worker: it closes any run left open as KILLED, then exits.

        A worker that never opened a run (the file did not validate, tracking was
        disabled) is stopped at once rather than left to finish importing MLflow.
        """
        if os.getpid() != self._owner:
            return
        if self._open_runs <= 0 and self._proc.poll() is None:
            self._proc.kill()
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._answers.close()


class FallbackTracker:
    """The tracker of one run: the worker while it lives, this process once it is gone.

    The one place where kmlc falls back to tracking in process. ``fall_back`` is asked
    after a ``TrackingError``: it switches to ``Operations`` when the worker is gone
    (and says so), or returns False when the error is the store's own.
    """

    def __init__(self, primary: Tracker) -> None:
        self.impl: Tracker = primary
        self.lost: str | None = None  # why the worker was given up

    def fall_back(self, exc: TrackingError) -> bool:
        if self.impl.usable or isinstance(self.impl, Operations):
            return False
        self.impl = Operations()
        self.lost = exc.message
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.impl, name)


_remote: Remote | None = None
_local: Operations | None = None
_guard = threading.Lock()


def _enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def start(verbose: bool = False) -> Remote | None:
    """Start this process's worker if it is enabled and not running; returns it."""
    global _remote
    if not _enabled():
        return None
    with _guard:
        if _remote is not None and _remote.usable:
            return _remote
        try:
            _remote = Remote(verbose)
        except (OSError, ValueError):  # no subprocess here: track in process
            _remote = None
            return None
        atexit.register(_remote.close)
        return _remote


def tracker() -> Remote | Operations:
    """Where this process's MLflow operations go: the worker, or ``Operations`` in process."""
    global _local
    remote = start()
    if remote is not None:
        return remote
    if _local is None:
        _local = Operations()
    return _local


def current() -> Remote | None:
    """This process's worker, if it has one running (never a forked child's copy)."""
    remote = _remote
    return remote if remote is not None and remote.usable else None


# ---------------------------------------------------------------- worker process side


def _serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    import gc
    import logging

    import mlflow.tracking  # noqa: F401  (the import is the slow part: do it at once)

    # after the import: MLflow sets up its own loggers when it is imported
    # -v is about the user's pipeline: MLflow's internals (alembic migrations...) stay quiet
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    verbose = os.environ.get("KMLC_VERBOSE") == "1"
    logging.getLogger("py.warnings").setLevel(logging.INFO if verbose else logging.WARNING)

    operations = Operations()
    first_open = False
    try:
        while True:
            try:
                seq, name, args, wait = pickle.load(requests)
            except EOFError:
                break
            if name == "open_run" and not gc.isenabled():
                first_open = True
            try:
                if name not in _OPERATIONS:
                    raise TrackingError(f"unknown tracking operation '{name}'")
                value = getattr(operations, name)(*args)
                answer: tuple[Any, ...] = (seq, "ok", value)
            except Exception as exc:
                if isinstance(exc, KmlcError):
                    text, hint = exc.message, exc.hint
                else:
                    text, hint = f"{type(exc).__name__}: {exc}", None
                if not wait:
                    run_id = args[1] if len(args) > 1 else ""
                    operations.failed.setdefault(
                        run_id, f"{name.replace('_', ' ')} failed: {text}")
                    continue
                answer = (seq, "error", (text, hint))
            if wait:
                pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
                answers.flush()
            if first_open:  # MLflow and its store are loaded: collect from now on
                first_open = False
                gc.freeze()
                gc.enable()
    finally:
        operations.abandon()


def main(argv: list[str] | None = None) -> int:
    import gc

    # Importing MLflow and opening its store allocate ~1e6 long-lived objects; the
    # cyclic collector would scan them over and over (about 20% of the startup time).
    # It is off until the first run is open, then everything loaded so far is frozen.
    gc.disable()
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = os.fdopen(int(argv[0]), "wb")
    _serve(sys.stdin.buffer, answers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
