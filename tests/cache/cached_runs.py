"""What the cache tests share: a small project written under a folder, a cached run in
process, the index's records by node, and a ``RunCache`` of a project's default pipeline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kmlc import RunOptions, load_project, run_pipeline
from kmlc.cache import INDEX_FILE, RunCache
from kmlc.compiler.project import compile_project


def write_project(root: Path, module: str, nodes: str, text: str) -> Path:
    """A project under ``root``: ``data/raw.csv`` (one column ``x``: 1, 2, 3), the node
    module ``module``.py holding ``nodes``, and its mlproject.yml (``text``), whose path
    is returned. The module is forgotten by this process, so the run imports this copy."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "raw.csv").write_text("x\n1\n2\n3\n")
    (root / f"{module}.py").write_text(nodes)
    (root / "mlproject.yml").write_text(text)
    sys.modules.pop(module, None)
    return root / "mlproject.yml"


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
