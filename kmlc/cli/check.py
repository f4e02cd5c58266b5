"""The commands that read the project and change nothing: validate, plan, graph, schema."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from kmlc.cli import params as opt
from kmlc.cli.output import (
    fail,
    report_validation,
)
from kmlc.errors import KmlcError

__all__ = ["graph", "plan", "schema", "validate"]


@click.command()
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


@click.command()
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
    from kmlc.inspect.manifest import build_manifest, format_summary, manifest_json

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


@click.command()
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
    from kmlc.inspect.graph import describe, graph_title, pipeline_graph, to_html, to_mermaid

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


@click.command()
def schema() -> None:
    """Print the JSON Schema of mlproject.yml."""
    from kmlc.config.schema import schema_text

    click.echo(schema_text(), nl=False)
