"""The table of installed distributions the model's requirements are read from."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kmlc.model.closure import distribution_table, distributions


def _install(folder: Path, name: str, module: str) -> None:
    """A distribution as pip leaves it: its module and a dist-info folder naming it."""
    (folder / f"{module}.py").write_text("VALUE = 1\n")
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "top_level.txt").write_text(f"{module}\n")
    (info / "RECORD").write_text(f"{module}.py,,\n")


def test_the_table_follows_installs_not_a_projects_outputs(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    site = tmp_path / "site"
    site.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.syspath_prepend(str(site))
    _install(site, "kmlc-probe-one", "kmlc_probe_one")
    assert distributions(["kmlc_probe_one"]) == ["kmlc-probe-one"]
    first = distribution_table()
    monkeypatch.syspath_prepend(str(project))  # a project's code folder, as a run adds it
    (project / "output.csv").write_text("x\n1\n")  # its outputs change the folder
    assert distribution_table() == first
    time.sleep(0.01)  # a later modification time for the install below
    _install(site, "kmlc-probe-two", "kmlc_probe_two")  # installed while the process lives
    assert distributions(["kmlc_probe_two"]) == ["kmlc-probe-two"]
