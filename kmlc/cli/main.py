"""The commands: each parses its options (declared once, in ``params``), calls a function
of the Python API and prints its result or its error (``output``).

Each command imports its machinery inside the function, so ``kmlc validate`` never
imports MLflow and ``kmlc run`` refuses a mistake of the file or of its options before
Kedro or MLflow is imported.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from kmlc import __version__
from kmlc.cli import params as opt
from kmlc.cli.output import (
    fail,
    fail_after_run,
    fail_node,
    interrupted,
    report_export,
    report_run,
    report_sweep,
    report_validation,
    say,
)
from kmlc.config.secrets import Secrets
from kmlc.config.selection import Selection
from kmlc.errors import ConfigError, KmlcError, RunInterrupted

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kmlc")
def main() -> None:
    """kmlc: machine-learning projects on Kedro and MLflow from one mlproject.yml."""


@main.command()
@opt.project
@opt.fmt(["text", "json", "github"], default="text",
         help="Output format (github: workflow annotations at the file's lines).")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--excerpt/--no-excerpt", default=None,
              help="Show the offending lines (default: on a terminal).")
@opt.runner("Check for this runner (default: the file's).")
@opt.address("Check for this Dask scheduler (a remote one needs shared storage).")
def validate(file: Path, env: str | None, params: tuple[str, ...], fmt: str, strict: bool,
             excerpt: bool | None, runner: str | None, address: str | None) -> None:
    """Check the file: schema, names, graph, functions and model binding."""
    from kmlc.config.loader import check_project

    opt.dask_address(runner, address)
    result = check_project(file, env=env, params=params, runner=runner, address=address)
    sys.exit(report_validation(result, file, fmt, strict, excerpt))


@main.command()
@opt.pipeline(required=False)
@opt.project
@opt.output("Write the JSON manifest to this file (e.g. target/manifest.json) "
            "and print only where it went.", dir_okay=False)
@opt.fmt(["text", "json"], help="Output format (default: text on a terminal, json otherwise).")
@click.option("--sweep", "show_sweep", is_flag=True,
              help="Show how `kmlc sweep` splits the pipeline: what runs once, per trial.")
def plan(pipeline: str | None, file: Path, env: str | None, params: tuple[str, ...],
         output: Path | None, fmt: str | None, show_sweep: bool) -> None:
    """Show what `kmlc run` would do, as a manifest, without running anything."""
    from kmlc.config.loader import load_project
    from kmlc.manifest import build_manifest, format_summary, manifest_json

    try:
        spec = load_project(file, env=env, params=params)
        if show_sweep:
            click.echo(_sweep_plan(spec, pipeline))
            return
        manifest = build_manifest(spec, pipeline)
    except KmlcError as exc:
        fail(exc)
    if output is not None:  # the file is the manifest; the terminal gets where it went
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(manifest_json(manifest), encoding="utf-8")
        click.echo(f"manifest written to {output} (pipelines: {', '.join(manifest['pipelines'])})")
    elif (fmt or ("text" if sys.stdout.isatty() else "json")) == "json":
        click.echo(manifest_json(manifest), nl=False)
    else:
        click.echo(format_summary(manifest, _cache_states(spec, manifest)))


def _sweep_plan(spec: Any, pipeline: str | None) -> str:
    """``kmlc plan --sweep``: how the sweep splits ``pipeline``, and how many trials."""
    from kmlc.compiler.project import compile_project
    from kmlc.config.functions import code_path
    from kmlc.sweep.factor import format_plan, plan_sweep
    from kmlc.sweep.loop import sweep_pipeline
    from kmlc.sweep.space import search_for

    if spec.sweep is None:
        raise KmlcError("the file has no `sweep:` section", code="KMLC630")
    name = sweep_pipeline(spec, pipeline)
    with code_path(spec.code):
        split = plan_sweep(spec, spec.sweep, name, compile_project(spec).pipeline(name))
    total = (search_for(spec.sweep).total if spec.sweep.method != "optuna"
             else spec.sweep.trials)
    return format_plan(split, spec.sweep, total)


def _cache_states(spec: Any, manifest: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per pipeline of the manifest, what `kmlc run --cache` would do with each node, when
    the project has a cache index (a text summary only: the manifest stays reproducible)."""
    from kmlc.cache import INDEX_FILE, cache_state

    if not (spec.root / INDEX_FILE).is_file():
        return {}
    from kmlc.compiler.project import compile_project
    from kmlc.config.functions import code_path

    with code_path(spec.code):
        compiled = compile_project(spec)
        return {name: cache_state(spec, compiled.pipeline(name))
                for name in manifest["pipelines"]}


@main.command()
@opt.pipeline(default="__default__")
@opt.project
@opt.output("Write to this file (.html: a page that opens offline; else Mermaid).",
            dir_okay=False)
@opt.fmt(["html", "mermaid"], help="Output format (default: from the -o suffix; Mermaid on "
                                   "stdout).")
def graph(pipeline: str, file: Path, env: str | None, params: tuple[str, ...],
          output: Path | None, fmt: str | None) -> None:
    """Draw PIPELINE with its datasets: self-contained HTML or Mermaid text."""
    from kmlc.compiler.project import compile_project
    from kmlc.config.functions import code_path
    from kmlc.config.loader import load_project
    from kmlc.graph import describe, graph_title, pipeline_graph, to_html, to_mermaid

    try:
        spec = load_project(file, env=env, params=params)
        with code_path(spec.code):
            drawn = pipeline_graph(compile_project(spec, run=False), pipeline)
    except KmlcError as exc:
        fail(exc)
    if fmt is None:
        fmt = "html" if output is not None and output.suffix in (".html", ".htm") else "mermaid"
    text = to_html(drawn, graph_title(spec, drawn)) if fmt == "html" else to_mermaid(drawn)
    if output is None:
        click.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    counts = describe(drawn)
    click.echo(f"pipeline '{pipeline}': {counts['nodes']} nodes, {counts['datasets']} datasets "
               f"drawn to {output}")


@main.command()
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
        decision = promote_run(load_project(file), run_id, tracking_uri=tracking_uri)
    except KmlcError as exc:
        fail(exc)
    click.echo(f"promotion: {decision.line()}")


@main.command()
def schema() -> None:
    """Print the JSON Schema of mlproject.yml."""
    from kmlc.config.schema import schema_text

    click.echo(schema_text(), nl=False)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _interruptible() -> None:
    """Ctrl-C interrupts even a process that inherited SIGINT ignored (started in the
    background with `&`, nohup, some CI runners); SIGTERM is a Ctrl-C too (exit 130)."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)


@main.command()
@opt.pipeline(default="__default__")
@opt.project
@opt.runner("Kedro runner, or dask (default: the file's runner, else sequential).")
@opt.address("The Dask scheduler (--runner dask); default: a local cluster.")
@opt.selection
@click.option("--cache/--no-cache", "cache", default=None,
              help="Skip the nodes whose code, parameters and inputs did not change since an "
                   "earlier run (default: the file's `cache:`).")
@click.option("--force-nodes", multiple=True,
              help="With the cache: run these nodes anyway (comma-separated).")
@opt.run_name("MLflow run name (default: the pipeline).")
@opt.tracking_uri()
@opt.verbose()
@opt.quiet
def run(pipeline: str, file: Path, env: str | None, params: tuple[str, ...],
        runner: str | None, address: str | None, selection: Selection, cache: bool | None,
        force_nodes: tuple[str, ...], run_name: str | None, tracking_uri: str | None,
        verbose: bool, quiet: bool) -> None:
    """Run PIPELINE (default: all nodes) with MLflow tracking."""
    from kmlc.config.loader import load_project
    from kmlc.config.selection import check_selection

    _interruptible()
    opt.dask_address(runner, address)
    force_nodes = opt.comma(force_nodes)
    # first what needs only the file: a refusal comes before Kedro and MLflow are
    # imported and before the tracking worker starts
    try:
        spec = load_project(file, env=env, params=params, runner=runner, address=address,
                            tracking_uri=tracking_uri)
    except KmlcError as exc:
        fail(exc)
    try:
        check_selection(spec, pipeline, selection, force_nodes=force_nodes)
    except KmlcError as exc:
        fail(exc, spec.secrets)
    # then the worker imports MLflow while this process imports Kedro and compiles
    from kmlc.tracking import worker as tracking_worker

    tracking_worker.start(verbose=verbose)
    from kmlc.run import NodeFailure, RunOptions, run_pipeline

    options = RunOptions(selection, quiet=quiet, run_name=run_name, tracking_uri=tracking_uri,
                         verbose=verbose, cache=cache, force_nodes=force_nodes)
    try:
        with spec.secrets.masked_logs():
            result = run_pipeline(spec, pipeline, options)
    except KeyboardInterrupt as exc:
        click.echo(interrupted(exc), err=True)
        sys.exit(130)
    except NodeFailure as exc:
        fail_node(exc, spec.secrets, spec, verbose)
    except KmlcError as exc:
        fail_after_run(exc, spec.secrets, "run")
    report_run(result, spec, file)


@main.command("sweep")
@opt.pipeline(required=False)
@opt.project
@opt.runner("The runner of each trial's nodes (default: the file's, else sequential).",
            choices=["sequential", "thread"])
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Run at most this many trials (overrides sweep.trials).")
@opt.run_name("The parent run's name (default: sweep-PIPELINE).")
@opt.tracking_uri()
@opt.verbose()
@opt.quiet
def sweep_cmd(pipeline: str | None, file: Path, env: str | None, params: tuple[str, ...],
              runner: str | None, trials: int | None, run_name: str | None,
              tracking_uri: str | None, verbose: bool, quiet: bool) -> None:
    """Run the trials of `sweep:` as nested MLflow runs under one parent run."""
    import signal
    from dataclasses import replace

    from kmlc.tracking import worker as tracking_worker

    signal.signal(signal.SIGINT, signal.default_int_handler)
    tracking_worker.start(verbose=verbose)
    from kmlc.config.loader import load_project
    from kmlc.run import RunOptions
    from kmlc.sweep.loop import run_sweep

    secrets = Secrets()
    try:
        spec = load_project(file, env=env, params=params, runner=runner,
                            tracking_uri=tracking_uri)
        secrets = spec.secrets
        if spec.sweep is not None and trials is not None:
            spec = replace(spec, sweep=replace(spec.sweep, trials=trials))
        options = RunOptions(quiet=quiet, run_name=run_name, tracking_uri=tracking_uri,
                             verbose=verbose)
        with secrets.masked_logs():
            result = run_sweep(spec, pipeline, options, file=str(file))
    except KeyboardInterrupt as exc:
        run_id = exc.run_id if isinstance(exc, RunInterrupted) else None
        click.echo("interrupted" + (f": sweep run {run_id} marked KILLED" if run_id else ""),
                   err=True)
        sys.exit(130)
    except KmlcError as exc:
        fail_after_run(exc, secrets, "sweep run")
    report_sweep(result, spec, file)


@main.group()
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


@main.command()
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


@main.command("export-model")
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
        spec = load_project(file, env=env, params=params)
        secrets = spec.secrets
        with secrets.masked_logs():
            result = export_model(spec, run_id=run_id, latest=latest, from_local=from_local,
                                  output=output, register=register, alias=alias, force=force,
                                  tracking_uri=tracking_uri, check=not no_check)
    except KmlcError as exc:
        fail(exc, secrets)
    report_export(result, alias)


@main.command()
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
@click.option("--param", "model_params", multiple=True, metavar="KEY=VALUE",
              help="Override an inference parameter (repeatable).")
@opt.force("Replace an existing --output file.")
@opt.verbose("Full tracebacks.")
def predict(model_uri: str, input_path: str, output_path: str | None, input_type: str | None,
            output_type: str | None, tracking_uri: str | None,
            model_params: tuple[str, ...], force: bool, verbose: bool) -> None:
    """Batch prediction on a file with any pyfunc model."""
    import os

    from kmlc.model.predict import check_output, predict_file

    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
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


@main.command("import-kedro")
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


@main.command("init")
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
