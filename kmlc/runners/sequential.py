"""The sequential runner: Kedro's ``SequentialRunner``, one node after another."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kmlc.config.spec import ProjectSpec

__all__ = ["make"]


def make(spec: ProjectSpec, hooks: Sequence[Any] = ()) -> Any:
    """Kedro's ``SequentialRunner`` (``kedro.runner`` is imported here: importing it sets
    up Kedro's logging, which the run does first)."""
    from kedro.runner import SequentialRunner

    return SequentialRunner()
