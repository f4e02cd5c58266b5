"""Every option shared by two commands or more, declared once, as a decorator (as dbt's
``cli/params.py``).

A command lists the decorators it takes; an option that varies between commands (its
choices, its help) is a function returning the decorator. ``selection`` adds the node
filters of ``kmlc.config.selection.Selection`` (read from its fields) and hands the
command one ``Selection``. Nothing here imports Kedro or MLflow.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from kmlc.config.selection import Selection, filters
from kmlc.config.spec import RUNNERS
from kmlc.errors import ConfigError

__all__ = ["address", "comma", "comma_callback", "dask_address", "env", "file", "fmt", "force",
           "output", "params", "pipeline", "project", "quiet", "run_name", "runner",
           "selection", "tracking_uri", "verbose"]

F = TypeVar("F", bound=Callable[..., Any])


def comma(values: Sequence[str]) -> tuple[str, ...]:
    """``--opt a,b --opt c`` as ``("a", "b", "c")``."""
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def comma_callback(ctx: click.Context, param: click.Parameter,
                   value: tuple[str, ...]) -> tuple[str, ...]:
    """A repeatable option whose values may be comma-separated: one tuple of them."""
    return comma(value)


def _find_file(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """Without ``-f``, ``mlproject.yml`` here or in the nearest parent folder that has one
    (as git, Kedro and dbt find their project), said on stderr when it is not here."""
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


file = click.option(
    "-f", "--file", "file", default="mlproject.yml", show_default=True,
    type=click.Path(dir_okay=False, path_type=Path), callback=_find_file,
    help="The project file (default: here, else in the nearest parent folder).")


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


params = click.option(
    "--params", "params", multiple=True, metavar="KEY.PATH=VALUE", callback=_check_params,
    help="Override a parameter (repeatable); values are YAML scalars of the parameter's "
         "type (KEY.PATH:=VALUE: any type).")


def env(help: str = "Merge environments.NAME over the file.") -> Callable[[F], F]:
    return click.option("--env", "env", default=None, metavar="NAME", help=help)


def project(func: F) -> F:
    """``-f``, ``--env`` and ``--params``: the project as a command loads it."""
    return file(env()(params(func)))


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


def pipeline(**kwargs: Any) -> Callable[[F], F]:
    """The PIPELINE argument, completed from the file's pipelines."""
    return click.argument("pipeline", shell_complete=_complete_pipeline, **kwargs)


def tracking_uri(help: str = "Override tracking.uri.") -> Callable[[F], F]:
    return click.option("--tracking-uri", default=None, help=help)


def runner(help: str, choices: Sequence[str] = RUNNERS) -> Callable[[F], F]:
    return click.option("--runner", type=click.Choice(list(choices)), default=None, help=help)


def address(help: str) -> Callable[[F], F]:
    return click.option("--address", default=None, metavar="tcp://HOST:PORT", help=help)


def dask_address(runner: str | None, address: str | None) -> None:
    """``--address`` is for the dask runner: with another ``--runner``, a usage error."""
    if address and runner not in (None, "dask"):
        raise click.UsageError(f"--address is for --runner dask, not --runner {runner}")


def fmt(choices: Sequence[str], help: str, default: str | None = None) -> Callable[[F], F]:
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=default,
                        show_default=True if default is not None else None, help=help)


def output(help: str, **path: Any) -> Callable[[F], F]:
    """``-o``/``--output``: a path (``path``: ``click.Path``'s arguments)."""
    return click.option("-o", "--output", type=click.Path(path_type=Path, **path),
                        default=None, help=help)


def force(help: str) -> Callable[[F], F]:
    return click.option("--force", is_flag=True, help=help)


def run_name(help: str) -> Callable[[F], F]:
    return click.option("--run-name", default=None, help=help)


def verbose(help: str = "Kedro's INFO logs and full tracebacks.") -> Callable[[F], F]:
    return click.option("-v", "--verbose", is_flag=True, help=help)


quiet = click.option("-q", "--quiet", is_flag=True, help="Hide the node loggers' INFO lines.")


def _load_versions(ctx: click.Context, param: click.Parameter,
                   value: tuple[str, ...]) -> dict[str, str]:
    """``--load-versions ds:version`` as ``kedro run`` takes it, into a mapping."""
    out: dict[str, str] = {}
    for item in comma(value):
        name, sep, version = item.partition(":")
        if not sep or not name or not version:
            raise click.BadParameter(f"'{item}' is not of the form DATASET:VERSION (for example "
                                     "regressor:2026-01-31T10.00.00.000Z)", ctx=ctx, param=param)
        out[name] = version
    return out


def selection(func: F) -> F:
    """The node filters of ``Selection`` (one option per field, as its metadata spell it)
    and ``--load-versions``; the command gets them as one ``selection: Selection``."""
    names = [f.name for f in filters()]

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        chosen = {name: comma(kwargs.pop(name)) for name in names}
        kwargs["selection"] = Selection(**chosen, load_versions=kwargs.pop("load_versions"))
        return func(*args, **kwargs)

    decorated: Any = click.option(
        "--load-versions", multiple=True, callback=_load_versions, metavar="DATASET:VERSION",
        help="Load this version of a versioned dataset (repeatable or comma-separated).",
    )(command)
    for f in reversed(filters()):
        decorated = click.option(*f.metadata["flags"], f.name, multiple=True,
                                 help=f.metadata["help"])(decorated)
    return decorated
