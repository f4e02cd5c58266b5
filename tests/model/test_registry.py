"""Registration honours ``tracking.registry_uri``: training and ``export-model --register``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from mini_project import MINI_YAML, write_mini
from mlflow.tracking import MlflowClient

from kmlc import RunOptions, load_project, run_pipeline
from kmlc.cli import main


def _registered(db: Path) -> list[tuple[str, int]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as con:
        try:
            return sorted(con.execute("select name, version from model_versions"))
        except sqlite3.OperationalError:  # no registry tables: nothing was registered there
            return []


@pytest.mark.slow
def test_registry_uri_other_than_tracking_store(tmp_path: Path) -> None:
    text = MINI_YAML.replace("tracking:\n", "tracking:\n  registry_uri: sqlite:///registry.db\n")
    text = text.replace("model:\n  input: instances\n",
                        "model:\n  input: instances\n  registered_name: mini\n"
                        "  alias: champion\n")
    path = write_mini(tmp_path / "proj", text)
    root = path.parent
    result = run_pipeline(load_project(path), "training", RunOptions(progress=False))
    assert result.status == "FINISHED"
    assert _registered(root / "registry.db") == [("mini", 1)]
    assert _registered(root / "mlflow.db") == []  # the tracking store holds no registry entry

    done = CliRunner().invoke(main, ["export-model", "-f", str(path), "--run-id",
                                     str(result.run_id), "--register", "mini-export",
                                     "--alias", "prod"])
    assert done.exit_code == 0, done.output
    assert _registered(root / "registry.db") == [("mini", 1), ("mini-export", 1)]
    assert _registered(root / "mlflow.db") == []

    registry = MlflowClient(f"sqlite:///{root / 'mlflow.db'}",
                            f"sqlite:///{root / 'registry.db'}")
    champion = registry.get_model_version_by_alias("mini", "champion")
    assert str(champion.version) == "1" and champion.run_id == result.run_id
    prod = registry.get_model_version_by_alias("mini-export", "prod")
    assert prod.run_id == result.run_id
    # the version's source is loadable from the registry alone
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(champion.source)
    assert model.metadata.metadata["kmlc_project"] == "mini"


@pytest.mark.slow
def test_export_registers_in_the_projects_store_whatever_mlflows_global_uri(
        tmp_path: Path, monkeypatch) -> None:
    """MLflow's process-wide tracking URI names another store (a notebook, a test, an
    environment variable): export-model reads and registers in the project's store."""
    import mlflow

    # the file names its store: MLflow's set_tracking_uri also sets MLFLOW_TRACKING_URI,
    # which names the store only where the file names none (MLflow's convention)
    path = write_mini(tmp_path / "proj", MINI_YAML.replace(
        "tracking:\n", "tracking:\n  uri: sqlite:///mlflow.db\n", 1))
    root = path.parent
    result = run_pipeline(load_project(path), "training", RunOptions(progress=False))
    assert result.status == "FINISHED"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{elsewhere / 'global.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{elsewhere / 'global.db'}")
    for args in (["--run-id", str(result.run_id), "--register", "from-run"],
                 ["--from-local", "--register", "from-local", "-o", str(tmp_path / "out")]):
        done = CliRunner().invoke(main, ["export-model", "-f", str(path), *args])
        assert done.exit_code == 0, done.output
    assert _registered(root / "mlflow.db") == [("from-local", 1), ("from-run", 1)]
    assert _registered(elsewhere / "global.db") == []
    assert not (elsewhere / "mlflow.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("key", "role", "setting"), [
    ("registry_uri", "model registry", "tracking.registry_uri"),
    ("uri", "tracking store", "tracking.uri, --tracking-uri")])
def test_a_store_whose_folder_is_missing_is_named_before_any_node_runs(
        tmp_path: Path, key: str, role: str, setting: str) -> None:
    text = MINI_YAML.replace("tracking:\n",
                             f"tracking:\n  {key}: sqlite:///nowhere/store.db\n")
    path = write_mini(tmp_path / "proj", text)
    done = CliRunner().invoke(main, ["run", "training", "-f", str(path)])
    assert done.exit_code == 1, done.output
    folder = path.parent / "nowhere"
    assert (f"error: the {role} sqlite:///{folder / 'store.db'} cannot be opened: "
            f"its folder {folder} does not exist (create the folder, or correct the path: "
            f"{setting}) [KMLC601]") in done.output
    assert "Traceback" not in done.output
    assert not folder.exists()
    assert not (path.parent / "data" / "06_models").exists()  # no node ran
