"""Fixtures of the run tests: the mini project written into ``tmp_path``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mini_project import MINI_NODES, MINI_YAML, write_mini


@pytest.fixture
def mini(tmp_path: Path) -> Callable[..., Path]:
    """``mini(text=MINI_YAML, nodes=MINI_NODES)`` writes tmp_path/proj; returns its file."""

    def write(text: str = MINI_YAML, nodes: str = MINI_NODES) -> Path:
        return write_mini(tmp_path / "proj", text, nodes)

    return write
