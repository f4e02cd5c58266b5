"""The thread runner: Kedro's ``ThreadRunner``, independent nodes in threads of this process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kmlc.config.spec import ProjectSpec

__all__ = ["make"]


def make(spec: ProjectSpec, hooks: Sequence[Any] = ()) -> Any:
    """Kedro's ``ThreadRunner`` (``kedro.runner`` is imported here, as in ``sequential``)."""
    from kedro.runner import ThreadRunner

    return ThreadRunner()
