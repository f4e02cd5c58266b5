"""Fixtures of the export tests: a trained mini project (one training run, shared)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mini_project import project_copy, write_mini
from spaceflights_model_project import write_spaceflights


@pytest.fixture(scope="module")
def trained_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """One trained project per test module: (project file, training run id)."""
    import os

    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    from kmlc import RunOptions, load_project, run_pipeline

    path = write_mini(tmp_path_factory.mktemp("trained") / "proj")
    result = run_pipeline(load_project(path), "training", RunOptions(progress=False))
    yield path, str(result.run_id)


@pytest.fixture
def trained_copy(trained_template: tuple[Path, str], tmp_path: Path) -> Path:
    """This test's own copy of the module's trained project (see :func:`project_copy`)."""
    return project_copy(trained_template[0], tmp_path / "proj")


@pytest.fixture(scope="session")
def spaceflights_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The ported kedro-starters spaceflights project, trained once: (project, model folder)."""
    import os

    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    import mlflow
    from mini_project import mlflow_uri_restored

    from kmlc import RunOptions, load_project, run_pipeline

    root = tmp_path_factory.mktemp("spaceflights")
    project = root / "project"
    result = run_pipeline(load_project(write_spaceflights(project)), "training",
                          RunOptions(progress=False))
    assert result.status == "FINISHED" and result.model_uri
    with mlflow_uri_restored():  # a session fixture: nothing may leak into later tests
        mlflow.set_tracking_uri(result.tracking_uri)  # models:/ URIs resolve through it
        local = mlflow.artifacts.download_artifacts(result.model_uri,
                                                    dst_path=str(root / "model"))
    yield project, Path(local)
