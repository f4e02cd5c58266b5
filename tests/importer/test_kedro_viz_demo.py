"""A public modular Kedro project, code unchanged: kedro-viz's ``demo-project``.

Namespaced modular pipelines (``ingestion``, ``feature_engineering``, ``reporting``, and
``train_evaluation`` holding ``linear_regression`` and ``random_forest``), a transcoded
dataset (``int_typed_shuttles@pandas1``/``@pandas2``), a dataset factory, layers in
``metadata.kedro-viz``, and a custom dataset class under ``src/`` (``ImageDataset``). See
``tests/data/kedro_viz_demo/README.md`` for what is kept.

The checkout is used as a new user has it: not pip-installed, nothing of it on
``PYTHONPATH``. It is imported once (``kmlc import-kedro``, one command), then run once by
``kedro run`` and once by ``kmlc run``; some nodes draw from NumPy's and Python's global
random state, unseeded, so both runs seed them the same way (a ``sitecustomize`` on
``PYTHONPATH``), and every file the two runs write must then be byte-identical.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

# about 2 minutes on 2 free cores (two runs of 20 nodes); several times that when others load them
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

DEMO = Path(__file__).resolve().parents[1] / "data" / "kedro_viz_demo"
VERSION = re.compile(r"/\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{3}Z/")


def _env(seed: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(DO_NOT_TRACK="1", KEDRO_DISABLE_TELEMETRY="true", PYTHONDONTWRITEBYTECODE="1")
    if seed is not None:
        env["PYTHONPATH"] = str(seed)
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _files(root: Path) -> dict[str, bytes]:
    """The files under root/data, a versioned dataset's timestamp folder written as /V/."""
    return {VERSION.sub("/V/", path.relative_to(root).as_posix()): path.read_bytes()
            for path in sorted((root / "data").rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("kedro_viz_demo")
    ours = shutil.copytree(DEMO, root / "ours")
    theirs = shutil.copytree(DEMO, root / "theirs")
    seed = root / "seed"
    seed.mkdir()
    (seed / "sitecustomize.py").write_text(
        "import random\nimport numpy\nrandom.seed(0)\nnumpy.random.seed(0)\n")
    kmlc = str(Path(sys.executable).with_name("kmlc"))
    imported = _run([kmlc, "import-kedro", "."], ours, _env())
    validated = _run([kmlc, "validate"], ours, _env())
    ran = _run([kmlc, "run"], ours, _env(seed))
    kedro = _run([sys.executable, "-m", "kedro", "run"], theirs, _env(seed))
    return {"ours": ours, "theirs": theirs, "import": imported, "validate": validated,
            "run": ran, "kedro": kedro}


def test_imported_in_one_command_and_valid_as_it_is(demo: dict[str, Any]) -> None:
    imported, validated = demo["import"], demo["validate"]
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "mlproject.yml: valid" in validated.stdout
    assert "error" not in validated.stdout + validated.stderr
    doc: Any = YAML(typ="safe", pure=True).load(demo["ours"] / "mlproject.yml")
    datasets = doc["datasets"]
    # the project's own dataset class, found under src/ as Kedro finds it
    assert datasets["reporting.cancellation_policy_grid"]["type"] == (
        "demo_project.extras.datasets.image_dataset.ImageDataset")
    assert {"ingestion.int_typed_shuttles@pandas1",
            "ingestion.int_typed_shuttles@pandas2"} <= set(datasets)
    assert datasets["companies"]["metadata"]["kedro-viz"]["layer"] == "raw"  # layers kept
    nodes = {(node.get("namespace"), node["name"].partition("__")[0])
             for node in doc["nodes"]}
    assert {("ingestion", "apply_types_to_shuttles"), ("ingestion", "combine_step"),
            ("train_evaluation.linear_regression", "train_model"),
            ("train_evaluation.random_forest", "train_model")} <= nodes
    # Kedro runs 21 nodes; the 21st (`lambda x: x` in data_ingestion/pipeline.py, its
    # output kept in memory and read by no node) has no module path: its text is copied
    assert len(nodes) == 21
    assert ("ingestion", "lambda") in nodes
    assert "not converted" not in imported.stdout + imported.stderr
    assert doc["code"] == ["src", "kmlc_imported"]
    assert "def ingestion_lambda__2de1c226(x):\n    return x\n" in (
        demo["ours"] / "kmlc_imported" / "kedro_lambdas.py").read_text()
    assert set(doc["pipelines"]) >= {"data_ingestion", "feature_engineering",
                                     "modelling_stage", "reporting_stage", "pre_modelling"}


def test_kmlc_run_writes_the_files_kedro_run_writes(demo: dict[str, Any]) -> None:
    for name in ("run", "kedro"):
        done = demo[name]
        assert done.returncode == 0, done.stdout + done.stderr
    ours, theirs = _files(demo["ours"]), _files(demo["theirs"])
    assert sorted(ours) == sorted(theirs)
    assert len(ours) == 18  # 3 raw inputs, 15 outputs (3 of them versioned)
    different = [name for name in ours if ours[name] != theirs[name]]
    assert different == []  # byte-identical, the models and the plots included
