"""A new sqlite store is a copy of an empty store MLflow built: the same as MLflow's own."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from kmlc.tracking.client import open_client, seed_sqlite_store


def _rows(db: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as con:
        return sorted(con.execute(query).fetchall(), key=repr)


def _schema(db: Path) -> list[tuple[object, ...]]:
    """Tables and indexes, each table's columns and constraints as a set of clauses.

    MLflow's migrations rebuild some tables (alembic's batch mode) with their CHECK
    constraints in an order that varies from one process to the next (set order, which
    depends on the string hash seed): two stores MLflow creates differ in that order.
    """
    rows = _rows(db, "select type, name, tbl_name, sql from sqlite_master")
    return sorted(((kind, name, table, tuple(sorted(str(sql).split(", \n\t"))))
                   for kind, name, table, sql in rows), key=repr)


@pytest.mark.slow
def test_seeded_store_is_what_mlflow_creates(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KMLC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    own = tmp_path / "own" / "mlflow.db"
    own.parent.mkdir()
    MlflowClient(f"sqlite:///{own}").search_experiments(max_results=1)
    seeded = tmp_path / "seeded" / "mlflow.db"
    seeded.parent.mkdir()
    assert seed_sqlite_store(seeded)
    assert _schema(seeded) == _schema(own)
    for table in ("alembic_version", "workspaces"):
        assert _rows(seeded, f"select * from {table}") == _rows(own, f"select * from {table}")
    experiments = ("select experiment_id, name, artifact_location, lifecycle_stage, workspace "
                   "from experiments")
    assert _rows(seeded, experiments) == _rows(own, experiments)
    (template,) = (tmp_path / "cache" / "kmlc").glob("mlflow-*-empty.db")
    stamp = template.stat().st_mtime_ns
    again = tmp_path / "again" / "mlflow.db"
    again.parent.mkdir()
    assert seed_sqlite_store(again)  # from the cached template
    assert template.stat().st_mtime_ns == stamp
    client = open_client(f"sqlite:///{again}")
    run = client.create_run(client.create_experiment("x"))
    client.log_metric(run.info.run_id, "m", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_unusable_cache_leaves_the_store_to_mlflow(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("KMLC_CACHE_DIR", str(blocker))
    path = tmp_path / "mlflow.db"
    assert not seed_sqlite_store(path)
    assert not path.exists()
    client = open_client(f"sqlite:///{path}")  # MLflow builds it as usual
    assert client.get_experiment("0").name == "Default"


@pytest.mark.slow
def test_open_client_seeds_a_missing_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KMLC_CACHE_DIR", str(tmp_path / "cache"))
    open_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert list((tmp_path / "cache" / "kmlc").glob("mlflow-*-empty.db"))
    assert not list(tmp_path.glob(".*.seed"))


@pytest.mark.slow
def test_open_client_while_mlflow_itself_creates_the_store(tmp_path: Path) -> None:
    """`mlflow ui` (or a notebook) creating the store as kmlc opens it: kmlc waits it out.

    MLflow's own creation runs its migrations (about a second); kmlc opens the store
    once the file exists, mid-migration, and finds some tables there already.
    """
    path = tmp_path / "mlflow.db"
    uri = f"sqlite:///{path}"
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    creator = subprocess.Popen(
        [sys.executable, "-c", "import sys; from mlflow.tracking import MlflowClient; "
         "MlflowClient(sys.argv[1]).search_experiments()", uri], env=env,
        stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not path.exists() and time.time() < deadline and creator.poll() is None:
        time.sleep(0.005)
    client = open_client(uri)
    assert client.get_experiment("0").name == "Default"
    creator.communicate(timeout=60)  # it may lose the same race: only kmlc's side counts
    assert open_client(uri).get_experiment("0").name == "Default"


REGISTER = """\
import sys
from kmlc.tracking.client import open_client
client = open_client(sys.argv[1], sys.argv[2])
client.create_registered_model(sys.argv[3])
"""


@pytest.mark.slow
def test_a_registry_in_a_file_of_its_own_is_made_ready_like_the_store(
        tmp_path: Path, monkeypatch) -> None:
    """``tracking.registry_uri: sqlite:///registry.db``: the registry file is created
    whole before any client uses it (seeded, under its folder's lock), as the tracking
    store is, not by MLflow's migrations at the first registration (1-1.5 s, and a
    half-built file when cut off). Four processes registering at once on a new project
    all land."""
    monkeypatch.setenv("KMLC_CACHE_DIR", str(tmp_path / "cache"))
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = tmp_path / "registry.db"
    client = open_client(tracking, f"sqlite:///{registry}")
    # ready before the first registration, at the schema revision of a new store
    assert _rows(registry, "select version_num from alembic_version") == _rows(
        tmp_path / "mlflow.db", "select version_num from alembic_version")
    assert not list(tmp_path.glob(".*.seed")) and not list(tmp_path.glob(".*.new"))
    assert client.search_registered_models() == []

    again = tmp_path / "again"
    again.mkdir()
    env = {**os.environ, "DO_NOT_TRACK": "1", "KMLC_CACHE_DIR": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", REGISTER, f"sqlite:///{again}/mlflow.db",
                               f"sqlite:///{again}/registry.db", f"model-{i}"], env=env,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    names = sorted(m.name for m in MlflowClient(f"sqlite:///{again}/mlflow.db",
                                                f"sqlite:///{again}/registry.db"
                                                ).search_registered_models())
    assert names == [f"model-{i}" for i in range(4)]


def test_a_registry_that_holds_a_model_is_never_called_half_built(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """A registry file MLflow cannot read (here: a column its schema lacks) that holds a
    registered model but no run: named as the registry, with `mlflow db upgrade`, never
    "half-built, delete it"."""
    from kmlc.errors import TrackingError
    from kmlc.tracking import client as tracking_client

    monkeypatch.setenv("KMLC_CACHE_DIR", str(tmp_path / "cache"))
    tracking, registry = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "registry.db"
    open_client(tracking, f"sqlite:///{registry}").create_registered_model("kept")
    with sqlite3.connect(registry) as con:
        con.execute("ALTER TABLE experiments DROP COLUMN last_update_time")
    monkeypatch.setattr(tracking_client, "_ready", set())  # as a new process would
    with pytest.raises(TrackingError) as raised:
        open_client(tracking, f"sqlite:///{registry}")
    assert raised.value.message == (f"the model registry {registry} cannot be opened: "
                                    "no such column: experiments.last_update_time")
    assert raised.value.hint is not None and "mlflow db upgrade" in raised.value.hint
    assert "delete" not in raised.value.hint
    assert _rows(registry, "select name from registered_models") == [("kept",)]
