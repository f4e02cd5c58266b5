"""The commands on the bound model: promote, export-model, predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kmlc.cli import params as opt
from kmlc.cli.output import (
    fail,
    report_export,
)
from kmlc.config.secrets import Secrets
from kmlc.errors import KmlcError

__all__ = ["export_model_cmd", "predict", "promote"]


@click.command()
@opt.file
@click.option("--run-id", required=True, help="The training run whose model to promote.")
@opt.tracking_uri()
def promote(file: Path, run_id: str, tracking_uri: str | None) -> None:
    """Apply model.promote's gate to an earlier run; move the alias if it passes.

    A gate that does not pass is a decision, printed, with exit code 0.
    """
    from kmlc.config.loader import load_project
    from kmlc.model.promote import promote_run

    try:
        decision = promote_run(load_project(file, tracking_uri=tracking_uri), run_id)
    except KmlcError as exc:
        fail(exc)
    click.echo(f"promotion: {decision.line()}")


@click.command("export-model")
@opt.project
@click.option("--run-id", default=None, help="The training run whose model to export.")
@click.option("--latest", is_flag=True, help="The latest finished training run with a model.")
@click.option("--from-local", is_flag=True,
              help="Build the model from the artifacts on disk, without a training run.")
@opt.output("Write an MLflow model folder here (atomically).", file_okay=False)
@click.option("--register", default=None, metavar="NAME", help="Register a model version.")
@click.option("--alias", default=None, help="Point this alias at the registered version.")
@opt.force("Replace a non-empty --output folder.")
@click.option("--no-check", is_flag=True,
              help="Skip loading the result in a fresh process before writing it.")
@opt.tracking_uri()
def export_model_cmd(file: Path, env: str | None, params: tuple[str, ...], run_id: str | None,
                     latest: bool, from_local: bool, output: Path | None, register: str | None,
                     alias: str | None, force: bool, no_check: bool,
                     tracking_uri: str | None) -> None:
    """Export the bound inference model to a folder and/or the model registry."""
    from kmlc.config.loader import load_project
    from kmlc.model.export import export_model

    if sum(map(bool, (run_id, latest, from_local))) != 1:
        raise click.UsageError("give exactly one of --run-id, --latest, --from-local")
    if alias and not register:
        raise click.UsageError("--alias needs --register NAME")
    secrets = Secrets()
    try:
        spec = load_project(file, env=env, params=params, tracking_uri=tracking_uri)
        secrets = spec.secrets
        with secrets.masked_logs():
            result = export_model(spec, run_id=run_id, latest=latest, from_local=from_local,
                                  output=output, register=register, alias=alias, force=force,
                                  check=not no_check)
    except KmlcError as exc:
        fail(exc, secrets)
    report_export(result, alias)


@click.command()
@click.option("-m", "--model-uri", required=True,
              help="A model folder or URI (runs:/…, models:/name@alias).")
@click.option("-i", "--input", "input_path", required=True, help="Input file.")
@click.option("-o", "--output", "output_path", default=None,
              help="Output file (default: CSV on stdout).")
@click.option("--input-type", default=None,
              help="kedro-datasets type of the input (default: from the file suffix).")
@click.option("--output-type", default=None,
              help="kedro-datasets type of the output (default: from the file suffix).")
@opt.tracking_uri("Tracking store for runs:/ and models:/ URIs.")
@click.option("--registry-uri", default=None,
              help="Model registry for models:/ URIs and the model's own registry calls "
                   "(default: MLFLOW_REGISTRY_URI, else the tracking store).")
@click.option("--param", "model_params", multiple=True, metavar="KEY=VALUE",
              help="Override an inference parameter (repeatable).")
@opt.force("Replace an existing --output file.")
@opt.verbose("Full tracebacks.")
def predict(model_uri: str, input_path: str, output_path: str | None, input_type: str | None,
            output_type: str | None, tracking_uri: str | None, registry_uri: str | None,
            model_params: tuple[str, ...], force: bool, verbose: bool) -> None:
    """Batch prediction on a file with any pyfunc model."""
    import os

    from kmlc.model.predict import check_output, predict_file

    # the model's own MLflow calls (a step loading models:/…) go to these stores too
    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    if registry_uri:
        os.environ["MLFLOW_REGISTRY_URI"] = registry_uri
    overrides = _model_params(model_params)
    try:
        if output_path:
            check_output(output_path, force)  # before anything is loaded
        result = predict_file(model_uri, input_path, output_path, input_type=input_type,
                              output_type=output_type, params=overrides or None)
    except KmlcError as exc:
        if verbose and exc.__cause__ is not None:
            import traceback

            click.echo("".join(traceback.format_exception(exc.__cause__)).rstrip(), err=True)
        fail(exc)
    if output_path:
        click.echo(f"written: {output_path} ({len(result)} rows)", err=True)
    elif hasattr(result, "to_csv"):
        click.echo(result.to_csv(index=False), nl=False)
    else:
        click.echo(str(result))


def _model_params(items: tuple[str, ...]) -> dict[str, Any]:
    """``--param KEY=VALUE`` as a mapping, each value a YAML scalar (else the text)."""
    from kmlc.config.source import load_value

    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise click.UsageError(f"--param {item!r}: expected KEY=VALUE")
        try:
            overrides[key] = load_value(raw) if raw else ""
        except ValueError:
            overrides[key] = raw
    return overrides
