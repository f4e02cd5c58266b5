"""Run stage, MLflow side: the lifetime of one tracked run.

``TrackedRun`` opens the run (experiment created or restored, tags, the rendered
``mlproject.yml`` as an artifact), exposes its id to the datasets through the
environment, logs the bound model at the end of a training run, and closes the run
with the status that matches what happened. Nothing logged before a failure is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from kmlc.errors import KmlcError, RunError, TrackingError
from kmlc.spec import ProjectSpec, mask_secrets

__all__ = ["TrackedRun"]

_MAX_TAG = 5000


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else ""


class TrackedRun:
    """Context manager around one MLflow run; see the module docstring."""

    def __init__(self, spec: ProjectSpec, pipeline: str, options: Any,
                 tags: Callable[[ProjectSpec, str, Any], dict[str, str]]):
        from kmlc.hooks import FailureHook

        self.spec = spec
        self.pipeline = pipeline
        self.options = options
        self._tags = tags
        self.failure = FailureHook()
        self.client: Any = None
        self.run_id = ""
        self.uri = ""
        self.model_uri: str | None = None
        self.notes: list[str] = []
        self.status = "RUNNING"
        self._context: Any = None

    def __enter__(self) -> TrackedRun:
        import mlflow

        from kmlc import tracking
        from kmlc.run import _quiet

        _quiet(self.options.verbose)
        spec = self.spec
        self.uri = tracking.resolve_tracking_uri(self.options.tracking_uri or spec.tracking.uri,
                                                 spec.root)
        tracking.configure_http(spec.tracking.http_max_retries, spec.tracking.http_timeout)
        tracking.check_reachable(self.uri, spec.tracking.http_timeout)
        registry = spec.tracking.registry_uri
        mlflow.set_tracking_uri(self.uri)
        if registry:
            mlflow.set_registry_uri(registry)
        try:
            self.client = tracking.open_client(self.uri, registry)
            experiment_id = tracking.ensure_experiment(
                self.client, spec.tracking.experiment, tracking.local_artifact_root(self.uri))
            run_name = self.options.run_name or spec.tracking.run_name or self.pipeline
            run = tracking.with_retry(self.client.create_run, experiment_id, run_name=run_name,
                                      tags=self._tags(spec, self.pipeline, self.options))
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"cannot open a run on {self.uri}: {exc}") from exc
        self.run_id = run.info.run_id
        self._context = tracking.tracking_context(self.run_id, self.uri, experiment_id)
        self._context.__enter__()
        tracking.with_retry(self.client.log_text, self.run_id, spec.rendered_text,
                            "mlproject.yml")
        return self

    def finish_model(self, selected: Any, catalog: Any) -> None:
        """Log the bound inference model at the end of a training run."""
        model = self.spec.model
        if model is None or self.pipeline != "training":
            return
        from kmlc.binding import plan_from_spec

        plan = plan_from_spec(self.spec)
        produced = selected.all_outputs()
        missing = sorted(a.name for a in plan.artifacts if a.name not in produced)
        if missing:
            self.notes.append("no model logged: this filtered run does not produce "
                              + ", ".join(missing))
            return
        from kmlc.export import log_pipeline_model

        input_data = catalog.load(model.input)
        try:
            info = log_pipeline_model(self.spec, run_id=self.run_id, input_data=input_data)
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
        from kmlc import tracking

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
            for key, value in tags.items():
                tracking.with_retry(self.client.set_tag, self.run_id, key, value)
            tracking.with_retry(self.client.set_terminated, self.run_id, self.status)
        except Exception as close_exc:
            message = (f"the run {self.run_id} could not be closed as {self.status} on "
                       f"{self.uri}: {close_exc}; what was logged before stays in the run, "
                       "local outputs are intact")
            if exc is None:
                raise TrackingError(message) from close_exc
            self.notes.append(message)

    def result(self) -> Any:
        from kmlc.run import RunResult

        if self.status == "RUNNING":
            raise RunError("the run was not closed")
        return RunResult(self.run_id, self.status, self.pipeline, self.uri, self.model_uri,
                         tuple(self.notes))
