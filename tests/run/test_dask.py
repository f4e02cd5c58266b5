"""The Dask runner on real Dask: a scheduler and two workers started here, and a LocalCluster.

The workers run in an empty folder with no PYTHONPATH: the project's node code
reaches them only through the runner's upload. Everything logged from the workers
must land in the one MLflow run the client opened.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from dask_cluster import DaskCluster
from mini_project import kmlc_exe
from mlflow.tracking import MlflowClient

from kmlc import RunOptions, load_project, run_pipeline
from kmlc.cli import main

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

IRIS = Path(__file__).resolve().parents[2] / "examples" / "iris"
WIDE = 8

SEEDS = ", ".join(f"s{i}: {i + 1}" for i in range(WIDE))
PARTS = "".join(f"  - name: part{i}\n    func: wide_nodes.part\n"
                f"    inputs: [params:seeds.s{i}, params:fail, params:sleep]\n"
                f"    outputs: part{i}\n" for i in range(WIDE))
WIDE_YAML = f"""\
version: 1
name: wide
hooks: [wide_nodes.Recorder]
parameters:
  fail: false
  sleep: 0
  seeds: {{{SEEDS}}}
datasets:
  total: {{type: mlflow.metric}}
  summary: {{type: json.JSONDataset, filepath: data/summary.json}}
nodes:
{PARTS}  - name: join
    func: wide_nodes.join
    inputs: [{", ".join(f"part{i}" for i in range(WIDE))}]
    outputs: [total, summary]
"""

WIDE_NODES = '''\
"""A wide pipeline: independent parts, then one join."""

import os
import time
from pathlib import Path

from kedro.framework.hooks import hook_impl


def part(seed, fail, sleep):
    if fail and seed == 4:
        raise ValueError(f"part {seed} refuses")
    time.sleep(sleep if seed == 1 else 0)
    return {"seed": seed, "value": sum(i * seed for i in range(1000)), "pid": os.getpid()}


def join(*parts):
    total = float(sum(p["value"] for p in parts))
    return total, {"total": total, "seeds": [p["seed"] for p in parts]}


class Recorder:
    """Runs on the worker: one file per node, written after the node ran."""

    @hook_impl
    def after_node_run(self, node, catalog, inputs, outputs, is_async, run_id):
        folder = Path(HOOKS_DIR)  # absolute: on a worker this module lives in a zip
        folder.mkdir(parents=True, exist_ok=True)
        (folder / node.name).write_text(str(os.getpid()))
'''


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    dask = DaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        yield dask
    finally:
        dask.stop()


def _wide(folder: Path) -> Path:
    folder.mkdir()
    hooks = repr(str(folder / "data" / "hooks"))
    (folder / "wide_nodes.py").write_text(WIDE_NODES.replace("HOOKS_DIR", hooks, 1))
    (folder / "mlproject.yml").write_text(WIDE_YAML)
    return folder / "mlproject.yml"


def _iris(folder: Path) -> Path:
    shutil.copytree(IRIS, folder, ignore=shutil.ignore_patterns(
        "mlflow.db", "mlruns", "__pycache__", "0[2-9]_*"))
    return folder / "mlproject.yml"


def _run(path: Path, pipeline: str = "__default__", params: tuple[str, ...] = (),
         **options: object):
    spec = load_project(path, params=params, runner=options.pop("runner", None),  # type: ignore[arg-type]
                        address=options.pop("address", None))  # type: ignore[arg-type]
    return run_pipeline(spec, pipeline, RunOptions(progress=False, **options))  # type: ignore[arg-type]


def _only_run(path: Path, experiment: str) -> object:
    client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def test_iris_and_a_wide_pipeline_on_a_remote_cluster(cluster: DaskCluster,
                                                      tmp_path: Path) -> None:
    seq, dask = _iris(tmp_path / "seq"), _iris(tmp_path / "dask")
    _run(seq, "training")
    result = _run(dask, "training", runner="dask", address=cluster.address)
    assert result.status == "FINISHED"
    run, expected = _only_run(dask, "iris"), _only_run(seq, "iris")
    assert run.info.run_id == result.run_id
    assert run.data.tags["kmlc.runner"] == "dask"
    assert run.data.metrics == expected.data.metrics
    assert {"accuracy", "test.f1_macro"} <= set(run.data.metrics)
    assert run.data.params == expected.data.params
    client = MlflowClient(f"sqlite:///{dask.parent / 'mlflow.db'}")
    assert "reports" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert result.model_uri is not None  # logged by the client at the end, into the run
    for rel in ("data/06_models/classifier.pkl", "data/06_models/scaler.pkl"):
        assert (dask.parent / rel).read_bytes() == (seq.parent / rel).read_bytes(), rel

    wide_seq, wide = _wide(tmp_path / "wide_seq"), _wide(tmp_path / "wide")
    _run(wide_seq)
    result = _run(wide, runner="dask", address=cluster.address)
    summary = json.loads((wide.parent / "data/summary.json").read_text())
    assert summary == json.loads((wide_seq.parent / "data/summary.json").read_text())
    assert _only_run(wide, "wide").data.metrics == {"total": summary["total"]}
    # the project's hook ran on the workers, once per node, in worker processes
    pids = {p.read_text() for p in (wide.parent / "data/hooks").iterdir()}
    assert len(list((wide.parent / "data/hooks").iterdir())) == WIDE + 1
    assert str(os.getpid()) not in pids


def test_failing_node_marks_the_run_failed_naming_node_and_worker(cluster: DaskCluster,
                                                                 tmp_path: Path) -> None:
    path = _wide(tmp_path / "wide")
    out = CliRunner().invoke(main, ["run", "-f", str(path), "--address", cluster.address,
                                    "--params", "fail=true"])
    assert out.exit_code == 1, out.output
    assert "node 'part3' failed on Dask worker tcp://127.0.0.1:" in out.output
    assert "ValueError: part 4 refuses" in out.output
    assert "Traceback" not in out.output
    run = _only_run(path, "wide")
    assert run.info.status == "FAILED"
    assert run.data.tags["kmlc.failed_node"] == "part3"
    assert not (path.parent / "data/summary.json").exists()


def test_interrupt_cancels_the_tasks_and_marks_the_run_killed(cluster: DaskCluster,
                                                              tmp_path: Path) -> None:
    path = _wide(tmp_path / "wide")
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen([kmlc_exe(), "run", "-f", str(path), "--address", cluster.address,
                             "--params", "sleep=15"], env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # the other parts finish while part0 sleeps
        if line.startswith(f"[{WIDE - 1}/{WIDE + 1}]"):
            break
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: run" in err and "marked KILLED" in err
    assert _only_run(path, "wide").info.status == "KILLED"
    client = cluster.client()
    deadline = time.monotonic() + 20
    while any(keys for keys in client.processing().values()):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "tasks left on the cluster"
        time.sleep(0.2)
    assert not (path.parent / "data/summary.json").exists()


def _warning(stderr: Path, proc: subprocess.Popen[str], needle: str) -> str:
    """The first warning line of ``stderr`` that holds ``needle``, once the run wrote it."""
    deadline = time.monotonic() + 90
    while True:
        lines = [line for line in stderr.read_text().splitlines()
                 if line.startswith("warning: ") and needle in line]
        if lines:
            return lines[0]
        assert proc.poll() is None and time.monotonic() < deadline, stderr.read_text()
        time.sleep(0.2)


@contextlib.contextmanager
def _running(cluster: DaskCluster, path: Path, stderr: Path, *params: str
             ) -> Iterator[subprocess.Popen[str]]:
    """A `kmlc run` of ``path`` on ``cluster`` (its stderr in a file); on the way out the
    run is killed if it still runs, and the cluster stopped."""
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    argv = [kmlc_exe(), "run", "-f", str(path), "--address", cluster.address]
    for item in params:
        argv += ["--params", item]
    with stderr.open("w") as err_file:
        proc = subprocess.Popen(argv, env=env, stderr=err_file, stdout=subprocess.PIPE,
                                text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        cluster.stop()


def _finishes(proc: subprocess.Popen[str], path: Path, stderr: Path) -> None:
    """The run ends FINISHED, every part joined, each warning also a note of its summary."""
    proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.read_text()
    assert _only_run(path, "wide").info.status == "FINISHED"
    summary = json.loads((path.parent / "data/summary.json").read_text())
    assert summary["seeds"] == list(range(1, WIDE + 1))
    text = stderr.read_text()
    for line in text.splitlines():
        if line.startswith("warning: "):
            assert f"note: {line.removeprefix('warning: ')}" in text


def test_a_scheduler_without_workers_is_said_and_the_run_waits_for_one(tmp_path: Path
                                                                       ) -> None:
    """Dask waits for a worker without a word: kmlc says so as it connects, and the run
    goes on once a worker joins."""
    (tmp_path / "dask").mkdir()
    empty = DaskCluster(tmp_path / "dask", workers=0)
    path = _wide(tmp_path / "wide")
    stderr = tmp_path / "stderr.txt"
    with _running(empty, path, stderr) as proc:
        warning = _warning(stderr, proc, "has no worker")
        assert warning == (f"warning: the Dask scheduler at {empty.address} has no worker: "
                           "the tasks wait until one connects (start one with `dask worker "
                           f"{empty.address}`)")
        time.sleep(1)
        assert proc.poll() is None  # waiting, as Dask does
        assert not (path.parent / "data/summary.json").exists()
        empty.add_worker()
        _finishes(proc, path, stderr)


def test_the_last_worker_lost_mid_run_is_said_and_the_run_waits_for_another(
        tmp_path: Path) -> None:
    (tmp_path / "dask").mkdir()
    single = DaskCluster(tmp_path / "dask", workers=1)
    path = _wide(tmp_path / "wide")
    stderr = tmp_path / "stderr.txt"
    client = single.client()
    (pid,) = client.run(os.getpid).values()  # type: ignore[attr-defined]
    with _running(single, path, stderr, "sleep=6") as proc:
        deadline = time.monotonic() + 90
        while not any(str(k).startswith("part0-") for keys in  # part0 sleeps 6 s
                      client.processing().values() for k in keys):  # type: ignore[attr-defined]
            assert time.monotonic() < deadline and proc.poll() is None, stderr.read_text()
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        warning = _warning(stderr, proc, "is left")
        assert warning == (f"warning: no Dask worker of the scheduler at {single.address} is "
                           "left: the tasks wait until one connects")
        assert "was lost while it held node(s) part0" in stderr.read_text()
        single.add_worker()
        _finishes(proc, path, stderr)


def _run_acting_while_part0_runs(cluster: DaskCluster, path: Path, sleep: int,
                                 act: Callable[[str], object]) -> tuple[Any, str]:
    """Run the wide project on ``cluster``, part0 sleeping ``sleep`` s; ``act(worker)``
    once, from another thread, when part0 is seen running on ``worker``."""
    client = cluster.client()
    acted: list[str] = []

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for worker, keys in client.processing().items():  # type: ignore[attr-defined]
                if any(str(k).startswith("part0-") for k in keys):
                    act(worker)
                    acted.append(worker)
                    return
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = _run(path, params=(f"sleep={sleep}",), runner="dask", address=cluster.address)
    finally:
        watcher.join()
    assert acted, "part0 was never seen running"
    return result, acted[0]


def test_a_worker_killed_mid_run_is_retried_and_reported(cluster: DaskCluster,
                                                         tmp_path: Path) -> None:
    path = _wide(tmp_path / "wide")
    pids = cluster.client().run(os.getpid)  # type: ignore[attr-defined]

    def kill(worker: str) -> None:
        time.sleep(0.5)  # part0 sleeps 6 s: it is still running
        os.kill(pids[worker], 9)

    try:
        result, killed = _run_acting_while_part0_runs(cluster, path, 6, kill)
    finally:
        cluster.add_worker()  # back to two workers for whatever runs next
    assert result.status == "FINISHED"
    assert any(f"Dask worker {killed} was lost while it held node(s) part0" in note
               for note in result.notes), result.notes
    summary = json.loads((path.parent / "data/summary.json").read_text())
    assert summary["seeds"] == list(range(1, WIDE + 1))


def test_another_clients_broadcast_mid_run_leaves_the_run_connected(cluster: DaskCluster,
                                                                    tmp_path: Path) -> None:
    """A team's cluster has other users: one that broadcasts data (``Client.replicate``)
    makes Dask log an event it cannot send to the clients that listen to all events."""
    from distributed import Client

    path = _wide(tmp_path / "wide")

    def broadcast(_worker: str) -> None:
        with Client(cluster.address, timeout="30s") as other:
            other.scatter([1], broadcast=True)

    result, _ = _run_acting_while_part0_runs(cluster, path, 4, broadcast)
    assert result.status == "FINISHED", result.notes
    summary = json.loads((path.parent / "data/summary.json").read_text())
    assert summary["seeds"] == list(range(1, WIDE + 1))


def test_local_cluster(tmp_path: Path) -> None:
    path = _wide(tmp_path / "wide")
    text = path.read_text().replace("hooks:", "runner: {type: dask, workers: 2}\nhooks:")
    path.write_text(text)
    result = _run(path)
    assert result.status == "FINISHED"
    run = _only_run(path, "wide")
    assert run.data.tags["kmlc.runner"] == "dask"
    summary = json.loads((path.parent / "data/summary.json").read_text())
    assert run.data.metrics == {"total": summary["total"]}
