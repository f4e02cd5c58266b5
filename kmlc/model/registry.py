"""Model stage, the registry: a logged model registered as a new version of a name.

The one place kmlc registers a model version (a tracked run's model, ``export-model
--register``, ``kmlc promote`` on a run never registered). Moving an alias on a gate is
``kmlc.model.promote``'s; this module imports nothing else of the model.
"""

from __future__ import annotations

from typing import Any

from kmlc.tracking.retry import with_retry

__all__ = ["register_model"]


def register_model(client: Any, model_uri: str, name: str, alias: str | None = None) -> str:
    """Register ``model_uri`` as a new version of ``name`` in ``client``'s registry.

    ``client`` carries both URIs: the tracking store the model was logged to and the
    registry it is registered in (``tracking.registry_uri``, when set). Where the two
    differ, the version's source is the model's artifact location, which the registry
    can reach without the tracking store. Returns the new version number.
    """
    from mlflow.exceptions import MlflowException  # lazy: MLflow, only when registering

    try:
        with_retry(client.create_registered_model, name)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    run_id: str | None = None
    model_id: str | None = None
    source = model_uri
    if model_uri.startswith("runs:/"):  # a LoggedModel of that run by that name, if any
        run_id, _, artifact_path = model_uri[len("runs:/"):].partition("/")
        run = with_retry(client.get_run, run_id)
        source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"
        for output in (run.outputs.model_outputs if run.outputs else None) or []:
            logged = with_retry(client.get_logged_model, output.model_id)
            if logged.name == artifact_path:
                model_uri = f"models:/{logged.model_id}"
    if model_uri.startswith("models:/"):
        model_id = model_uri[len("models:/"):].split("/")[0]
        logged = with_retry(client.get_logged_model, model_id)
        run_id = logged.source_run_id
        # the model's own location, not models:/ID: another registry cannot resolve ids of
        # this tracking store, and MLflow's database registry resolves them through the
        # process-wide tracking URI, not the client's (a run in a test or a notebook whose
        # global URI is another store fails); model_id still links the version to it
        source = logged.artifact_location
    version = with_retry(client.create_model_version, name, source, run_id=run_id,
                         model_id=model_id)
    if alias:
        with_retry(client.set_registered_model_alias, name, alias, version.version)
    return str(version.version)

