"""Run stage, MLflow side: the lifetime of one tracked run.

``TrackedRun`` has the run opened (experiment created or restored, tags, the rendered
``mlproject.yml`` as an artifact) by the tracking worker, without waiting until the
run id is needed; exposes the id to the datasets through the environment, logs the
bound model at the end of a training run, and closes the run with the status that
matches what happened. Nothing logged before a failure is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from kmlc.config.spec import ProjectSpec, mask_secrets
from kmlc.errors import KmlcError, RunError, TrackingError
from kmlc.tracking.store import tracking_context

__all__ = ["TrackedRun"]

_MAX_TAG = 5000


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else ""


class TrackedRun:
    """Context manager around one MLflow run; see the module docstring."""

    def __init__(self, spec: ProjectSpec, pipeline: str, options: Any,
                 tags: Callable[[ProjectSpec, str, Any], dict[str, str]]):
        from kmlc.tracking.hooks import FailureHook

        self.spec = spec
        self.pipeline = pipeline
        self.options = options
        self._tags = tags
        self.failure = FailureHook()
        self.client: Any = None
        self.run_id = ""
        self.uri = ""
        self.registry_uri: str | None = None
        self.model_uri: str | None = None
        self.notes: list[str] = []
        self.status = "RUNNING"
        self.tracker: Any = None
        self._context: Any = None
        self._opening: int | None = None
        self._opened: tuple[str, str] | None = None
        self._open_args: tuple[Any, ...] = ()

    def __enter__(self) -> TrackedRun:
        """Ask for the run to be opened; ``wait_open`` waits for it."""
        from kmlc.tracking import store as tracking
        from kmlc.tracking import worker as tracking_worker

        spec = self.spec
        self.uri = tracking.resolve_tracking_uri(self.options.tracking_uri or spec.tracking.uri,
                                                 spec.root)
        if spec.tracking.registry_uri:
            self.registry_uri = tracking.resolve_tracking_uri(spec.tracking.registry_uri,
                                                              spec.root)
        http = (spec.tracking.http_max_retries, spec.tracking.http_timeout)
        tracking.configure_http(*http)  # for this process's own MLflow calls (models)
        root = tracking.local_artifact_root(self.uri)
        run_name = self.options.run_name or spec.tracking.run_name or self.pipeline
        args = (self.uri, self.registry_uri, spec.tracking.experiment,
                str(root) if root is not None else None, run_name,
                self._tags(spec, self.pipeline, self.options), spec.rendered_text, http)
        self._open_args = args
        self.tracker = tracking_worker.tracker()
        if isinstance(self.tracker, tracking_worker.Remote):
            try:
                self._opening = self.tracker.send("open_run", *args)
            except TrackingError:
                self._open_in_process()
        else:
            self._opened = self.tracker.open_run(*args)
        return self

    def _open_in_process(self) -> None:
        """The worker died before the run was open: open it (and track) from here."""
        from kmlc.tracking.worker import Operations

        self.notes.append("the tracking worker process stopped before the run opened; "
                          "tracked in this process instead")
        self.tracker = Operations()
        self._opening = None
        self._opened = self.tracker.open_run(*self._open_args)

    def wait_open(self) -> str:
        """The run id, once the run is open; the run is published to the datasets."""
        if self._opened is None and self._opening is not None:
            seq, self._opening = self._opening, None
            try:
                self._opened = self.tracker.answer(seq)
            except TrackingError:
                if self.tracker.usable:
                    raise
                self._open_in_process()
        if self._opened is None:
            raise TrackingError("the run was not opened")
        if not self.run_id:
            self.run_id, experiment_id = self._opened
            self._context = tracking_context(self.run_id, self.uri, experiment_id,
                                             self.registry_uri)
            self._context.__enter__()
        return self.run_id

    def finish_model(self, selected: Any, catalog: Any) -> None:
        """Log the bound inference model at the end of a training run."""
        model = self.spec.model
        if model is None or self.pipeline != "training":
            return
        from kmlc.compiler.plan import plan_from_spec

        plan = plan_from_spec(self.spec)
        produced = selected.all_outputs()
        missing = sorted(a.name for a in plan.artifacts if a.name not in produced)
        if missing:
            self.notes.append("no model logged: this filtered run does not produce "
                              + ", ".join(missing))
            return
        from kmlc.model.build import log_pipeline_model

        input_data = catalog.load(model.input)
        try:
            info = log_pipeline_model(self.spec, run_id=self.run_id, tracking_uri=self.uri,
                                      registry_uri=self.registry_uri, input_data=input_data)
        except KmlcError:
            raise
        except Exception as exc:
            raise TrackingError(
                f"the pipeline ran, but its model could not be logged to run {self.run_id} "
                f"on {self.uri}: {type(exc).__name__}: {_first_line(exc)}",
                hint="the local outputs are intact; `kmlc export-model --from-local` builds "
                     "the model from them") from exc
        self.model_uri = getattr(info, "model_uri", None) or str(info)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.run_id and self._opening is not None:
            try:  # failed before waiting: the run still has to be closed
                self.wait_open()
            except TrackingError as open_exc:
                if exc is None:
                    raise
                self.notes.append(str(open_exc))
        if self._context is not None:
            self._context.__exit__(None, None, None)
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
            tags["kmlc.error"] = mask_secrets(f"{exc}", self.spec.secrets)[:_MAX_TAG]
            node = getattr(exc, "node", None) or self.failure.node
            if node:
                tags["kmlc.failed_node"] = node
        try:
            try:
                self.status, problem = self.tracker.close_run(self.uri, self.run_id,
                                                              self.status, tags)
            except TrackingError as worker_exc:
                if self.tracker.usable:
                    raise
                # the worker died: close the run from here, as FAILED (logging was cut off)
                from kmlc.tracking.worker import Operations

                self.tracker = Operations()
                self.status, problem = self.tracker.close_run(
                    self.uri, self.run_id, "FAILED" if self.status == "FINISHED"
                    else self.status, {**tags, "kmlc.error": worker_exc.message})
                problem = problem or worker_exc.message
        except Exception as close_exc:
            message = (f"the run {self.run_id} could not be closed as {self.status} on "
                       f"{self.uri}: {close_exc}; what was logged before stays in the run, "
                       "local outputs are intact")
            if exc is None:
                raise TrackingError(message) from close_exc
            self.notes.append(message)
            return
        if problem is not None:
            message = (f"run {self.run_id} closed as {self.status}: {problem}; local "
                       "outputs are intact")
            if exc is None:
                raise TrackingError(message)
            self.notes.append(message)

    def result(self) -> Any:
        from kmlc.run import RunResult

        if self.status == "RUNNING":
            raise RunError("the run was not closed")
        return RunResult(self.run_id, self.status, self.pipeline, self.uri, self.model_uri,
                         tuple(self.notes))
