"""The command line: a thin layer of click over the Python API.

Each command imports its heavy machinery inside the function, so ``kmlc validate``
never imports MLflow. ``KmlcError`` becomes one line per error and exit code 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kmlc import __version__
from kmlc.config.secrets import Secrets
from kmlc.config.spec import RUNNERS
from kmlc.errors import ConfigError, ConfigErrors, KmlcError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["main"]


def _find_file(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """Without ``-f``, ``mlproject.yml`` here or in the nearest parent folder that has one
    (as git, Kedro and dbt find their project), said on stderr when it is not here."""
    import os

    from click.core import ParameterSource

    if ctx.get_parameter_source("file") is not ParameterSource.DEFAULT or value.exists():
        return value
    for folder in Path.cwd().parents:
        candidate = folder / value
        if candidate.is_file():
            found = Path(os.path.relpath(candidate))
            click.echo(f"using {found} (no {value} here; found in a parent folder)", err=True)
            return found
    return value


def file_option(func: F) -> F:
    return click.option(
        "-f", "--file", "file", default="mlproject.yml", show_default=True,
        type=click.Path(dir_okay=False, path_type=Path), callback=_find_file,
        help="The project file (default: here, else in the nearest parent folder).",
    )(func)


def _check_params(ctx: click.Context, param: click.Parameter,
                  value: tuple[str, ...]) -> tuple[str, ...]:
    """A malformed ``--params`` is a usage error (exit 2), found before anything is read."""
    from kmlc.config.overlay import parse_param_override

    for item in value:
        try:
            parse_param_override(item)
        except ConfigError:
            raise click.BadParameter(
                f"'{item}' is not of the form KEY.PATH=VALUE (for example model.alpha=0.5)",
                ctx=ctx, param=param) from None
    return value


def project_options(func: F) -> F:
    func = click.option("--params", "params", multiple=True, metavar="KEY.PATH=VALUE",
                        callback=_check_params,
                        help="Override a parameter (repeatable); values are YAML scalars of "
                             "the parameter's type (KEY.PATH:=VALUE: any type).")(func)
    func = click.option("--env", "env", default=None, metavar="NAME",
                        help="Merge environments.NAME over the file.")(func)
    return file_option(func)


def _complete_pipeline(ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[str]:
    """Shell completion of a PIPELINE argument: the pipelines of the project file (``-f``,
    else ./mlproject.yml), read as YAML only: no code is imported, nothing is printed."""
    from kmlc.config.source import read_document
    from kmlc.config.spec import pipeline_names

    try:
        data = read_document(Path(ctx.params.get("file") or "mlproject.yml")).data
        tags = [tag for node in data.get("nodes") or () if isinstance(node, dict)
                for tag in (node.get("tags") or ()) if isinstance(tag, str)]
        names = pipeline_names([str(k) for k in data.get("pipelines") or {}], tags)
    except Exception:  # a file that does not load completes nothing; validate says why
        return []
    return [name for name in names if name.startswith(incomplete)]


def say(text: str, secrets: Secrets | None = None, err: bool = False) -> None:
    """Print ``text`` with every secret (and any URI's ``user:password@``) masked."""
    click.echo((secrets or Secrets()).mask(text), err=err)


def fail(exc: KmlcError, secrets: Secrets | None = None) -> None:
    """Print ``exc`` as one line per error and exit 1."""
    if isinstance(exc, ConfigErrors):
        from kmlc.config.diagnostics import format_text

        say(format_text(exc.errors, exc.warnings), secrets, err=True)
    elif isinstance(exc, ConfigError):
        say(f"{exc} [{exc.code}]", secrets, err=True)
    else:
        say(f"error: {exc} [{exc.code}]", secrets, err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kmlc")
def main() -> None:
    """kmlc: machine-learning projects on Kedro and MLflow from one mlproject.yml."""


@main.command()
@project_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True,
              help="Output format (github: workflow annotations at the file's lines).")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--excerpt/--no-excerpt", default=None,
              help="Show the offending lines (default: on a terminal).")
@click.option("--runner", type=click.Choice(RUNNERS), default=None,
              help="Check for this runner (default: the file's).")
@click.option("--address", default=None, metavar="tcp://HOST:PORT",
              help="Check for this Dask scheduler (a remote one needs shared storage).")
def validate(file: Path, env: str | None, params: tuple[str, ...], fmt: str, strict: bool,
             excerpt: bool | None, runner: str | None, address: str | None) -> None:
    """Check the file: schema, names, graph, functions and model binding."""
    from kmlc.config.diagnostics import format_github, format_json, format_text
    from kmlc.config.loader import check_project

    runner = _dask_address(runner, address)
    result = check_project(file, env=env, params=params, runner=runner, address=address)
    failed = bool(result.errors) or (strict and bool(result.warnings))
    if fmt == "json":
        click.echo(format_json(result.errors, result.warnings))
        sys.exit(1 if failed else 0)
    if fmt == "github":
        if result.errors or result.warnings:
            click.echo(format_github(result.errors, result.warnings))
        else:
            click.echo(f"{file}: valid")
        sys.exit(1 if failed else 0)
    show = sys.stdout.isatty() if excerpt is None else excerpt
    if result.errors or result.warnings:
        click.echo(format_text(result.errors, result.warnings, text=result.text, excerpts=show,
                               strict=strict), err=failed)
    if result.spec is not None and not failed:
        spec = result.spec
        pipelines = ", ".join(spec.pipeline_names)
        click.echo(f"{file}: valid: {len(spec.nodes)} nodes, {len(spec.datasets)} datasets, "
                   f"{len(spec.pipeline_names)} pipelines ({pipelines})")
        for name, ds in spec.datasets.items():
            if ds.pattern:
                click.echo(f"  dataset '{name}' is made by the factory '{ds.pattern}'")
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("pipeline", required=False, shell_complete=_complete_pipeline)
@project_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON manifest to this file (e.g. target/manifest.json) "
                   "and print only where it went.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None,
              help="Output format (default: text on a terminal, json otherwise).")
@click.option("--sweep", "show_sweep", is_flag=True,
              help="Show how `kmlc sweep` splits the pipeline: what runs once, per trial.")
def plan(pipeline: str | None, file: Path, env: str | None, params: tuple[str, ...],
         output: Path | None, fmt: str | None, show_sweep: bool) -> None:
    """Show what `kmlc run` would do, as a manifest, without running anything."""
    from kmlc.config.loader import load_project
    from kmlc.manifest import build_manifest, format_summary, manifest_json

    if show_sweep:
        _plan_sweep(file, env, params, pipeline)
        return
    try:
        spec = load_project(file, env=env, params=params)
        manifest = build_manifest(spec, pipeline)
    except KmlcError as exc:
        fail(exc)
        return
    if output is not None:  # the file is the manifest; the terminal gets where it went
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(manifest_json(manifest), encoding="utf-8")
        names = ", ".join(manifest["pipelines"])
        click.echo(f"manifest written to {output} (pipelines: {names})")
        return
    fmt = fmt or ("text" if sys.stdout.isatty() else "json")
    if fmt == "json":
        click.echo(manifest_json(manifest), nl=False)
    else:
        click.echo(format_summary(manifest, _cache_states(spec, manifest)))


def _plan_sweep(file: Path, env: str | None, params: tuple[str, ...],
                pipeline: str | None) -> None:
    from kmlc.compiler.project import compile_project
    from kmlc.config.functions import code_path
    from kmlc.config.loader import load_project
    from kmlc.sweep.factor import format_plan, plan_sweep
    from kmlc.sweep.loop import sweep_pipeline
    from kmlc.sweep.space import search_for

    try:
        spec = load_project(file, env=env, params=params)
        if spec.sweep is None:
            raise KmlcError("the file has no `sweep:` section", code="KMLC630")
        name = sweep_pipeline(spec, pipeline)
        with code_path(spec.code):
            split = plan_sweep(spec, spec.sweep, name, compile_project(spec).pipeline(name))
        total = search_for(spec.sweep).total if spec.sweep.method != "optuna" else (
            spec.sweep.trials)
    except KmlcError as exc:
        fail(exc)
        return
    click.echo(format_plan(split, spec.sweep, total))


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
@click.argument("pipeline", default="__default__", shell_complete=_complete_pipeline)
@project_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (.html: a page that opens offline; else Mermaid).")
@click.option("--format", "fmt", type=click.Choice(["html", "mermaid"]), default=None,
              help="Output format (default: from the -o suffix; Mermaid on stdout).")
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
        return
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
@file_option
@click.option("--run-id", required=True, help="The training run whose model to promote.")
@click.option("--tracking-uri", default=None, help="Override tracking.uri.")
def promote(file: Path, run_id: str, tracking_uri: str | None) -> None:
    """Apply model.promote's gate to an earlier run; move the alias if it passes.

    A gate that does not pass is a decision, printed, with exit code 0.
    """
    from kmlc.config.loader import load_project
    from kmlc.model.promote import promote_run

    try:
        spec = load_project(file)
        decision = promote_run(spec, run_id, tracking_uri=tracking_uri)
    except KmlcError as exc:
        fail(exc)
        return
    click.echo(f"promotion: {decision.line()}")


@main.command()
def schema() -> None:
    """Print the JSON Schema of mlproject.yml."""
    from kmlc.config.schema import schema_text

    click.echo(schema_text(), nl=False)


def _dask_address(runner: str | None, address: str | None) -> str | None:
    """``--address`` means the dask runner; with another ``--runner`` it is a usage error."""
    if address and runner not in (None, "dask"):
        raise click.UsageError(f"--address is for --runner dask, not --runner {runner}")
    return "dask" if address else runner


def _comma(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def _check_load_versions(ctx: click.Context, param: click.Parameter,
                         value: tuple[str, ...]) -> dict[str, str]:
    """``--load-versions ds:version`` as ``kedro run`` takes it, into a mapping."""
    out: dict[str, str] = {}
    for item in _comma(value):
        name, sep, version = item.partition(":")
        if not sep or not name or not version:
            raise click.BadParameter(f"'{item}' is not of the form DATASET:VERSION (for example "
                                     "regressor:2026-01-31T10.00.00.000Z)", ctx=ctx, param=param)
        out[name] = version
    return out


@main.command()
@click.argument("pipeline", default="__default__", shell_complete=_complete_pipeline)
@project_options
@click.option("--runner", type=click.Choice(RUNNERS), default=None,
              help="Kedro runner, or dask (default: the file's runner, else sequential).")
@click.option("--address", default=None, metavar="tcp://HOST:PORT",
              help="The Dask scheduler (--runner dask); default: a local cluster.")
@click.option("--tags", multiple=True, help="Run only nodes with these tags (comma-separated).")
@click.option("--nodes", multiple=True, help="Run only these nodes (comma-separated).")
@click.option("--from-nodes", multiple=True, help="Run from these nodes on.")
@click.option("--to-nodes", multiple=True, help="Run up to these nodes.")
@click.option("--from-inputs", multiple=True,
              help="Run the nodes that depend on these datasets (comma-separated).")
@click.option("--to-outputs", multiple=True,
              help="Run the nodes needed to make these datasets (comma-separated).")
@click.option("--namespace", "--namespaces", "namespaces", multiple=True,
              help="Run only the nodes in these namespaces (comma-separated).")
@click.option("--load-versions", multiple=True, callback=_check_load_versions,
              metavar="DATASET:VERSION", help="Load this version of a versioned dataset "
              "(repeatable or comma-separated).")
@click.option("--cache/--no-cache", "cache", default=None,
              help="Skip the nodes whose code, parameters and inputs did not change since an "
                   "earlier run (default: the file's `cache:`).")
@click.option("--force-nodes", multiple=True,
              help="With the cache: run these nodes anyway (comma-separated).")
@click.option("--run-name", default=None, help="MLflow run name (default: the pipeline).")
@click.option("--tracking-uri", default=None, help="Override tracking.uri.")
@click.option("-v", "--verbose", is_flag=True, help="Kedro's INFO logs and full tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Hide the node loggers' INFO lines.")
def run(pipeline: str, file: Path, env: str | None, params: tuple[str, ...],
        runner: str | None, address: str | None, tags: tuple[str, ...],
        nodes: tuple[str, ...], from_nodes: tuple[str, ...],
        to_nodes: tuple[str, ...], from_inputs: tuple[str, ...], to_outputs: tuple[str, ...],
        namespaces: tuple[str, ...], load_versions: dict[str, str], cache: bool | None,
        force_nodes: tuple[str, ...], run_name: str | None,
        tracking_uri: str | None, verbose: bool, quiet: bool) -> None:
    """Run PIPELINE (default: all nodes) with MLflow tracking."""
    import signal

    from kmlc.config.loader import load_project
    from kmlc.config.selection import check_selection

    # Ctrl-C interrupts the run even when the process inherited SIGINT ignored (started in
    # the background with `&`, nohup, some CI runners)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)  # as Ctrl-C, from the first moment: exit 130
    runner = _dask_address(runner, address)
    selection = {"tags": _comma(tags), "nodes": _comma(nodes),
                 "from_nodes": _comma(from_nodes), "to_nodes": _comma(to_nodes),
                 "from_inputs": _comma(from_inputs), "to_outputs": _comma(to_outputs),
                 "namespaces": _comma(namespaces)}
    # first of all, what needs only the file: a refusal comes before Kedro and MLflow
    # are imported and before the tracking worker starts
    try:
        spec = load_project(file, env=env, params=params, runner=runner, address=address,
                            tracking_uri=tracking_uri)
    except KmlcError as exc:
        fail(exc)
        return
    try:
        check_selection(spec, pipeline, **selection, force_nodes=_comma(force_nodes),
                        load_versions=load_versions)
    except KmlcError as exc:
        fail(exc, spec.secrets)
        return
    # then the worker imports MLflow while this process imports Kedro and compiles
    from kmlc.tracking import worker as tracking_worker

    tracking_worker.start(verbose=verbose)
    from kmlc.run import NodeFailure, RunOptions, run_pipeline

    secrets = spec.secrets
    try:
        options = RunOptions(runner=runner, address=address, tags=selection["tags"],
                             nodes=selection["nodes"], from_nodes=selection["from_nodes"],
                             to_nodes=selection["to_nodes"],
                             from_inputs=selection["from_inputs"],
                             to_outputs=selection["to_outputs"],
                             namespaces=selection["namespaces"], load_versions=load_versions,
                             quiet=quiet, run_name=run_name, tracking_uri=tracking_uri,
                             verbose=verbose, cache=cache, force_nodes=_comma(force_nodes))
        with secrets.masked_logs():
            result = run_pipeline(spec, pipeline, options)
    except KeyboardInterrupt as exc:
        click.echo(_interrupted(exc), err=True)
        sys.exit(130)
    except NodeFailure as exc:
        if verbose:
            import traceback

            say("".join(traceback.format_exception(exc.error)).rstrip(), secrets, err=True)
        run_id = getattr(exc, "run_id", None)
        say(f"error: {exc} [{exc.code}]", secrets, err=True)
        where = None if verbose else _user_frame(exc.error, spec)
        if where:
            say(where, secrets, err=True)
        for note in getattr(exc, "notes_", ()):
            say(f"note: {note}", secrets, err=True)
        if run_id:
            click.echo(f"run {run_id} marked FAILED; what was logged before is kept", err=True)
        sys.exit(1)
    except KmlcError as exc:
        _fail_after_run(exc, secrets, "run")
        return
    for note in result.notes:
        say(f"note: {note}", secrets, err=True)
    if result.cache_line:
        say(result.cache_line, secrets)
    if result.run_id is None:
        click.echo(f"pipeline '{pipeline}' finished (tracking disabled for it)")
        return
    click.echo(f"run {result.run_id} {result.status} (pipeline '{pipeline}')")
    if result.target is not None:
        say(f"tracking: {result.target.describe()}", secrets)
    if result.model_uri:
        click.echo(f"model logged: {result.model_uri}")
    if result.registered_version:
        assert spec.model is not None
        click.echo(f"model registered: {spec.model.registered_name} version "
                   f"{result.registered_version}")
    if result.promotion is not None:
        click.echo(f"promotion: {result.promotion.line()}")
    click.echo(f"open it: kmlc ui -f {file}")



def _fail_after_run(exc: KmlcError, secrets: Secrets, label: str) -> None:
    """A run (or sweep) that ended in an error: its notes, that what it logged is kept,
    then the error's line and exit 1."""
    for note in getattr(exc, "notes_", ()):
        say(f"note: {note}", secrets, err=True)
    run_id = getattr(exc, "run_id", None)
    if run_id:
        click.echo(f"{label} {run_id}: what was logged before the error is kept", err=True)
    fail(exc, secrets)

def _user_frame(error: BaseException, spec: Any) -> str | None:
    """The frame of the project's own code that raised ``error`` (the innermost one in a
    code folder, outside any installed package), as ``  at FILE:LINE, in FUNC`` and the
    line; None when the traceback never passes through the project's code."""
    import os
    import traceback

    folders = [str(Path(folder).resolve()) for folder in spec.code]
    own = str(Path(__file__).resolve().parent) + os.sep  # kmlc's own frames: never the user's
    mine = None
    for frame in traceback.extract_tb(error.__traceback__):
        path = os.path.abspath(frame.filename)
        parts = Path(path).parts
        if "site-packages" in parts or "dist-packages" in parts or path.startswith(own):
            continue
        if any(path.startswith(folder + os.sep) for folder in folders):
            mine = frame
    if mine is None:
        return None
    shown = os.path.relpath(mine.filename)
    if shown.startswith(".."):
        shown = os.path.abspath(mine.filename)
    line = (mine.line or "").strip()
    return (f"  at {shown}:{mine.lineno}, in {mine.name}" + (f"\n    {line}" if line else "")
            + "\n  (-v: the full traceback)")


@main.command("sweep")
@click.argument("pipeline", required=False)
@project_options
@click.option("--runner", type=click.Choice(["sequential", "thread"]), default=None,
              help="The runner of each trial's nodes (default: the file's, else sequential).")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Run at most this many trials (overrides sweep.trials).")
@click.option("--run-name", default=None, help="The parent run's name (default: sweep-PIPELINE).")
@click.option("--tracking-uri", default=None, help="Override tracking.uri.")
@click.option("-v", "--verbose", is_flag=True, help="Kedro's INFO logs and full tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Hide the node loggers' INFO lines.")
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
        options = RunOptions(runner=runner, quiet=quiet, run_name=run_name,
                             tracking_uri=tracking_uri, verbose=verbose)
        with secrets.masked_logs():
            result = run_sweep(spec, pipeline, options, file=str(file))
    except KeyboardInterrupt as exc:
        run_id = getattr(exc, "run_id", None)
        click.echo("interrupted" + (f": sweep run {run_id} marked KILLED" if run_id else ""),
                   err=True)
        sys.exit(130)
    except KmlcError as exc:
        _fail_after_run(exc, secrets, "sweep run")
        return
    for note in result.notes:
        say(f"note: {note}", secrets, err=True)
    failed = sum(t.status == "FAILED" for t in result.trials)
    click.echo(f"sweep {result.run_id} {result.status} (pipeline '{result.pipeline}'): "
               f"{len(result.trials)} trials, {failed} failed, {result.skipped} skipped")
    best = result.best
    if best is not None:
        click.echo(f"best: trial {best.trial.number} ({best.trial.label or 'defaults'}) "
                   f"{spec.sweep.metric if spec.sweep else ''}={best.value:.6g}, run {best.run_id}")
        click.echo(f"reproduce it: {result.command}")
    if result.model_uri:
        click.echo(f"model logged from the best trial: {result.model_uri}")
    if result.registered_version and spec.model is not None:
        click.echo(f"model registered: {spec.model.registered_name} version "
                   f"{result.registered_version}")
    if result.promotion is not None:
        click.echo(f"promotion: {result.promotion.line()}")
    click.echo(f"open it: kmlc ui -f {file}")


@main.group()
def cache() -> None:
    """The run cache beside the project (`kmlc run --cache`)."""


@cache.command("prune")
@file_option
@click.option("--max-size", "max_size", type=click.FloatRange(min=0), default=None,
              metavar="MB", help="Also drop the oldest records until the memory values "
              "the others keep fit in MB (their nodes run again next time).")
def cache_prune(file: Path, max_size: float | None) -> None:
    """Remove the memory values the cache keeps that no record needs."""
    from kmlc.cache.prune import prune_cache

    if not file.is_file():
        fail(ConfigError(f"file not found: {file}", file=str(file), code="KMLC101"))
        return
    try:
        result = prune_cache(file.resolve().parent,
                             None if max_size is None else int(max_size * 1024 * 1024))
    except KmlcError as exc:
        fail(exc)
        return
    mb = 1024 * 1024
    say(f"cache: dropped {result.records_dropped} records, removed "
        f"{result.objects_removed} kept values ({result.bytes_freed / mb:.1f} MB); "
        f"{result.objects_kept} kept values left ({result.bytes_kept / mb:.1f} MB)")


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _interrupted(exc: KeyboardInterrupt) -> str:
    """The line of an interrupted run: which signal, and how the run was left."""
    import signal

    text = str(exc.args[0]) if exc.args else ""
    number = text.removeprefix("signal ")
    name = signal.Signals(int(number)).name if number.isdigit() else "SIGINT"
    run_id, status = getattr(exc, "run_id", None), getattr(exc, "status", None)
    if not run_id:
        return f"interrupted ({name}): no run was opened"
    if status == "FINISHED":
        return (f"interrupted ({name}) after run {run_id} closed as FINISHED: what follows "
                "the run (registering its model) may not be done")
    return (f"interrupted: run {run_id} marked {status or 'KILLED'} ({name}); its model, if "
            "any, is not registered")


@main.command()
@file_option
@click.option("--host", default=None, help="Host to bind (default: tracking.ui.host).")
@click.option("--port", default=None, type=int, help="Port (default: tracking.ui.port).")
@click.option("--tracking-uri", default=None, help="Override tracking.uri.")
def ui(file: Path, host: str | None, port: int | None, tracking_uri: str | None) -> None:
    """Start the MLflow UI on the project's tracking store."""
    from kmlc.config.loader import load_project
    from kmlc.config.target import tracking_target

    try:
        spec = load_project(file)
        target = tracking_target(spec, tracking_uri)
    except KmlcError as exc:
        fail(exc)
        return
    uri = target.uri
    host, port = host or spec.tracking.ui_host, port or spec.tracking.ui_port
    argv = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
            "--host", host, "--port", str(port)]
    if target.registry_uri:
        argv += ["--registry-store-uri", target.registry_uri]
    secrets = spec.secrets
    sys.exit(_serve_ui(argv, host, port, lambda url: say(
        f"MLflow UI on {url} (store: {uri})", secrets)))


def _serve_ui(argv: list[str], host: str, port: int,
              announce: Callable[[str], None]) -> int:
    """Run the MLflow UI in a process group of its own; print its URL once it answers;
    on SIGTERM or SIGINT stop the whole group (the server, its workers, its job runner)."""
    import signal
    import subprocess
    import time
    import urllib.request

    stop: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        stop.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    probe = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{host}:{port}"
    try:
        server = subprocess.Popen(argv, start_new_session=True)
        answered = False
        while server.poll() is None and not stop:
            if not answered:
                try:
                    with urllib.request.urlopen(f"http://{probe}:{port}/health", timeout=1):
                        answered = True
                    announce(url)
                except OSError:
                    pass
            time.sleep(0.2)
        if not stop:
            click.echo(f"error: the MLflow UI exited with code {server.returncode}"
                       + ("" if answered else f" before answering on {url}"), err=True)
            return 1
        _stop_group(server)
        click.echo("MLflow UI stopped", err=True)
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop_group(server: Any) -> None:
    """SIGTERM to the server's whole process group, SIGKILL to what is left after 10 s."""
    import contextlib
    import os
    import signal
    import time

    def gone(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            server.poll()  # reap the server itself, or it lingers as a zombie of the group
            try:
                os.killpg(server.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        return False

    for signum, seconds in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.pid, signum)
        if gone(seconds):
            return


@main.command("export-model")
@project_options
@click.option("--run-id", default=None, help="The training run whose model to export.")
@click.option("--latest", is_flag=True, help="The latest finished training run with a model.")
@click.option("--from-local", is_flag=True,
              help="Build the model from the artifacts on disk, without a training run.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write an MLflow model folder here (atomically).")
@click.option("--register", default=None, metavar="NAME", help="Register a model version.")
@click.option("--alias", default=None, help="Point this alias at the registered version.")
@click.option("--force", is_flag=True, help="Replace a non-empty --output folder.")
@click.option("--no-check", is_flag=True,
              help="Skip loading the result in a fresh process before writing it.")
@click.option("--tracking-uri", default=None, help="Override tracking.uri.")
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
        return
    if result.why:
        click.echo(result.why)
    if result.model_uri:
        click.echo(f"model: {result.model_uri}")
    if result.output:
        checked = ("" if not result.checked
                   else " (loaded and predicted its input example in a fresh process)"
                   if result.predicted else
                   " (loaded in a fresh process; no input example to predict)")
        click.echo(f"written: {result.output}{checked}")
    if result.registered:
        suffix = f", alias '{alias}'" if alias else ""
        click.echo(f"registered: {result.registered} version {result.version}{suffix}")


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
@click.option("--tracking-uri", default=None,
              help="Tracking store for runs:/ and models:/ URIs.")
@click.option("--param", "model_params", multiple=True, metavar="KEY=VALUE",
              help="Override an inference parameter (repeatable).")
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@click.option("-v", "--verbose", is_flag=True, help="Full tracebacks.")
def predict(model_uri: str, input_path: str, output_path: str | None, input_type: str | None,
            output_type: str | None, tracking_uri: str | None,
            model_params: tuple[str, ...], force: bool, verbose: bool) -> None:
    """Batch prediction on a file with any pyfunc model."""
    import os

    from kmlc.config.source import load_value
    from kmlc.model.predict import check_output, predict_file

    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    overrides: dict[str, Any] = {}
    for item in model_params:
        key, sep, raw = item.partition("=")
        if not sep:
            raise click.UsageError(f"--param {item!r}: expected KEY=VALUE")
        try:
            overrides[key] = load_value(raw) if raw else ""
        except ValueError:
            overrides[key] = raw
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
        return
    if output_path:
        click.echo(f"written: {output_path} ({len(result)} rows)", err=True)
    elif hasattr(result, "to_csv"):
        click.echo(result.to_csv(index=False), nl=False)
    else:
        click.echo(str(result))


def _pipeline_map(ctx: click.Context, param: click.Parameter,
                  value: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _comma(value):
        kmlc_name, sep, kedro_name = item.partition("=")
        if not sep or not kmlc_name.strip() or not kedro_name.strip():
            raise click.BadParameter(f"'{item}' is not of the form KMLC_NAME=KEDRO_NAME "
                                     "(for example training=__default__)", ctx=ctx, param=param)
        out[kmlc_name.strip()] = kedro_name.strip()
    return out


@main.command("import-kedro")
@click.argument("project_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: PROJECT_DIR/mlproject.yml).")
@click.option("--env", default=None, metavar="NAME",
              help="Kedro configuration environment (default: the project's, usually local).")
@click.option("--pipelines", "pipeline_map", multiple=True, callback=_pipeline_map,
              metavar="KMLC=KEDRO[,...]",
              help="Import Kedro pipeline KEDRO as kmlc pipeline KMLC (e.g. training=__default__).")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
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
        return
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
        return
    click.echo(f"project '{result.name}' written to {directory}:")
    for relative in result.files:
        click.echo(f"  {relative}")
    where = "" if Path(directory) == Path(".") else f"cd {directory} && "
    click.echo(f"next: {where}kmlc validate && kmlc run training")
