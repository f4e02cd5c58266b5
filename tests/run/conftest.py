"""Fixtures of the run tests: the mini project written into ``tmp_path``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mini_project import MINI_NODES, MINI_YAML, project_data


@pytest.fixture
def mini(tmp_path: Path) -> Callable[..., Path]:
    """``mini(text=MINI_YAML, nodes=MINI_NODES)`` writes tmp_path/proj; returns its file."""

    def write(text: str = MINI_YAML, nodes: str = MINI_NODES) -> Path:
        root = tmp_path / "proj"
        (root / "data" / "01_raw").mkdir(parents=True, exist_ok=True)
        instances, labels = project_data()
        (root / "data" / "01_raw" / "instances.csv").write_text(instances)
        (root / "data" / "01_raw" / "labels.csv").write_text(labels)
        (root / "mini_nodes.py").write_text(nodes)
        path = root / "mlproject.yml"
        path.write_text(text)
        return path

    return write
