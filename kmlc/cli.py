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
from kmlc.errors import ConfigError, ConfigErrors, KmlcError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["main"]


def file_option(func: F) -> F:
    return click.option(
        "-f", "--file", "file", default="mlproject.yml", show_default=True,
        type=click.Path(dir_okay=False, path_type=Path), help="The project file.",
    )(func)


def project_options(func: F) -> F:
    func = click.option("--params", "params", multiple=True, metavar="KEY.PATH=VALUE",
                        help="Override a parameter (repeatable); values are YAML scalars.")(func)
    func = click.option("--env", "env", default=None, metavar="NAME",
                        help="Merge environments.NAME over the file.")(func)
    return file_option(func)


def fail(exc: KmlcError) -> None:
    """Print ``exc`` as one line per error and exit 1."""
    if isinstance(exc, ConfigErrors):
        from kmlc.report import format_text

        click.echo(format_text(exc.errors, exc.warnings), err=True)
    elif isinstance(exc, ConfigError):
        click.echo(f"{exc} [{exc.code}]", err=True)
    else:
        click.echo(f"error: {exc} [{exc.code}]", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kmlc")
def main() -> None:
    """kmlc: machine-learning projects on Kedro and MLflow from one mlproject.yml."""


@main.command()
@project_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--excerpt/--no-excerpt", default=None,
              help="Show the offending lines (default: on a terminal).")
def validate(file: Path, env: str | None, params: tuple[str, ...], fmt: str, strict: bool,
             excerpt: bool | None) -> None:
    """Check the file: schema, names, graph, functions and model binding."""
    from kmlc.loader import check_project
    from kmlc.report import format_json, format_text

    result = check_project(file, env=env, params=params)
    failed = bool(result.errors) or (strict and bool(result.warnings))
    if fmt == "json":
        click.echo(format_json(result.errors, result.warnings))
        sys.exit(1 if failed else 0)
    show = sys.stdout.isatty() if excerpt is None else excerpt
    if result.errors or result.warnings:
        click.echo(format_text(result.errors, result.warnings, text=result.text, excerpts=show),
                   err=bool(result.errors))
    if result.spec is not None:
        spec = result.spec
        pipelines = ", ".join(spec.pipeline_names)
        click.echo(f"{file}: valid: {len(spec.nodes)} nodes, {len(spec.datasets)} datasets, "
                   f"{len(spec.pipeline_names)} pipelines ({pipelines})")
    sys.exit(1 if failed else 0)


@main.command()
def schema() -> None:
    """Print the JSON Schema of mlproject.yml."""
    from kmlc.schema import schema_text

    click.echo(schema_text(), nl=False)
