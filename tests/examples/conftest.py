"""Fixtures of the example tests; each module defines ``project`` (the example after its
README commands ran)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def client(project: Path):
    """An MLflow client on the example's own sqlite store."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{project}/mlflow.db")
