"""A dataset path in any spelling of fsspec's local protocols (``FILE://``, ``local://``)
is a local path: ``kmlc run`` refuses one outside the project, as for a plain path, and
writes nothing there; with ``allow_outside: true`` it writes exactly there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from mini_project import MINI_YAML, kmlc_exe, write_mini

REPORT = "filepath: data/08_reporting/report.json"


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    return subprocess.run([kmlc_exe(), *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["FILE", "local", "Local"])
def test_a_local_url_outside_the_project_is_refused_and_nothing_is_written(
        tmp_path: Path, scheme: str) -> None:
    outside = tmp_path / "outside" / "report.json"
    root = tmp_path / "proj"
    assert REPORT in MINI_YAML
    write_mini(root, MINI_YAML.replace(REPORT, f"filepath: {scheme}://{outside}"))
    done = _run(root, "run", "training")
    assert done.returncode == 1, done.stdout + done.stderr
    assert (f"datasets.report.filepath: '{scheme}://{outside}' is outside the project folder"
            in done.stderr) and "[KMLC320]" in done.stderr
    assert not (tmp_path / "outside").exists()


@pytest.mark.slow
def test_allowed_outside_a_local_url_is_written_where_kedro_writes_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "report.json"
    outside.parent.mkdir()
    root = tmp_path / "proj"
    write_mini(root, MINI_YAML.replace(
        REPORT, f"filepath: FILE://{outside}\n    allow_outside: true"))
    done = _run(root, "run", "training")
    assert done.returncode == 0, done.stderr[-3000:]
    assert outside.is_file()
