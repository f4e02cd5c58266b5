"""What the commands print: an error as one line per problem (exit 1), a run's report.

Every line that may quote a value of the file goes through ``say``, which masks the
project's secrets. Nothing here imports Kedro or MLflow.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from kmlc.config.secrets import Secrets
from kmlc.errors import ConfigError, ConfigErrors, KmlcError, RunInterrupted

__all__ = ["fail", "fail_after_run", "fail_node", "interrupted", "report_export", "report_model",
           "report_run", "report_sweep", "report_validation", "say", "user_frame"]

_KMLC = str(Path(__file__).resolve().parent.parent) + os.sep  # kmlc's own frames


def say(text: str, secrets: Secrets | None = None, err: bool = False) -> None:
    """Print ``text`` with every secret (and any URI's ``user:password@``) masked."""
    click.echo((secrets or Secrets()).mask(text), err=err)


def fail(exc: KmlcError, secrets: Secrets | None = None) -> NoReturn:
    """Print ``exc`` as one line per error and exit 1."""
    if isinstance(exc, ConfigErrors):
        from kmlc.config.diagnostics import format_text

        say(format_text(exc.errors, exc.warnings), secrets, err=True)
    elif isinstance(exc, ConfigError):
        say(f"{exc} [{exc.code}]", secrets, err=True)
    else:
        say(f"error: {exc} [{exc.code}]", secrets, err=True)
    sys.exit(1)


def fail_after_run(exc: KmlcError, secrets: Secrets, label: str) -> NoReturn:
    """A run (or sweep) that ended in an error: its notes, that what it logged is kept,
    then the error's line and exit 1."""
    for note in exc.notes:
        say(f"note: {note}", secrets, err=True)
    if exc.run_id:
        click.echo(f"{label} {exc.run_id}: what was logged before the error is kept", err=True)
    fail(exc, secrets)


def fail_node(exc: Any, secrets: Secrets, spec: Any, verbose: bool) -> NoReturn:
    """A node raised (``kmlc.run.NodeFailure``): the error, the user's line that raised it
    (``-v``: the whole traceback), the run's notes; the run is kept as FAILED. Exit 1."""
    if verbose:
        import traceback

        say("".join(traceback.format_exception(exc.error)).rstrip(), secrets, err=True)
    say(f"error: {exc} [{exc.code}]", secrets, err=True)
    where = None if verbose else user_frame(exc.error, spec)
    if where:
        say(where, secrets, err=True)
    for note in exc.notes:
        say(f"note: {note}", secrets, err=True)
    if exc.run_id:
        click.echo(f"run {exc.run_id} marked FAILED; what was logged before is kept", err=True)
    sys.exit(1)


def interrupted(exc: KeyboardInterrupt) -> str:
    """The line of an interrupted run: which signal, and how the run was left."""
    import signal

    text = str(exc.args[0]) if exc.args else ""
    number = text.removeprefix("signal ")
    name = signal.Signals(int(number)).name if number.isdigit() else "SIGINT"
    run_id, status = ((exc.run_id, exc.status) if isinstance(exc, RunInterrupted)
                      else (None, None))
    if not run_id:
        return f"interrupted ({name}): no run was opened"
    if status == "FINISHED":
        return (f"interrupted ({name}) after run {run_id} closed as FINISHED: what follows "
                "the run (registering its model) may not be done")
    return (f"interrupted: run {run_id} marked {status or 'KILLED'} ({name}); its model, if "
            "any, is not registered")


def user_frame(error: BaseException, spec: Any) -> str | None:
    """The frame of the project's own code that raised ``error`` (the innermost one in a
    code folder, outside any installed package), as ``  at FILE:LINE, in FUNC`` and the
    line; None when the traceback never passes through the project's code."""
    import traceback

    folders = [str(Path(folder).resolve()) for folder in spec.code]
    mine = None
    for frame in traceback.extract_tb(error.__traceback__):
        path = os.path.abspath(frame.filename)
        parts = Path(path).parts
        if "site-packages" in parts or "dist-packages" in parts or path.startswith(_KMLC):
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


def report_run(result: Any, spec: Any, file: Path) -> None:
    """A finished run (``kmlc.run.RunResult``): its notes, what the cache skipped, the run,
    where it was tracked, its model and what became of it."""
    secrets = spec.secrets
    for note in result.notes:
        say(f"note: {note}", secrets, err=True)
    if result.cache_line:
        say(result.cache_line, secrets)
    if result.run_id is None:
        click.echo(f"pipeline '{result.pipeline}' finished (tracking disabled for it)")
        return
    click.echo(f"run {result.run_id} {result.status} (pipeline '{result.pipeline}')")
    if result.target is not None:
        say(f"tracking: {result.target.describe()}", secrets)
    if result.model_uri:
        click.echo(f"model logged: {result.model_uri}")
    report_model(result, spec, file)


def report_model(result: Any, spec: Any, file: Path) -> None:
    """The model a run (or a sweep's best trial) registered and promoted, then where to
    look at it."""
    if result.registered_version and spec.model is not None:
        click.echo(f"model registered: {spec.model.registered_name} version "
                   f"{result.registered_version}")
    if result.promotion is not None:
        click.echo(f"promotion: {result.promotion.line()}")
    click.echo(f"open it: kmlc ui -f {file}")


def report_sweep(result: Any, spec: Any, file: Path) -> None:
    """A finished sweep (``kmlc.sweep.loop.SweepResult``): its notes, its trials, the best
    one and how to reproduce it, the model logged from it."""
    for note in result.notes:
        say(f"note: {note}", spec.secrets, err=True)
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
    report_model(result, spec, file)


def report_validation(result: Any, file: Path, fmt: str, strict: bool,
                      excerpt: bool | None) -> int:
    """What ``kmlc validate`` found (``kmlc.config.loader.LoadResult``), as ``fmt``; the
    exit code (1: errors, or warnings with ``strict``)."""
    from kmlc.config.diagnostics import format_github, format_json, format_text

    failed = bool(result.errors) or (strict and bool(result.warnings))
    if fmt == "json":
        click.echo(format_json(result.errors, result.warnings))
        return 1 if failed else 0
    if fmt == "github":
        if result.errors or result.warnings:
            click.echo(format_github(result.errors, result.warnings))
        else:
            click.echo(f"{file}: valid")
        return 1 if failed else 0
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
    return 1 if failed else 0


def report_export(result: Any, alias: str | None) -> None:
    """What ``kmlc export-model`` did (``kmlc.model.export``'s result)."""
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
