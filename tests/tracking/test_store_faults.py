"""A disk that fills while the sqlite store is created: on a real, small tmpfs.

Mounting needs root (and a kernel that lets this process mount); where it cannot, the
tests are skipped and say why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mini_project import kmlc_exe


def _mount(folder: Path, size: str, remount: bool = False) -> subprocess.CompletedProcess[str]:
    options = f"remount,size={size}" if remount else f"size={size}"
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs (an empty MLflow store is about 1 MB): remount it bigger to free space."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = _mount(disk, "512k") if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    if done is None or done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): "
                    + (done.stderr.strip() if done is not None else "not root"))
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.fixture(scope="module")
def seed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kmlc's cache (its seed template: an empty store MLflow made), off the small disks and
    shared by this file's tests: MLflow's migrations build it once (tens of seconds of
    commits on a busy machine), not once a test. Each test's own store is still created
    in that test, from the template or (on a full disk) by MLflow."""
    return tmp_path_factory.mktemp("kmlc-cache")


def _env(cache: Path) -> dict[str, str]:
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
           "KMLC_CACHE_DIR": str(cache)}  # the seed template: not on the disk
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _run(path: Path, store: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kmlc_exe(), "run", "training", "-f", str(path), "--tracking-uri",
                           store], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_disk_full_while_the_store_is_created_leaves_nothing_broken(
        mini, small_disk: Path, seed_cache: Path) -> None:
    path = mini()
    store = f"sqlite:///{small_disk / 'mlflow.db'}"
    done = _run(path, store, _env(seed_cache))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot create the tracking store {small_disk / 'mlflow.db'}" in done.stderr
    assert "full" in done.stderr, done.stderr
    # one clean line: no traceback of kmlc's, none of MLflow's logged above it
    assert "Traceback" not in done.stderr and " ERROR " not in done.stderr, done.stderr
    assert [p.name for p in small_disk.iterdir()] == []  # no half-built store left
    assert _mount(small_disk, "64m", remount=True).returncode == 0  # space is freed
    done = _run(path, store, _env(seed_cache))
    assert done.returncode == 0, done.stderr
    assert " FINISHED " in done.stdout


@pytest.mark.slow
def test_a_half_built_store_is_named_with_what_to_do(mini, small_disk: Path, tmp_path: Path,
                                                     seed_cache: Path) -> None:
    path = mini()
    database = small_disk / "mlflow.db"
    # MLflow itself creating a store on the full disk (as `mlflow ui` would) leaves it
    # half-built: the tables of its migrations up to where the disk filled
    script = ("import sys\nfrom mlflow.tracking import MlflowClient\n"
              "MlflowClient(sys.argv[1]).search_experiments()\n")
    made = subprocess.run([sys.executable, "-c", script, f"sqlite:///{database}"],
                          capture_output=True, text=True, env=_env(seed_cache), cwd=tmp_path)
    assert made.returncode != 0 and database.exists(), made.stderr[-2000:]
    assert _mount(small_disk, "64m", remount=True).returncode == 0
    done = _run(path, f"sqlite:///{database}", _env(seed_cache))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"the tracking store {database} is half-built" in done.stderr, done.stderr
    assert f"delete {database} and run again" in done.stderr
    assert "Traceback" not in done.stderr and " ERROR " not in done.stderr, done.stderr
    database.unlink()
    done = _run(path, f"sqlite:///{database}", _env(seed_cache))
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_read_only_artifact_folder_fails_the_run_with_the_real_cause(
        mini, seed_cache: Path) -> None:
    path = mini()
    artifacts = path.parent / "mlartifacts"
    artifacts.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(artifacts)],
                          capture_output=True, text=True)
    if done.returncode != 0:  # root alone writes through file modes: a read-only mount
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.strip()}")
    try:
        done = subprocess.run([kmlc_exe(), "run", "training", "-f", str(path)],
                              env=_env(seed_cache), capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run(["umount", "-l", str(artifacts)], capture_output=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "marked FAILED: cannot write its artifacts" in done.stderr, done.stderr
    assert "Read-only file system" in done.stderr and "Traceback" not in done.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("mini").experiment_id])
    assert run.info.status == "FAILED"
    assert "Read-only file system" in run.data.tags["kmlc.error"]


@pytest.mark.slow
def test_a_disk_that_fills_during_a_run_leaves_no_run_running_for_ever(
        mini, small_disk: Path, tmp_path: Path, seed_cache: Path) -> None:
    from faults import GATED, wait_for, write_gate_hook
    from mlflow.tracking import MlflowClient

    assert _mount(small_disk, "64m", remount=True).returncode == 0
    path = mini(GATED)
    write_gate_hook(path.parent)
    store = f"sqlite:///{small_disk / 'mlflow.db'}"
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**_env(seed_cache), "KMLC_TEST_GATE": str(gate),
           "KMLC_TEST_MOMENT": "before_node_run:check"}
    proc = subprocess.Popen([kmlc_exe(), "run", "training", "-f", str(path), "--tracking-uri",
                             store], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    filler = small_disk / "filler"
    try:
        wait_for(lambda: (gate / "reached").exists() or proc.poll() is not None,
                 what="the hook")
        assert proc.poll() is None, proc.communicate()
        # the disk fills while the run runs; unbuffered, so that closing the file has
        # nothing left to write (a buffered file raises ENOSPC again when it closes)
        with filler.open("wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * (1 << 16))
            except OSError:
                pass
    finally:
        (gate / "go").write_text("")
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert " ERROR " not in err and "Traceback" not in err, err  # kmlc's lines only
    filler.unlink()  # space is freed
    client = MlflowClient(store)
    (first,) = client.search_runs([client.get_experiment_by_name("mini").experiment_id])
    assert first.info.status != "FINISHED"
    done = _run(path, store, _env(seed_cache))  # the next run on this host
    assert done.returncode == 0, done.stderr
    after = client.get_run(first.info.run_id)
    assert after.info.status in ("KILLED", "FAILED"), after.info.status
    if first.info.status == "RUNNING":  # left RUNNING by the full disk: closed by the next
        assert f"pid {first.data.tags['kmlc.pid']}) ended without closing the run" in \
            after.data.tags["kmlc.error"]
