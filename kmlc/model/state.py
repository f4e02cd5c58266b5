"""Model stage: is a logged model whole? A model is used (exported, predicted with) only
when it is READY and the run that logged it FINISHED.

A run killed or failed while its model was being built leaves a LoggedModel PENDING (or
FAILED), with some of its files; a run killed at a bad moment (SIGKILL) may leave a READY
model in a KILLED run. Neither is served as if good: ``check_usable`` names the model's
and the run's state, and what to do instead.
"""

from __future__ import annotations

from typing import Any

from kmlc.errors import ExportError
from kmlc.tracking.retry import with_retry

__all__ = ["check_model_uri", "check_run_model", "run_logged_model"]

CODE = "KMLC713"
_HINT = ("use the model of a FINISHED training run (export-model --latest), run training "
         "again, or build the model from the local outputs: export-model --from-local")


def run_logged_model(client: Any, run_id: str, name: str) -> Any | None:
    """Run ``run_id``'s LoggedModel ``name``, whatever its status (None if it has none).

    A model is linked to its run's outputs only once READY; a half-built one is found
    by its source run.
    """
    run = with_retry(client.get_run, run_id)
    found = with_retry(client.search_logged_models, [run.info.experiment_id],
                       filter_string=f"source_run_id = '{run_id}' AND name = '{name}'",
                       order_by=[{"field_name": "creation_timestamp", "ascending": False}])
    return found[0] if found else None


def _status(value: Any) -> str:
    return str(getattr(value, "name", None) or value).rpartition(".")[2]


def _check(what: str, model: Any | None, run: Any) -> None:
    run_status = run.info.status
    model_status = _status(model.status) if model is not None else None
    if run_status == "FINISHED" and model_status in (None, "READY"):
        return
    model_part = (f"its model {model.model_id} is {model_status}" if model is not None
                  else "it has no model")
    raise ExportError(f"{what}: run {run.info.run_id} is {run_status} and {model_part}; kmlc "
                      "uses only a READY model of a FINISHED run (a run that did not finish "
                      "may have left it half-built)", code=CODE, hint=_HINT)


def check_run_model(client: Any, run_id: str, name: str) -> Any | None:
    """Refuse run ``run_id``'s model ``name`` unless the run FINISHED and it is READY;
    the model checked (None where the run logged none)."""
    run = with_retry(client.get_run, run_id)
    model = run_logged_model(client, run_id, name)
    _check(f"runs:/{run_id}/{name}", model, run)
    return model


def check_model_uri(client: Any, uri: str) -> None:
    """Refuse a ``models:/`` or ``runs:/`` URI whose model or run is not whole.

    ``models:/m-ID`` (a LoggedModel), ``models:/NAME/VERSION`` and ``models:/NAME@ALIAS``
    (a registered version, through its model or run), ``runs:/RUN/PATH``. Anything else
    (a folder, another scheme) is not checked.
    """
    from mlflow.exceptions import MlflowException

    try:
        if uri.startswith("runs:/"):
            run_id, _, path = uri[len("runs:/"):].partition("/")
            check_run_model(client, run_id, path.strip("/").split("/")[0] or "model")
            return
        if not uri.startswith("models:/"):
            return
        ref = uri[len("models:/"):].strip("/")
        model = None
        if ref.startswith("m-") and "/" not in ref and "@" not in ref:
            model = with_retry(client.get_logged_model, ref)
            run_id = model.source_run_id
        else:
            name, at, alias = ref.partition("@")
            if at:
                version = with_retry(client.get_model_version_by_alias, name, alias)
            else:
                name, _, number = ref.partition("/")
                if not number.isdigit():
                    return  # a stage (models:/name/Production): MLflow resolves it
                version = with_retry(client.get_model_version, name, number)
            if getattr(version, "model_id", None):
                model = with_retry(client.get_logged_model, version.model_id)
            run_id = version.run_id
        if not run_id:
            if model is not None and _status(model.status) != "READY":
                raise ExportError(f"{uri}: its model {model.model_id} is "
                                  f"{_status(model.status)}", code=CODE, hint=_HINT)
            return
        _check(uri, model, with_retry(client.get_run, run_id))
    except MlflowException:
        return  # a URI MLflow cannot resolve: loading it reports that, in its own words
