"""Model stage, the logged model: the bound model's life in its run's store.

These are jobs of the tracking worker (``kmlc.tracking.jobs``), where MLflow is loaded:
``warm_model_build`` loads what building needs while the project compiles;
``prepare_bound_model`` builds the pyfunc folder (``kmlc.model.build``) and uploads it,
PENDING, while the last training nodes run; ``finish_bound_model`` makes it READY with
the run's params and metrics; ``register_bound_model`` registers it once the run is
FINISHED (``kmlc.model.registry``) and applies ``model.promote``;
``discard_bound_model`` marks it FAILED and deletes it. ``kmlc.model.job`` drives them
during a run; ``log_pipeline_model`` does all at once for a run that already ended.
Every MLflow client here comes from ``kmlc.tracking.client.open_client`` with explicit
URIs; nothing reads MLflow's process-wide tracking URI.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kmlc.config.functions import code_path
from kmlc.config.spec import ProjectSpec
from kmlc.errors import ExportError
from kmlc.model.build import save_pipeline_model
from kmlc.model.closure import distribution_table
from kmlc.model.probe import Probe, load_model_input
from kmlc.model.promote import promote_version
from kmlc.model.registry import register_model
from kmlc.tracking.client import open_client
from kmlc.tracking.jobs import job
from kmlc.tracking.logged_models import attach_run_to_model, finalize_model, log_model_folder
from kmlc.tracking.retry import with_retry

__all__ = [
    "LoggedPipelineModel",
    "discard_bound_model",
    "finish_bound_model",
    "log_pipeline_model",
    "prepare_bound_model",
    "register_bound_model",
    "warm_model_build",
]

# the warm-up and the model job run on threads of their own and both put the code
# folders on sys.path for a while: one at a time
_BUILDING = threading.Lock()


@dataclass(frozen=True)
class LoggedPipelineModel:
    model_uri: str
    run_uri: str
    model_id: str
    registered_version: str | None = None
    promotion: Any = None  # kmlc.model.promote.Promotion, with model.promote


@job
def log_pipeline_model(spec: ProjectSpec, *, run_id: str, tracking_uri: str,
                       registry_uri: str | None = None, input_data: Any | None = None
                       ) -> LoggedPipelineModel:
    """Log the inference pipeline of ``spec`` into run ``run_id`` as an MLflow 3 LoggedModel.

    The model is saved to a staging folder, scrubbed of local paths, then uploaded;
    it is marked READY only once every file is in the store (FAILED otherwise).
    """
    model_id = prepare_bound_model(spec, run_id=run_id, tracking_uri=tracking_uri,
                                   input_data=input_data)
    return finish_bound_model(spec, run_id=run_id, tracking_uri=tracking_uri,
                              registry_uri=registry_uri, model_id=model_id)


@job
def warm_model_build() -> None:
    """Load what building the bound model will need, while the project compiles and runs.

    Run in the tracking worker before the project is compiled: MLflow's model modules,
    the table of installed distributions and MLflow's own (MLflow reads every installed
    distribution's metadata once per process to check a model's requirements), so that
    what is left after training saved the artifacts is the model itself. The inference
    nodes' modules are not needed here: the process that ran training probes the plan
    (``probe_model``). The model job waits for the warm-up (one lock) rather than doing
    the same work beside it.
    """
    with _BUILDING:
        import mlflow.models  # lazy: the point of the warm-up
        import mlflow.pyfunc  # noqa: F401

        with contextlib.suppress(Exception):  # a later MLflow may move it: only slower
            from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

            warn_dependency_requirement_mismatches(["mlflow"])
        distribution_table()



@job
def prepare_bound_model(spec: ProjectSpec, *, run_id: str, tracking_uri: str,
                        input_data: Any | None = None, probe: Probe | None = None,
                        staged: Mapping[str, str] | None = None) -> str:
    """Build and upload the bound model, left PENDING; returns its model id.

    The expensive part of logging the model (the signature, the requirements, the
    upload), done as soon as training has saved every artifact the model packs, while
    the last training nodes still run; ``finish_bound_model`` makes it READY at the end
    of a successful run, ``discard_bound_model`` marks it FAILED otherwise. ``probe``:
    the inference plan's run on the first rows, done by the caller (``probe_model``);
    ``staged``: this run's copies of the artifacts it saved (``stage_artifact``).
    """
    model_spec = spec.model
    assert model_spec is not None
    with _BUILDING, code_path(spec.code):  # the node modules, for the signature
        if input_data is None and probe is None:
            input_data = load_model_input(spec)
        return log_model_folder(
            open_client(tracking_uri), run_id, model_spec.artifact_path,
            lambda path, mlflow_model: save_pipeline_model(spec, Path(path), input_data,
                                                           mlflow_model, probe, staged),
            model_type="kmlc-pipeline", finalize=False)


@job
def finish_bound_model(spec: ProjectSpec, *, run_id: str, tracking_uri: str,
                       registry_uri: str | None, model_id: str,
                       register: bool = True,
                       datasets: Sequence[tuple[str, str]] = ()) -> LoggedPipelineModel:
    """Give the prepared model its run's parameters and metrics, mark it READY in its run
    and (``register``) register it if the file says so. A tracked run passes
    ``register=False`` and calls ``register_bound_model`` once the run is closed as
    FINISHED: a run that is interrupted or fails after its model is READY registers
    nothing, moves no alias.

    ``datasets``: ``(name, digest)`` of the run's dataset inputs (``kmlc.tracking.lineage``);
    the model's metrics name ``model.input`` among them, else the only one.
    """
    model_spec = spec.model
    assert model_spec is not None
    client = open_client(tracking_uri, registry_uri)
    named = dict(datasets)
    link = ((model_spec.input, named[model_spec.input]) if model_spec.input in named
            else datasets[0] if len(datasets) == 1 else None)
    attach_run_to_model(client, run_id, model_id, link)
    finalize_model(client, run_id, model_id)
    logged = LoggedPipelineModel(f"models:/{model_id}",
                                 f"runs:/{run_id}/{model_spec.artifact_path}", model_id)
    if not register:
        return logged
    return register_bound_model(spec, run_id=run_id, tracking_uri=tracking_uri,
                                registry_uri=registry_uri, model_id=model_id)


@job
def register_bound_model(spec: ProjectSpec, *, run_id: str, tracking_uri: str,
                         registry_uri: str | None, model_id: str) -> LoggedPipelineModel:
    """Register the READY model of FINISHED run ``run_id`` (``model.registered_name``) and
    apply ``model.promote``; any other run is refused."""
    model_spec = spec.model
    assert model_spec is not None
    client = open_client(tracking_uri, registry_uri)
    status = with_retry(client.get_run, run_id).info.status
    if status != "FINISHED":
        raise ExportError(f"run {run_id} is {status}: only a FINISHED run registers its model "
                          "or moves an alias")
    model_uri = f"models:/{model_id}"
    version = None
    promotion = None
    if model_spec.registered_name:
        version = register_model(client, model_uri, model_spec.registered_name,
                                 model_spec.alias)
        if model_spec.promote is not None:
            promotion = promote_version(client, model_spec.promote,
                                        model_spec.registered_name, version, run_id,
                                        spec.sweep.candidates if spec.sweep else ())
    return LoggedPipelineModel(model_uri, f"runs:/{run_id}/{model_spec.artifact_path}",
                               model_id, version, promotion)


@job
def discard_bound_model(*, run_id: str, tracking_uri: str, model_id: str) -> None:
    """The run failed (or was interrupted) after the model was prepared, or made READY:
    the model is marked FAILED, deleted.

    A failed run logs no model, as when nothing had been prepared yet.
    """
    client = open_client(tracking_uri)
    finalize_model(client, run_id, model_id, ok=False)
    with_retry(client.delete_logged_model, model_id)

