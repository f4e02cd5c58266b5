"""The tracking worker: MLflow's work in a second process, and what happens when either dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults import GATED, wait_for, write_gate_hook
from mini_project import kmlc_exe
from mlflow.tracking import MlflowClient

LIGHT_YAML = """\
version: 1
name: light
parameters:
  n: 3
  scale: {a: 2}
datasets:
  total: {type: mlflow.metric}
  curve: {type: mlflow.metric_history}
  summary: {type: json.JSONDataset, filepath: data/summary.json, track: artifact}
nodes:
  - name: count
    func: light_nodes.count
    inputs: [params:n, params:scale.a]
    outputs: [total, curve, summary]
"""

LIGHT_NODES = '''\
def count(n, a):
    return n * a, [float(i) for i in range(n)], {"n": n}
'''

# Runs the project in a fresh interpreter; prints whether MLflow was imported, and the run.
RUN_AND_REPORT = """\
import json, sys
from kmlc import RunOptions, load_project, run_pipeline
result = run_pipeline(load_project(sys.argv[1]), "__default__", RunOptions(progress=False))
print(json.dumps({"mlflow_imported": "mlflow" in sys.modules, "run_id": result.run_id,
                  "status": result.status}))
"""

ENV = {"DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}


def _light(root: Path, text: str = LIGHT_YAML) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "light_nodes.py").write_text(LIGHT_NODES)
    (root / "mlproject.yml").write_text(text)
    return root / "mlproject.yml"


def _client(path: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")


def _run_fresh(path: Path, **env: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", RUN_AND_REPORT, str(path)],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, **ENV, **env}, cwd=path.parent)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _check_light_run(path: Path, run_id: str) -> None:
    client = _client(path)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"n": "3", "scale.a": "2"}
    assert run.data.metrics["total"] == 6
    assert [m.value for m in client.get_metric_history(run_id, "curve")] == [0.0, 1.0, 2.0]
    assert {a.path for a in client.list_artifacts(run_id)} >= {"summary.json",
                                                               "mlproject.yml"}


@pytest.mark.slow
def test_the_main_process_never_imports_mlflow(tmp_path: Path) -> None:
    path = _light(tmp_path / "proj")
    report = _run_fresh(path)
    assert report["status"] == "FINISHED"
    assert report["mlflow_imported"] is False  # params, metrics, artifact: all in the worker
    _check_light_run(path, str(report["run_id"]))


@pytest.mark.slow
def test_without_the_worker_everything_is_tracked_in_process(tmp_path: Path) -> None:
    path = _light(tmp_path / "proj")
    report = _run_fresh(path, KMLC_TRACKING_WORKER="0")
    assert report["mlflow_imported"] is True
    _check_light_run(path, str(report["run_id"]))


@pytest.mark.slow
def test_a_parameter_mlflow_refuses_fails_the_run_after_the_nodes(tmp_path: Path) -> None:
    # MLflow refuses '@' in a parameter name; that is found in the worker, while the
    # nodes run, and reported when the run closes: FAILED, outputs kept, exit 1
    text = LIGHT_YAML.replace("  n: 3\n", "  n: 3\n  'bad@key': 1\n") + (
        "  - name: peek\n    func: light_nodes.peek\n    inputs: params:bad@key\n"
        "    outputs: peeked\n")
    path = _light(tmp_path / "proj", text)
    (path.parent / "light_nodes.py").write_text(LIGHT_NODES + "\ndef peek(x):\n    return x\n")
    done = subprocess.run([kmlc_exe(), "run", "-f", str(path)], capture_output=True,
                          text=True, timeout=180, env={**os.environ, **ENV})
    assert done.returncode == 1, done.stderr
    assert "log params failed" in done.stderr and "bad@key" in done.stderr
    assert "Traceback" not in done.stderr
    assert (path.parent / "data" / "summary.json").exists()
    client = _client(path)
    (run,) = client.search_runs([client.get_experiment_by_name("light").experiment_id])
    assert run.info.status == "FAILED"
    assert "bad@key" in run.data.tags["kmlc.error"]
    assert run.data.metrics["total"] == 6  # what was logged is kept


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _start_held_run(mini, gate: Path) -> tuple[Path, subprocess.Popen[str]]:
    """A real `kmlc run training` of the mini project held by its gate hook before the node
    check, once evaluate's outputs are saved (its metric logged: ``log_metrics`` waits for
    the worker's answer). The test signals it there, then opens the gate (``go``)."""
    path = mini(GATED)
    write_gate_hook(path.parent)
    gate.mkdir()
    proc = subprocess.Popen([kmlc_exe(), "run", "training", "-f", str(path)],
                            env={**os.environ, **ENV, "KMLC_TEST_GATE": str(gate),
                                 "KMLC_TEST_MOMENT": "before_node_run:check"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (gate / "reached").exists() or proc.poll() is not None,
                 seconds=120, what="the run to reach the node check")
        assert proc.poll() is None, proc.communicate()
    except BaseException:
        (gate / "go").write_text("")
        proc.kill()
        raise
    return path, proc


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_worker_killed_mid_run_the_run_is_closed_failed(mini, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    path, proc = _start_held_run(mini, gate)
    try:
        (worker,) = _children(proc.pid)
        os.kill(worker, signal.SIGKILL)
    finally:
        (gate / "go").write_text("")  # the main process goes on to the node check
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "tracking worker process stopped" in err
    assert "Traceback" not in err
    client = _client(path)
    (run,) = client.search_runs([client.get_experiment_by_name("mini").experiment_id])
    assert run.info.status == "FAILED"
    assert "tracking worker process stopped" in run.data.tags["kmlc.error"]
    assert "accuracy" in run.data.metrics


@pytest.mark.slow
def test_main_process_killed_the_worker_closes_the_run_killed(mini, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    path, proc = _start_held_run(mini, gate)
    proc.kill()  # SIGKILL: no handler in the main process runs
    proc.communicate(timeout=60)
    (gate / "go").write_text("")
    client = _client(path)
    experiment = client.get_experiment_by_name("mini").experiment_id
    deadline = time.time() + 60
    while True:
        (run,) = client.search_runs([experiment])
        if run.info.status != "RUNNING" or time.time() > deadline:
            break
        time.sleep(0.2)
    assert run.info.status == "KILLED"
    assert run.data.tags["kmlc.error"] == "the kmlc process ended before closing the run"
    assert "accuracy" in run.data.metrics


@pytest.mark.slow
def test_ctrl_c_reaches_both_processes_and_the_run_is_killed(mini, tmp_path: Path
                                                               ) -> None:
    # a terminal's Ctrl-C signals the whole process group: the worker ignores it and
    # closes the run as the main process tells it to. Started here with SIGINT ignored, as
    # a process started in the background (`&`, nohup, some CI runners) inherits it: kmlc
    # handles Ctrl-C all the same, whatever the disposition it inherited.
    path = mini(GATED)
    write_gate_hook(path.parent)
    gate = tmp_path / "gate"
    gate.mkdir()
    # without a logging config left in the environment by in-process runs: Kedro's own, with -v
    env = {k: v for k, v in os.environ.items() if k != "KEDRO_LOGGING_CONFIG"}
    proc = subprocess.Popen([kmlc_exe(), "run", "training", "-v", "-f", str(path), "--params",
                             "sleep=60"], env={**env, **ENV, "KMLC_TEST_GATE": str(gate),
                                               "KMLC_TEST_MOMENT": "before_node_run:check"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:  # the signal goes when the project's hook says the node check is about to run
        wait_for(lambda: (gate / "reached").exists() or proc.poll() is not None,
                 seconds=120, what="the run to reach the node check")
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        (gate / "go").write_text("")
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    # -v shows Kedro's INFO lines, never MLflow's internals (alembic's migrations of the
    # new store, in the tracking worker)
    assert "Completed node: clean" in out + err
    assert "Running upgrade" not in out + err and "Context impl" not in out + err
    client = _client(path)
    (run,) = client.search_runs([client.get_experiment_by_name("mini").experiment_id])
    assert run.info.status == "KILLED"
    assert run.data.tags["kmlc.error"] == "interrupted (SIGINT/SIGTERM)"


@pytest.mark.slow
def test_worker_dead_before_the_run_opens_tracks_in_process(mini, monkeypatch) -> None:
    from kmlc import RunOptions, load_project, run_pipeline
    from kmlc.tracking import worker as tracking_worker

    send = tracking_worker.Remote.send

    def die_then_send(self, name, *args, wait=True):  # type: ignore[no-untyped-def]
        if name == "open_run":
            os.kill(self.pid, signal.SIGKILL)
            self._proc.wait()
        return send(self, name, *args, wait=wait)

    monkeypatch.setattr(tracking_worker.Remote, "send", die_then_send)
    path = mini()
    result = run_pipeline(load_project(path), "training", RunOptions(progress=False))
    assert result.status == "FINISHED"
    assert any("tracked in this process instead" in note for note in result.notes)
    run = _client(path).get_run(str(result.run_id))
    assert run.info.status == "FINISHED"
    assert run.data.params["model.c"] == "0.5" and "accuracy" in run.data.metrics


@pytest.mark.slow
def test_a_new_store_is_created_quietly(tmp_path: Path) -> None:
    # MLflow and alembic log INFO lines while creating a store; kmlc shows none of them
    path = _light(tmp_path / "proj")
    done = subprocess.run([kmlc_exe(), "run", "-f", str(path)], capture_output=True,
                          text=True, timeout=180, env={**os.environ, **ENV})
    assert done.returncode == 0, done.stderr
    assert "INFO" not in done.stderr and "database tables" not in done.stderr, done.stderr
    assert (path.parent / "mlflow.db").exists()


IRIS = Path(__file__).resolve().parents[2] / "examples" / "iris"

TRAIN_AND_REPORT = """\
import json, sys
from kmlc import RunOptions, load_project, run_pipeline
result = run_pipeline(load_project(sys.argv[1]), "training", RunOptions(progress=False))
print(json.dumps({"mlflow_imported": "mlflow" in sys.modules, "run_id": result.run_id,
                  "model_uri": result.model_uri, "status": result.status}))
"""


@pytest.mark.slow
def test_a_training_run_logs_its_model_without_importing_mlflow_here(tmp_path: Path) -> None:
    """The inference plan is probed here (where the node modules are loaded) and the
    model is built and logged by the worker: this process never loads MLflow."""
    import shutil

    import mlflow.pyfunc
    import pandas as pd

    project = tmp_path / "iris"
    shutil.copytree(IRIS, project, ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts"))
    done = subprocess.run([sys.executable, "-c", TRAIN_AND_REPORT,
                           str(project / "mlproject.yml")], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **ENV}, cwd=project)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == "FINISHED"
    assert report["mlflow_imported"] is False
    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(uri)
    model_id = str(report["model_uri"]).removeprefix("models:/")
    logged = client.get_logged_model(model_id)
    from mlflow.entities import LoggedModelStatus

    assert logged.status == LoggedModelStatus.READY
    assert logged.source_run_id == report["run_id"]
    rows = pd.read_csv(project / "data" / "01_raw" / "instances.csv")
    model = mlflow.pyfunc.load_model(logged.artifact_location)
    example = model.input_example
    assert example.reset_index(drop=True).equals(rows.head(5).reset_index(drop=True))
    assert len(model.predict(rows)) == len(rows)


PROBE_FAIL_YAML = """\
version: 1
name: probe_fail
datasets:
  rows: {type: pandas.CSVDataset, filepath: data/rows.csv}
  table: {type: pickle.PickleDataset, filepath: data/table.pkl}
nodes:
  - name: learn
    func: probe_fail_nodes.learn
    inputs: rows
    outputs: table
    tags: [training]
  - name: score
    func: probe_fail_nodes.score
    inputs: [rows, table]
    outputs: scores
    tags: [inference]
model:
  input: rows
"""

PROBE_FAIL_NODES = '''\
def learn(rows):
    return {"mean": float(rows["x"].mean())}


def score(rows, table):
    raise ValueError("no score for these rows")
'''


@pytest.mark.slow
def test_an_inference_plan_failing_on_the_first_rows_fails_the_run_without_a_model(
        tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("x\n1\n2\n3\n")
    (tmp_path / "probe_fail_nodes.py").write_text(PROBE_FAIL_NODES)
    (tmp_path / "mlproject.yml").write_text(PROBE_FAIL_YAML)
    done = subprocess.run([kmlc_exe(), "run", "training"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **ENV}, cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert ("its model could not be logged" in done.stderr
            and "fails on the first rows of 'rows': ValueError: no score for these rows"
            in done.stderr), done.stderr
    assert (tmp_path / "data" / "table.pkl").exists()  # the pipeline's outputs are kept
    client = _client(tmp_path / "mlproject.yml")
    run = client.search_runs([client.get_experiment_by_name("probe_fail").experiment_id])[0]
    assert run.info.status == "FAILED"
    assert not client.search_logged_models([run.info.experiment_id])
