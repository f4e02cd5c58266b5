"""Fixtures of the export tests: a trained mini project (one training run, shared)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "run"))

from mini_project import MINI_NODES, MINI_YAML, project_data


@pytest.fixture(scope="module")
def trained_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """One trained project per test module: (project file, training run id)."""
    import os

    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    from kmlc import RunOptions, load_project, run_pipeline

    root = tmp_path_factory.mktemp("trained") / "proj"
    (root / "data" / "01_raw").mkdir(parents=True)
    instances, labels = project_data()
    (root / "data" / "01_raw" / "instances.csv").write_text(instances)
    (root / "data" / "01_raw" / "labels.csv").write_text(labels)
    (root / "mini_nodes.py").write_text(MINI_NODES)
    path = root / "mlproject.yml"
    path.write_text(MINI_YAML)
    result = run_pipeline(load_project(path), "training", RunOptions(progress=False))
    yield path, str(result.run_id)
