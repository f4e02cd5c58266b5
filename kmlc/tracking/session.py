"""Run stage, MLflow side: the lifetime of one tracked run.

``RunSession`` computes the run's tags, has the run opened (experiment created or
restored, tags, the rendered ``mlproject.yml`` as an artifact) by the tracking worker
without waiting until the run id is needed, publishes the run to the node code for the
length of the run (``MLFLOW_RUN_ID``, ``MLFLOW_TRACKING_URI``: the variables MLflow's
own fluent API reads), and closes the run with the status that matches what happened.
Nothing logged before a failure is lost. It knows nothing of Kedro's runners or of
the model: ``kmlc.run`` drives it.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from kmlc.config.secrets import mask_secrets, redact_uri
from kmlc.config.spec import ProjectSpec
from kmlc.config.target import tracking_target
from kmlc.errors import TrackingError
from kmlc.tracking import client as store
from kmlc.tracking.active import RUN_ID_ENV, fluent_store
from kmlc.tracking.jobs import Job
from kmlc.tracking.worker import FallbackTracker, Remote, tracker
from kmlc.version import __version__

__all__ = ["PROJECT_TAG", "RUN_ENV", "RunSession", "interrupts_deferred", "project_identity",
           "run_environment", "run_tags"]

_MAX_TAG = 5000
PROJECT_TAG = "kmlc.project"  # which project a run is of, in a store several projects share


def project_identity(spec: ProjectSpec) -> str:
    """What identifies the project in its runs: its file's absolute path."""
    return str(spec.path.resolve())

# what node code sees of the run: MLflow's own variables (its fluent API reads them)
RUN_ENV = (RUN_ID_ENV, "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID",
           "MLFLOW_REGISTRY_URI")


def _git(root: Path) -> dict[str, str]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True,
                               text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"mlflow.source.git.commit": commit.stdout.strip(),
            "kmlc.git.dirty": str(bool(dirty.stdout.strip())).lower()}


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (some containers)
        return None


HOST_TAG, PID_TAG = "kmlc.host", "kmlc.pid"  # the process running the run


def process_tags() -> dict[str, str]:
    """Which process runs the run: a later run on this host closes it if it is gone."""
    import socket

    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def run_tags(spec: ProjectSpec, pipeline: str, *, runner: str,
             command: str | None = None) -> dict[str, str]:
    """The tags of a run: provenance, versions, the command line (secrets masked)."""
    from importlib.metadata import version

    command = mask_secrets(command or shlex.join(["kmlc", *sys.argv[1:]]), spec.secrets)
    tags = {
        "kmlc.pipeline": pipeline,
        "kmlc.version": __version__,
        "kedro.version": version("kedro"),
        "kedro_datasets.version": version("kedro-datasets"),
        "mlflow.version": version("mlflow"),
        "kmlc.command": command,
        "kmlc.file_hash": spec.rendered_hash,
        "kmlc.runner": runner,
        "mlflow.source.name": str(spec.path),
        PROJECT_TAG: project_identity(spec),
        "mlflow.source.type": "LOCAL",
    }
    tags.update(process_tags())
    user = _user()
    if user:
        tags["mlflow.user"] = user
    if spec.env:
        tags["kmlc.env"] = spec.env
    tags.update(_git(spec.root))
    tags.update(spec.tracking.tags)
    return tags


@contextmanager
def run_environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set environment variables for the length of the run; restore them after."""
    saved = {key: os.environ.get(key) for key, value in values.items() if value is not None}
    for key in saved:
        os.environ[key] = str(values[key])
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done (the run is being closed: a run
    closed halfway, or reported as killed once it was closed as FINISHED, is worse than
    a second's wait); a second signal interrupts at once. A signal that waited is raised
    as ``KeyboardInterrupt`` after the block."""
    import signal

    caught: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        caught.append(signum)
        if len(caught) > 1:
            raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
    if caught:
        raise KeyboardInterrupt(f"signal {caught[0]}")


class RunSession:
    """Context manager around one MLflow run; see the module docstring."""

    def __init__(self, spec: ProjectSpec, pipeline: str, *, runner: str = "sequential",
                 run_name: str | None = None,
                 command: str | None = None, extra_tags: Mapping[str, str] | None = None,
                 base_tags: Mapping[str, str] | None = None):
        self.spec = spec
        self.base_tags = dict(base_tags) if base_tags is not None else None  # else run_tags
        self.extra_tags = dict(extra_tags or {})  # e.g. a sweep's mlflow.parentRunId
        self.pipeline = pipeline
        self.target = tracking_target(spec)  # the target the project was loaded with
        self.uri = self.target.uri
        self.registry_uri = self.target.registry_uri
        self.run_name = run_name or spec.tracking.run_name or pipeline
        self.runner = runner
        self.command = command
        self.run_id = ""
        self.experiment_id = ""
        self.notes: list[str] = []
        self.status = "RUNNING"
        self.failed_node: str | None = None
        self.tracker = FallbackTracker(tracker())
        self._pending: Any = None
        self._environment: Any = None
        self._open_args: tuple[Any, ...] = ()

    def tags(self) -> dict[str, str]:
        """The run's own tags: provenance, versions, the command (``run_tags``)."""
        if self.base_tags is None:
            self.base_tags = run_tags(self.spec, self.pipeline, runner=self.runner,
                                      command=self.command)
        return dict(self.base_tags)

    def warm(self, job: Job | None = None) -> None:
        """Have the worker open the store (and start ``job``, e.g. importing what the
        model will need) while this process compiles the project; nothing is opened in
        the store yet, so a project that does not compile leaves no run behind."""
        if isinstance(self.tracker.impl, Remote):
            spec = self.spec
            with contextlib.suppress(TrackingError):  # the run's opening reports it
                self.tracker.warm(self.uri, self.registry_uri,
                                  (spec.tracking.http_max_retries, spec.tracking.http_timeout),
                                  job)

    def __enter__(self) -> RunSession:
        """Ask for the run to be opened; ``wait_open`` waits for it."""
        spec = self.spec
        http = (spec.tracking.http_max_retries, spec.tracking.http_timeout)
        store.configure_http(*http)  # for this process's own MLflow calls (models)
        root = store.local_artifact_root(self.uri)
        self._open_args = (self.uri, self.registry_uri, spec.tracking.experiment,
                           str(root) if root is not None else None,
                           spec.secrets.mask(self.run_name),
                           spec.secrets.mask_data({**self.tags(), **self.extra_tags}),
                           spec.rendered_text, http)
        try:
            self._pending = self.tracker.request_open(*self._open_args)
        except TrackingError as exc:
            self._open_here(exc)
        return self

    def _open_here(self, exc: TrackingError) -> None:
        if not self.tracker.fall_back(exc):
            raise exc
        self.notes.append("the tracking worker process stopped before the run opened; "
                          "tracked in this process instead")
        self._pending = self.tracker.request_open(*self._open_args)

    def wait_open(self) -> str:
        """The run id, once the run is open; the run is published to the node code."""
        if not self.run_id:
            pending, self._pending = self._pending, None  # an answer is read once
            if pending is None:
                raise TrackingError("the run was not opened")
            try:
                opened = pending()
            except TrackingError as exc:
                self._open_here(exc)
                pending, self._pending = self._pending, None
                opened = pending()
            self.run_id, self.experiment_id = opened
            self._environment = contextlib.ExitStack()
            self._environment.enter_context(run_environment(dict(zip(
                RUN_ENV, (self.run_id, self.uri, self.experiment_id, self.registry_uri),
                strict=True))))
            self._environment.enter_context(fluent_store(self.uri, self.registry_uri))
        return self.run_id

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.run_id and self._pending is not None:
            try:  # failed before waiting: the run still has to be closed
                self.wait_open()
            except TrackingError as open_exc:
                if exc is None:
                    raise
                self.notes.append(str(open_exc))
        if self._environment is not None:
            self._environment.__exit__(None, None, None)
            self._environment = None
        if not self.run_id:
            return
        tags: dict[str, str] = {}
        if exc is None:
            self.status = "FINISHED"
        elif isinstance(exc, KeyboardInterrupt):
            self.status = "KILLED"
            tags["kmlc.error"] = "interrupted (SIGINT/SIGTERM)"
        else:
            self.status = "FAILED"
            tags["kmlc.error"] = self.spec.secrets.mask(f"{exc}")[:_MAX_TAG]
            node = getattr(exc, "node", None) or self.failed_node
            if node:
                tags["kmlc.failed_node"] = node
        with interrupts_deferred():
            self._close(tags, failing=exc is not None)

    def _close(self, tags: dict[str, str], *, failing: bool) -> None:
        tags = self.spec.secrets.mask_data(tags)
        try:
            try:
                self.status, problem = self.tracker.close_run(self.uri, self.run_id,
                                                              self.status, tags)
            except TrackingError as worker_exc:
                if not self.tracker.fall_back(worker_exc):
                    raise
                # the worker died: close the run from here, as FAILED (logging was cut off)
                status = "FAILED" if self.status == "FINISHED" else self.status
                self.status, problem = self.tracker.close_run(
                    self.uri, self.run_id, status,
                    {**tags, "kmlc.error": self.spec.secrets.mask(worker_exc.message)})
                problem = problem or worker_exc.message
        except Exception as close_exc:
            message = (f"the run {self.run_id} could not be closed as {self.status} on "
                       f"{redact_uri(self.uri)}: {close_exc}; what was logged before stays "
                       "in the run, local outputs are intact")
            if not failing:
                raise TrackingError(message) from close_exc
            self.notes.append(message)
            return
        if problem is not None:
            message = (f"run {self.run_id} closed as {self.status}: {problem}; local "
                       "outputs are intact")
            if not failing:
                raise TrackingError(message)
            self.notes.append(message)
