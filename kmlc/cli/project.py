"""The commands around the project: init, import-kedro, cache prune, ui."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kmlc.cli import params as opt
from kmlc.cli.output import (
    fail,
    say,
)
from kmlc.errors import ConfigError, KmlcError

__all__ = ["cache", "import_kedro_cmd", "init_cmd", "ui"]


@click.group()
def cache() -> None:
    """The run cache beside the project (`kmlc run --cache`)."""


@cache.command("prune")
@opt.file
@click.option("--max-size", "max_size", type=click.FloatRange(min=0), default=None,
              metavar="MB", help="Also drop the oldest records until the memory values "
              "the others keep fit in MB (their nodes run again next time).")
def cache_prune(file: Path, max_size: float | None) -> None:
    """Remove the memory values the cache keeps that no record needs."""
    from kmlc.cache.prune import prune_cache

    if not file.is_file():
        fail(ConfigError(f"file not found: {file}", file=str(file), code="KMLC101"))
    try:
        result = prune_cache(file.resolve().parent,
                             None if max_size is None else int(max_size * 1024 * 1024))
    except KmlcError as exc:
        fail(exc)
    mb = 1024 * 1024
    say(f"cache: dropped {result.records_dropped} records, removed "
        f"{result.objects_removed} kept values ({result.bytes_freed / mb:.1f} MB); "
        f"{result.objects_kept} kept values left ({result.bytes_kept / mb:.1f} MB)")


@click.command()
@opt.file
@click.option("--host", default=None, help="Host to bind (default: tracking.ui.host).")
@click.option("--port", default=None, type=int, help="Port (default: tracking.ui.port).")
@opt.tracking_uri()
def ui(file: Path, host: str | None, port: int | None, tracking_uri: str | None) -> None:
    """Start the MLflow UI on the project's tracking store."""
    from kmlc.cli import mlflow_ui
    from kmlc.config.loader import load_project
    from kmlc.config.target import tracking_target

    try:
        spec = load_project(file)
        target = tracking_target(spec, tracking_uri)
    except KmlcError as exc:
        fail(exc)
    uri = target.uri
    host, port = host or spec.tracking.ui_host, port or spec.tracking.ui_port
    argv = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
            "--host", host, "--port", str(port)]
    if target.registry_uri:
        argv += ["--registry-store-uri", target.registry_uri]
    sys.exit(mlflow_ui.serve_ui(argv, host, port, lambda url: say(
        f"MLflow UI on {url} (store: {uri})", spec.secrets)))


def _pipeline_map(ctx: click.Context, param: click.Parameter,
                  value: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in opt.comma(value):
        kmlc_name, sep, kedro_name = item.partition("=")
        if not sep or not kmlc_name.strip() or not kedro_name.strip():
            raise click.BadParameter(f"'{item}' is not of the form KMLC_NAME=KEDRO_NAME "
                                     "(for example training=__default__)", ctx=ctx, param=param)
        out[kmlc_name.strip()] = kedro_name.strip()
    return out


@click.command("import-kedro")
@click.argument("project_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@opt.output("The file to write (default: PROJECT_DIR/mlproject.yml).", dir_okay=False)
@opt.env("Kedro configuration environment (default: the project's, usually local).")
@click.option("--pipelines", "pipeline_map", multiple=True, callback=_pipeline_map,
              metavar="KMLC=KEDRO[,...]",
              help="Import Kedro pipeline KEDRO as kmlc pipeline KMLC (e.g. training=__default__).")
@opt.force("Replace an existing output file.")
def import_kedro_cmd(project_dir: Path, output: Path | None, env: str | None,
                     pipeline_map: dict[str, str], force: bool) -> None:
    """Convert a Kedro (+ kedro-mlflow) project into one mlproject.yml."""
    from kmlc.config.diagnostics import format_text
    from kmlc.config.loader import check_project
    from kmlc.importer import import_kedro

    try:
        result = import_kedro(project_dir, output, env=env, pipelines=pipeline_map,
                              force=force)
    except KmlcError as exc:
        fail(exc)
    names = ", ".join(result.pipelines) or "none besides the implicit ones"
    click.echo(f"written: {result.output} ({result.nodes} nodes, {result.datasets} datasets, "
               f"pipelines: {names})")
    if result.unconverted:
        click.echo(f"not converted ({len(result.unconverted)}):")
        for item in result.unconverted:
            click.echo(f"  {item}")
    checked = check_project(result.output)
    if checked.errors or checked.warnings:
        click.echo(format_text(checked.errors, checked.warnings, text=checked.text),
                   err=bool(checked.errors))
    if checked.errors:
        click.echo(f"{result.output} does not validate yet: fix the errors above", err=True)
        sys.exit(1)
    click.echo(f"{result.output}: valid")


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=True, path_type=Path))
@click.option("--name", default=None,
              help="The project's name (default: the folder's name).")
def init_cmd(directory: Path, name: str | None) -> None:
    """Start a new project in DIRECTORY (new or empty): it validates and trains as written."""
    from kmlc.scaffold import init_project

    try:
        result = init_project(directory, name=name)
    except KmlcError as exc:
        fail(exc)
    click.echo(f"project '{result.name}' written to {directory}:")
    for relative in result.files:
        click.echo(f"  {relative}")
    where = "" if Path(directory) == Path(".") else f"cd {directory} && "
    click.echo(f"next: {where}kmlc validate && kmlc run training")
