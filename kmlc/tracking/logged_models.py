"""Tracking stage: MLflow 3 LoggedModels of a run: upload, locate, finalize, describe.

Every function takes the client that names the store: nothing here reads MLflow's
process-wide tracking URI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kmlc.tracking.batch import BATCH_METRICS, BATCH_PARAMS
from kmlc.tracking.retry import with_retry

__all__ = ["attach_run_to_model", "create_logged_model", "fail_logged_model", "finalize_model",
           "log_model_folder", "log_model_steps", "logged_model_location", "staged_model",
           "upload_logged_model"]


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
    return log_model_steps(
        run_id, name, save,
        create=lambda: create_logged_model(client, run_id, name, model_type),
        upload=lambda model_id, folder: upload_logged_model(client, run_id, model_id, folder,
                                                            finalize=finalize),
        fail=lambda model_id: fail_logged_model(client, model_id))


def log_model_steps(run_id: str, name: str, save: Callable[[str, Any], None], *,
                    create: Callable[[], str], upload: Callable[[str, str], None],
                    fail: Callable[[str], None]) -> str:
    """The sequence of ``log_model_folder`` with its three steps given: ``create()`` the
    LoggedModel, ``save`` its files into a staged folder, ``upload(model_id, folder)``;
    on any error ``fail(model_id)`` (its own error ignored: the first matters more) and
    the error raised. The steps are this process's client calls, or the tracking
    worker's, which has the store open."""
    model_id = create()
    try:
        with staged_model(run_id, model_id, name, save) as staged:
            upload(model_id, staged)
    except BaseException:
        with contextlib.suppress(Exception):
            fail(model_id)
        raise
    return model_id


def create_logged_model(client: Any, run_id: str, name: str,
                        model_type: str | None = None) -> str:
    """A PENDING LoggedModel ``name`` of run ``run_id`` (in the run's experiment); its id."""
    run = with_retry(client.get_run, run_id)
    logged = with_retry(client.create_logged_model, run.info.experiment_id, name=name,
                        source_run_id=run_id, model_type=model_type)
    return str(logged.model_id)


@contextlib.contextmanager
def staged_model(run_id: str, model_id: str, name: str,
                 save: Callable[[str, Any], None]) -> Iterator[str]:
    """A temporary folder holding the model ``save(path, mlflow_model)`` writes, for the
    LoggedModel ``model_id``; removed when the block ends."""
    import tempfile

    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="kmlc-stage-") as tmp:
        staged = str(Path(tmp) / "model")
        save(staged, Model(run_id=run_id, model_id=model_id, artifact_path=name))
        yield staged


def upload_logged_model(client: Any, run_id: str, model_id: str, folder: str, *,
                        finalize: bool = True) -> None:
    """Upload ``folder`` as LoggedModel ``model_id``'s files; then (``finalize``) attach it
    to run ``run_id`` and mark it READY."""
    with_retry(client.log_model_artifacts, model_id, folder)
    if finalize:
        finalize_model(client, run_id, model_id)


def fail_logged_model(client: Any, model_id: str) -> None:
    """Mark LoggedModel ``model_id`` FAILED, quietly: the error that failed it matters more."""
    from mlflow.entities import LoggedModelStatus

    with contextlib.suppress(Exception):
        client.finalize_logged_model(model_id, LoggedModelStatus.FAILED)


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
