"""Interrupted runs, with real signals to a real `kmlc run` and a real sqlite store.

A project hook waits on a marker file at the moment under test (no fixed sleeps): the
test sends the signal once the hook says it is there, then releases nothing: the
signal alone must end the run.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from faults import REGISTERED, env, signal_at_gate, wait_for, write_gate_hook
from mini_project import MINI_NODES, kmlc_exe
from mlflow.tracking import MlflowClient

from kmlc import RunOptions, load_project, run_pipeline


@pytest.mark.slow
def test_an_interrupted_run_registers_nothing_and_moves_no_alias(mini, tmp_path: Path) -> None:
    path = mini(REGISTERED)
    root = path.parent
    write_gate_hook(root)
    # version 1 and its alias, in process (what is under test is the three runs after it)
    first = run_pipeline(load_project(path), "training", RunOptions(progress=False))
    assert first.status == "FINISHED" and first.model_uri
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias("mini-model", "champion").version) == "1"
    experiment = client.get_experiment_by_name("mini").experiment_id
    for number, signum in enumerate((signal.SIGINT, signal.SIGTERM, signal.SIGKILL)):
        gate = tmp_path / f"gate{number}"
        gate.mkdir()
        proc = subprocess.Popen(
            [kmlc_exe(), "run", "training", "-f", str(path)], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            env=env(KMLC_TEST_GATE=str(gate), KMLC_TEST_MOMENT="after_pipeline_run"))
        try:
            wait_for(lambda gate=gate, proc=proc: (gate / "reached").exists()
                     or proc.poll() is not None, what="the hook")
            assert proc.poll() is None, proc.communicate()
            (run,) = client.search_runs([experiment], "attributes.status = 'RUNNING'")
            # the moment under test: the model is READY, the run has not ended
            of_run = f"source_run_id = '{run.info.run_id}' AND name = 'model'"
            (model,) = client.search_logged_models([experiment], filter_string=of_run)
            assert str(model.status) == "READY"
            proc.send_signal(signum)
            _out, err = proc.communicate(timeout=120)
        finally:
            (gate / "go").write_text("")
            if proc.poll() is None:
                proc.kill()
        if signum == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
        else:  # the README: exit code 130 and a line saying what became of the run
            assert proc.returncode == 130, err
            name = signal.Signals(signum).name
            assert f"run {run.info.run_id} marked KILLED ({name})" in err, err
            assert "Traceback" not in err, err
        wait_for(lambda: client.get_run(run.info.run_id).info.status != "RUNNING",  # noqa: B023
                  what="the worker to close the run")
        assert client.get_run(run.info.run_id).info.status == "KILLED"
        versions = client.search_model_versions("name = 'mini-model'")
        assert [str(v.version) for v in versions] == ["1"], [(v.version, v.run_id)
                                                              for v in versions]
        assert str(client.get_model_version_by_alias("mini-model", "champion").version) == "1"
        if signum != signal.SIGKILL:  # a killed run leaves no model behind
            left = client.search_logged_models([experiment], filter_string=of_run)
            assert [str(m.status) for m in left if str(m.status) == "READY"] == []


SET_NAME_NODES = MINI_NODES.replace("def check(report, fail, sleep):\n", '''\
class _Waits:
    """A descriptor, as matplotlib's artists have, that waits at the gate in __set_name__."""

    def __set_name__(self, owner, name):
        import os
        from pathlib import Path

        folder = os.environ.get("KMLC_TEST_GATE")
        if folder:
            Path(folder, "reached").write_text("__set_name__")
            deadline = time.monotonic() + 120
            while not Path(folder, "go").exists() and time.monotonic() < deadline:
                time.sleep(0.05)


def check(report, fail, sleep):
    class Figure:  # a class made while the node runs: its descriptors' __set_name__ runs
        artist = _Waits()

''')


@pytest.mark.slow
def test_a_sigint_that_a_library_wraps_in_its_own_error_is_an_interrupt(mini,
                                                                        tmp_path: Path) -> None:
    path = mini(nodes=SET_NAME_NODES)
    gate = tmp_path / "gate"
    gate.mkdir()
    proc = subprocess.Popen([kmlc_exe(), "run", "training", "-f", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(KMLC_TEST_GATE=str(gate)))
    err = signal_at_gate(proc, gate, signal.SIGINT, what="the node")
    assert proc.returncode == 130, err
    assert "marked KILLED (SIGINT)" in err and "__set_name__" not in err, err
    client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("mini").experiment_id])
    assert run.info.status == "KILLED"


@pytest.mark.slow
def test_sigterm_before_any_run_exits_130_with_a_line(mini, tmp_path: Path) -> None:
    # a project whose code waits at import: SIGTERM lands while the file is compiled
    path = mini(nodes=MINI_NODES.replace("import time\n", '''import time
import os
from pathlib import Path

_gate = os.environ.get("KMLC_TEST_GATE")
if _gate:
    Path(_gate, "reached").write_text("import")
    while not Path(_gate, "go").exists():
        time.sleep(0.05)
''', 1))
    gate = tmp_path / "gate"
    gate.mkdir()
    proc = subprocess.Popen([kmlc_exe(), "run", "training", "-f", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(KMLC_TEST_GATE=str(gate)))
    err = signal_at_gate(proc, gate, signal.SIGTERM, what="the import")
    assert proc.returncode == 130, err
    assert "interrupted (SIGTERM): no run was opened" in err and "Traceback" not in err, err
