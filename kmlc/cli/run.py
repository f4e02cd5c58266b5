"""The commands that run the pipelines: run, sweep."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from kmlc.cli import params as opt
from kmlc.cli.output import (
    fail,
    fail_after_run,
    fail_node,
    interrupted,
    report_run,
    report_sweep,
)
from kmlc.config.secrets import Secrets
from kmlc.config.selection import Selection
from kmlc.errors import KmlcError, RunInterrupted

__all__ = ["run", "sweep_cmd"]


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _interruptible() -> None:
    """Ctrl-C interrupts even a process that inherited SIGINT ignored (started in the
    background with `&`, nohup, some CI runners); SIGTERM is a Ctrl-C too (exit 130)."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)


@click.command()
@opt.pipeline(default="__default__")
@opt.project
@opt.runner("Kedro runner, or dask (default: the file's runner, else sequential).")
@opt.address("The Dask scheduler (--runner dask); default: a local cluster.")
@opt.selection
@click.option("--cache/--no-cache", "cache", default=None,
              help="Skip the nodes whose code, parameters and inputs did not change since an "
                   "earlier run (default: the file's `cache:`).")
@click.option("--force-nodes", multiple=True, callback=opt.comma_callback,
              help="With the cache: run these nodes anyway (comma-separated).")
@click.option("--candidate", metavar="NAME", default=None,
              help="Run one of sweep.candidates: leave the others' nodes out and log the "
                   "model bound to its inference nodes (as the sweep's trial of it).")
@opt.run_name("MLflow run name (default: the pipeline).")
@opt.tracking_uri()
@opt.verbose()
@opt.quiet
def run(pipeline: str, file: Path, env: str | None, params: tuple[str, ...],
        runner: str | None, address: str | None, tracking_uri: str | None,
        selection: Selection, candidate: str | None, **options: Any) -> None:
    """Run PIPELINE (default: all nodes) with MLflow tracking."""
    from kmlc.config.loader import load_project
    from kmlc.config.selection import check_selection
    from kmlc.config.sweep import for_candidate

    # the project's options go to load_project, every other option to the field of its
    # name of kmlc.run.RunOptions
    _interruptible()
    opt.dask_address(runner, address)
    # first what needs only the file: a refusal comes before Kedro and MLflow are
    # imported and before the tracking worker starts
    try:
        spec = load_project(file, env=env, params=params, runner=runner, address=address,
                            tracking_uri=tracking_uri)
    except KmlcError as exc:
        fail(exc)
    try:
        if candidate is not None:
            spec = for_candidate(spec, candidate)
        check_selection(spec, pipeline, selection, force_nodes=options["force_nodes"])
    except KmlcError as exc:
        fail(exc, spec.secrets)
    # then the worker imports MLflow while this process imports Kedro and compiles
    from kmlc.tracking import worker as tracking_worker

    tracking_worker.start(verbose=options["verbose"])
    from kmlc.run import NodeFailure, RunOptions, run_pipeline

    try:
        with spec.secrets.masked_logs():
            result = run_pipeline(spec, pipeline, RunOptions(selection, **options))
    except KeyboardInterrupt as exc:
        click.echo(interrupted(exc), err=True)
        sys.exit(130)
    except NodeFailure as exc:
        fail_node(exc, spec.secrets, spec, options["verbose"])
    except KmlcError as exc:
        fail_after_run(exc, spec.secrets, "run")
    report_run(result, spec, file)


@click.command("sweep")
@opt.pipeline(required=False)
@opt.project
@opt.runner("The runner of each trial's nodes (default: the file's, else sequential); "
            "dask: each trial a task on the cluster.",
            choices=["sequential", "thread", "dask"])
@opt.address("The Dask scheduler the trials run on (--runner dask); default: a local "
             "cluster.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Run at most this many trials (overrides sweep.trials).")
@opt.run_name("The parent run's name (default: sweep-PIPELINE).")
@opt.tracking_uri()
@opt.verbose()
@opt.quiet
def sweep_cmd(pipeline: str | None, file: Path, env: str | None, params: tuple[str, ...],
              runner: str | None, address: str | None, trials: int | None,
              run_name: str | None, tracking_uri: str | None, verbose: bool,
              quiet: bool) -> None:
    """Run the trials of `sweep:` as nested MLflow runs under one parent run."""
    import signal
    from dataclasses import replace

    from kmlc.tracking import worker as tracking_worker

    opt.dask_address(runner, address)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tracking_worker.start(verbose=verbose)
    from kmlc.config.loader import load_project
    from kmlc.run import RunOptions
    from kmlc.sweep.loop import run_sweep

    secrets = Secrets()
    try:
        spec = load_project(file, env=env, params=params, runner=runner, address=address,
                            tracking_uri=tracking_uri)
        secrets = spec.secrets
        if spec.sweep is not None and trials is not None:
            spec = replace(spec, sweep=replace(spec.sweep, trials=trials))
        options = RunOptions(quiet=quiet, run_name=run_name, verbose=verbose)
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
