"""Interrupted runs, with real signals to a real `kmlc run` and a real sqlite store.

A project hook waits on a marker file at the moment under test (no fixed sleeps): the
test sends the signal once the hook says it is there, then releases nothing: the
signal alone must end the run.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from faults import REGISTERED, env, wait_for, write_gate_hook
from mini_project import kmlc_exe
from mlflow.tracking import MlflowClient

@pytest.mark.slow
def test_an_interrupted_run_registers_nothing_and_moves_no_alias(mini, tmp_path: Path) -> None:
    path = mini(REGISTERED)
    root = path.parent
    write_gate_hook(root)
    first = subprocess.run([kmlc_exe(), "run", "training", "-f", str(path)], env=env(),
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
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
            wait_for(lambda: (gate / "reached").exists() or proc.poll() is not None,
                      what="the hook")  # noqa: B023
            assert proc.poll() is None, proc.communicate()
            (run,) = client.search_runs([experiment], "attributes.status = 'RUNNING'")
            # the moment under test: the model is READY, the run has not ended
            (model,) = client.search_logged_models(
                [experiment], filter_string=f"source_run_id = '{run.info.run_id}' AND name = 'model'")
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
        assert [str(v.version) for v in versions] == ["1"], [(v.version, v.run_id) for v in versions]
        assert str(client.get_model_version_by_alias("mini-model", "champion").version) == "1"
        if signum != signal.SIGKILL:  # a killed run leaves no model behind
            left = client.search_logged_models(
                [experiment], filter_string=f"source_run_id = '{run.info.run_id}' AND name = 'model'")
            assert [str(m.status) for m in left if str(m.status) == "READY"] == []
