"""What the cache tests share: a cached run in process, the index's records by node, and
a ``RunCache`` of a project's default pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kmlc import RunOptions, load_project, run_pipeline
from kmlc.cache import INDEX_FILE, RunCache
from kmlc.compiler.project import compile_project


def run_cached(path: Path, *params: str, force: tuple[str, ...] = ()) -> tuple[list[str], Any]:
    """One cached run in process: (the nodes that ran, read from ``ran.txt``, the result)."""
    ran = path.parent / "ran.txt"
    ran.unlink(missing_ok=True)
    result = run_pipeline(load_project(path, params=params),
                          options=RunOptions(cache=True, force_nodes=force, progress=False))
    return (ran.read_text().split() if ran.exists() else []), result


def index_records(path: Path) -> dict[str, Any]:
    """The cache index's records beside ``path``, by node name."""
    return {r["node"]: r for r in
            json.loads((path.parent / INDEX_FILE).read_text())["records"].values()}


def run_cache(path: Path, *params: str, force: tuple[str, ...] = ()) -> RunCache:
    """The cache of the project's default pipeline, as a run with ``params`` makes it."""
    spec = load_project(path, params=params)
    return RunCache(spec, compile_project(spec).pipeline("__default__"), force=force,
                    pipeline_name="__default__")
