"""Model stage, the job: the bound model's whole life during a training run.

``model_job`` gives the run a ``ModelJob`` (a Kedro hook) when the run trains the model
and produces every artifact it packs. The run installs it with its other hooks and,
once closed, reads its result (``close``); everything between is here: each artifact
staged as it is saved, the probe on the first rows of ``model.input``, the build and
upload started in the tracking worker as soon as the last artifact is saved (so that
it overlaps the last nodes), the model made READY before the project's hooks see the
end of the run, registered and promoted once the run is FINISHED, discarded when the
run fails or is interrupted. The worker runs the jobs of ``kmlc.model.logged``.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from kedro.framework.hooks import hook_impl

from kmlc.compiler.inference_plan import plan_from_spec
from kmlc.config.secrets import redact_uri
from kmlc.config.sweep import inference_candidates
from kmlc.errors import KmlcError, TrackingError
from kmlc.model.artifacts import stage_artifact
from kmlc.model.logged import (
    LoggedPipelineModel,
    discard_bound_model,
    finish_bound_model,
    prepare_bound_model,
    register_bound_model,
    warm_model_build,
)
from kmlc.model.probe import first_rows, model_input_missing, probe_model
from kmlc.tracking.jobs import Job
from kmlc.tracking.lineage import LineageHook, log_run_inputs

__all__ = ["ModelJob", "model_job", "warm_up"]


def warm_up() -> Job:
    """The tracking worker's warm-up for a run that will build the model
    (``RunSession.warm``): what building needs is imported while the project compiles."""
    return Job(warm_model_build)


def model_job(session: Any, selected: Any, lineage: LineageHook | None = None
              ) -> ModelJob | None:
    """The model job of a training run that produces every artifact its model packs
    (None for any other run, with a note when a filtered run cannot log its model).
    ``lineage``: the run's dataset inputs, logged before the model is READY."""
    spec = session.spec
    if spec.model is None or session.pipeline != spec.model.pipeline:
        return None
    candidates = inference_candidates(spec.nodes, spec.sweep.candidates if spec.sweep else ())
    if len(candidates) > 1:  # each candidate has its own copy of the inference nodes
        session.notes.append(
            "no model logged: the model depends on the candidate (each of "
            f"{', '.join(candidates)} has its own inference nodes); run one with "
            f"--candidate {candidates[0]}, or `kmlc sweep`, which logs the best trial's")
        return None
    # the training outputs it packs (the training inputs it packs are on disk already)
    artifacts = {a.name for a in plan_from_spec(spec).artifacts if a.produced}
    missing = sorted(artifacts - set(selected.all_outputs()))
    if missing:
        session.notes.append("no model logged: this filtered run does not produce "
                             + ", ".join(missing))
        return None
    return ModelJob(session, artifacts, lineage)


class ModelJob:
    """The bound model of a training run, built in the tracking worker.

    It starts as soon as training has saved every artifact the model packs (a Kedro
    ``after_dataset_saved`` hook), so that building it overlaps the last nodes, or at
    the end of the run otherwise; it is made READY when the pipeline ran, registered
    only when the run closed as FINISHED (``close``), and marked FAILED when it did not.
    The inference plan's probe on the first rows of ``model.input`` (as training read
    them: ``after_dataset_loaded``) runs here, where the node modules are loaded; the
    worker, which has MLflow loaded, builds and logs the model from it.

    As a context manager around the run's nodes: leaving it on an error (a node failed,
    Ctrl-C) discards the model, since a run that does not finish leaves no model.
    """

    def __init__(self, session: Any, artifacts: set[str], lineage: LineageHook | None = None):
        self.session = session
        self.waiting = set(artifacts)
        self.job: int | None = None
        self.model_id: str | None = None  # once prepared and READY
        self.logged: LoggedPipelineModel | None = None  # the READY model
        self._lock = threading.Lock()
        spec = session.spec
        # a declared dataset: its first rows as read (a memory input has no example)
        self._input = spec.model.input if spec.model.input in spec.datasets else None
        self._sample: Any = None
        self._probe_error: Exception | None = None
        # this run's copies of the artifacts it saved, made as each is saved
        self._folder: Path | None = None
        self.staged: dict[str, str] = {}
        self._logged: Any = None  # what finish() returned, or the error it raised
        self._error: BaseException | None = None
        self._finished = False
        self.lineage = lineage  # the run's dataset inputs, logged before READY

    # ------------------------------------------------------------ Kedro's hooks
    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        if dataset_name == self._input and self._sample is None:
            self._sample = first_rows(data)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        with self._lock:
            # None: the value is not here (a Dask worker saved it, the cache restored it)
            if dataset_name in self.waiting and data is not None:
                self._stage(dataset_name, data)
            self.waiting.discard(dataset_name)
            if not self.waiting and self.job is None:
                self._start()

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self) -> None:
        """The model is logged before the project's hooks see the end of the run, as
        kedro-mlflow's MlflowHook does: a project hook that registers or loads the model
        in its ``after_pipeline_run`` finds it. Its error is raised once the hooks ran."""
        # kept in self._error: the run reports it after the hooks (``result``)
        with contextlib.suppress(BaseException):
            self.result()

    # ------------------------------------------------------------ the run's side
    def __enter__(self) -> ModelJob:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if error is not None:
            self.discard()

    def result(self) -> LoggedPipelineModel | None:
        """The READY model: ``finish()`` once, its result or error kept for later calls."""
        if not self._finished:
            self._finished = True
            try:
                self._logged = self.finish()
            except BaseException as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._logged

    def close(self, status: str) -> LoggedPipelineModel | None:
        """The run closed as ``status``: a FINISHED run's READY model registered (and
        ``model.promote`` applied), any other run's model discarded. The model, if any."""
        if status != "FINISHED":
            self.discard()  # e.g. closed as FAILED: its parameters could not be logged
            return None
        return self.register()

    # ------------------------------------------------------------ the steps
    def _stage(self, name: str, data: Any) -> None:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="kmlc-artifacts-"))
        try:
            self.staged[name] = str(stage_artifact(self.session.spec, name, data,
                                                   self._folder))
        except Exception as exc:  # the model reads the catalog's file, as without a copy
            self.session.notes.append(f"the model packs '{name}' from its file: it could "
                                      f"not be copied as saved ({type(exc).__name__}: {exc})")

    def _start(self) -> None:
        s = self.session
        probe = None
        if self._probe_error is not None:
            return
        if self._sample is None and self._input is not None:
            # training did not read model.input (kedro-mlflow's input_name for data only
            # inference sees): the worker loads it from the catalog, if it is there
            why = model_input_missing(s.spec)
            if why is not None:
                s.notes.append(f"the model has no signature and no input example: its input "
                               f"'{self._input}' could not be read ({why})")
        if self._sample is not None:  # else the worker loads model.input itself
            try:
                probe = probe_model(s.spec, self._sample, self.staged)
            except Exception as exc:  # reported when the model is due, as the worker's
                self._probe_error = exc
                return
        self.job = s.tracker.start_job(prepare_bound_model, {
            "spec": s.spec, "run_id": s.run_id, "tracking_uri": s.uri, "probe": probe,
            "staged": dict(self.staged)})

    def _call(self, function: Any, **kwargs: Any) -> Any:
        tracker = self.session.tracker
        return tracker.wait_job(tracker.start_job(function, kwargs))

    def finish(self) -> LoggedPipelineModel | None:
        """Make the model READY in the run (once), with the run's params and metrics; the
        run's dataset inputs (``self.lineage``) are logged first, once the model's job is
        done, and named on its metrics. It is registered after the run closes as
        FINISHED (``close``)."""
        s = self.session
        with self._lock:
            if self.logged is not None or self.job == -1:
                return self.logged
            if self.job is None and self._probe_error is None:
                self._start()
            job, self.job = self.job, -1
        try:
            if self._probe_error is not None:
                if self.lineage is not None:
                    log_run_inputs(s, self.lineage)
                error = self._probe_error
                raise TrackingError(error.message if isinstance(error, KmlcError)
                                    else f"{type(error).__name__}: {error}") from error
            assert job is not None
            self.model_id = s.tracker.wait_job(job)
            datasets = log_run_inputs(s, self.lineage) if self.lineage is not None else []
            self.logged = self._call(finish_bound_model, spec=s.spec, run_id=s.run_id,
                                     tracking_uri=s.uri, registry_uri=s.registry_uri,
                                     model_id=self.model_id, register=False,
                                     datasets=list(datasets))
            return self.logged
        except TrackingError as exc:
            raise TrackingError(
                f"the pipeline ran, but its model could not be logged to run {s.run_id} on "
                f"{redact_uri(s.uri)}: {exc.message}",
                hint="the local outputs are intact; `kmlc export-model --from-local` builds "
                     "the model from them") from exc
        finally:
            self._clean()

    def register(self) -> LoggedPipelineModel | None:
        """The run closed as FINISHED: register its READY model and apply model.promote."""
        s = self.session
        if self.logged is None or s.status != "FINISHED" or not s.spec.model.registered_name:
            return self.logged
        try:
            return self._call(register_bound_model, spec=s.spec, run_id=s.run_id,
                              tracking_uri=s.uri, registry_uri=s.registry_uri,
                              model_id=self.model_id)
        except TrackingError as exc:
            raise TrackingError(
                f"run {s.run_id} FINISHED and its model is logged ({self.logged.model_uri}), "
                f"but it could not be registered: {exc.message}",
                hint=f"`kmlc export-model --run-id {s.run_id} --register "
                     f"{s.spec.model.registered_name}` registers it") from exc

    def discard(self) -> None:
        """The run failed or was interrupted: a model being built, or already READY, is
        marked FAILED and deleted (a run that did not finish leaves no model)."""
        with self._lock:
            job, self.job = self.job, -1
        s = self.session
        try:
            with contextlib.suppress(Exception):  # the run's own error matters more
                model_id = self.model_id
                if model_id is None and job is not None and job >= 0:
                    model_id = s.tracker.wait_job(job)
                if model_id is not None:
                    self._call(discard_bound_model, run_id=s.run_id, tracking_uri=s.uri,
                               model_id=model_id)
                self.logged = None
        finally:
            self._clean()

    def _clean(self) -> None:
        """Remove this run's copies of its artifacts (the model has what it needs)."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
