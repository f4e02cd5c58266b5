"""A public Kedro project, code unchanged: kedro-starters' spaceflights-pandas-viz.

Its reporting pipeline saves a plotly express figure (``plotly.PlotlyDataset``, the figure
built by the dataset from ``plotly_args``), a plotly graph-objects figure
(``plotly.JSONDataset``) and a matplotlib PNG (a node returning the ``pyplot`` module), all
versioned. The starter (``tests/data/kedro_starters/spaceflights-pandas-viz/SOURCE.md``)
is rendered, imported with ``kmlc import-kedro`` on the checkout as it is (not installed,
not on ``PYTHONPATH``), then run by ``kedro run`` and by ``kmlc run``: every file written
must be the same bytes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from starters import render

from kmlc.cli import main

PACKAGE = "spaceflights_pandas_viz"
VALUES = {"project_name": "Spaceflights Pandas Viz", "repo_name": "spaceflights-pandas-viz",
          "python_package": PACKAGE, "kedro_version": "1.7.0",
          "tools": "['None']", "example_pipeline": "True"}
# kedro-datasets 9 renamed the starter's matplotlib.MatplotlibWriter: the user's local
# environment names the new class for the same file (base configuration and code unchanged)
LOCAL_CATALOG = """\
dummy_confusion_matrix:
  type: matplotlib.MatplotlibDataset
  filepath: data/08_reporting/dummy_confusion_matrix.png
  versioned: true
"""
VERSION = re.compile(r"/\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{3}Z/")


@pytest.fixture
def viz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path, modules = list(sys.path), set(sys.modules)
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    yield render("spaceflights-pandas-viz", VALUES, tmp_path / "spaceflights-pandas-viz")
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith(PACKAGE):
            del sys.modules[name]


def _written(root: Path) -> dict[str, bytes]:
    """Every file under ``data/``, Kedro's version folder (a timestamp) shown as ``/V/``."""
    files = {}
    for path in sorted((root / "data").rglob("*")):
        if path.is_file():
            name = path.relative_to(root).as_posix()
            files[VERSION.sub("/V/", name)] = path.read_bytes()
    return files


@pytest.mark.slow
def test_spaceflights_viz_imports_and_runs_like_kedro(viz: Path, tmp_path: Path) -> None:
    # as kept: the starter's MatplotlibWriter is refused, located, with the new name offered
    # (`kedro run` refuses it too: "Dataset 'MatplotlibWriter' not found in 'matplotlib'")
    runner = CliRunner()
    refused = runner.invoke(main, ["import-kedro", str(viz)], catch_exceptions=False)
    assert refused.exit_code == 1, refused.output
    assert re.search(r"mlproject\.yml:\d+:\d+: error: datasets\.dummy_confusion_matrix\.type: "
                     r"unknown dataset type 'matplotlib\.MatplotlibWriter' \(did you mean "
                     r"'matplotlib\.MatplotlibDataset'\?\) \[KMLC331\]", refused.output)

    (viz / "conf" / "local" / "catalog.yml").write_text(LOCAL_CATALOG)
    original = shutil.copytree(viz, tmp_path / "original", ignore=shutil.ignore_patterns(
        "mlproject.yml"))
    imported = runner.invoke(main, ["import-kedro", "--force", str(viz)],
                             catch_exceptions=False)
    assert imported.exit_code == 0, imported.output
    assert "valid" in imported.output.splitlines()[-1]
    validated = runner.invoke(main, ["validate", "-f", str(viz / "mlproject.yml")],
                              catch_exceptions=False)
    assert validated.exit_code == 0, validated.output

    # both runs at once (each is mostly interpreter start-up and imports)
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    env.pop("PYTHONPATH", None)
    kmlc = str(Path(sys.executable).with_name("kmlc"))
    runs = [subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
            for argv, cwd in (([kmlc, "run"], viz),
                              ([sys.executable, "-m", "kedro", "run"], original))]
    for run in runs:
        output, _ = run.communicate(timeout=300)
        assert run.returncode == 0, output

    ours, theirs = _written(viz), _written(original)
    assert sorted(ours) == sorted(theirs)
    assert {"data/02_intermediate/preprocessed_shuttles.parquet",
            "data/06_models/regressor.pickle/V/regressor.pickle",
            "data/08_reporting/shuttle_passenger_capacity_plot_exp.json/V/"
            "shuttle_passenger_capacity_plot_exp.json",
            "data/08_reporting/shuttle_passenger_capacity_plot_go.json/V/"
            "shuttle_passenger_capacity_plot_go.json",
            "data/08_reporting/dummy_confusion_matrix.png/V/dummy_confusion_matrix.png",
            } <= set(ours)
    # parquet, pickle, plotly JSON and matplotlib's PNG (no timestamp in its metadata):
    # every file byte for byte
    assert [name for name in ours if ours[name] != theirs[name]] == []
