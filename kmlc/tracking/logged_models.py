"""Tracking stage: MLflow 3 LoggedModels of a run: upload, locate, finalize, describe.

Every function takes the client that names the store: nothing here reads MLflow's
process-wide tracking URI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kmlc.tracking.batch import BATCH_METRICS, BATCH_PARAMS
from kmlc.tracking.retry import with_retry

__all__ = ["attach_run_to_model", "finalize_model", "log_model_folder",
           "logged_model_location"]


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
