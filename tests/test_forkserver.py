"""tests/forkserver.py: a command the suite routes through a fork server behaves as the
fresh ``kmlc`` process it stands for (output, exit status, signals, being killed)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import forkserver
import pytest
from faults import GATED, env, signal_at_gate, wait_for, write_gate_hook
from mini_project import kmlc_exe, write_mini
from mlflow.tracking import MlflowClient
from tools import missing


def _routed(argv: list[str]) -> list[str]:
    """The client's argv for ``argv``: the servers must be up (CI runs them)."""
    if os.environ.get(forkserver.ENV) == "0":
        pytest.skip("KMLC_TEST_FORKSERVER=0: no command is routed")
    ready = forkserver.wait_ready()
    routed = forkserver.routed_kmlc(argv, {}) if ready else None
    if routed is None:
        theirs = forkserver._servers_python_env()
        ours = {k: v for k, v in os.environ.items() if k.startswith("PYTHON")}
        missing(f"the fork servers of tests/forkserver.py are not running (up: {ready}; "
                f"folder: {os.environ.get(forkserver.ENV)}; their settings: {theirs}, "
                f"this process's: {ours})")
    assert routed is not None
    return routed


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_routed_command_says_what_a_fresh_one_says(tmp_path: Path) -> None:
    path = write_mini(tmp_path / "proj", GATED.replace("  fail: false\n", "  fial: false\n"))
    argv = [kmlc_exe(), "validate", "-f", str(path)]
    fresh = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env())  # Popen: never routed
    fresh_out, fresh_err = fresh.communicate(timeout=120)
    routed = subprocess.run(_routed(argv), capture_output=True, text=True, env=env(),
                            timeout=120)
    assert fresh.returncode != 0 and "fial" in fresh_out + fresh_err
    assert (routed.returncode, routed.stdout, routed.stderr) == (
        fresh.returncode, fresh_out, fresh_err)


def test_ctrl_c_reaches_a_routed_run_which_exits_130(tmp_path: Path) -> None:
    path = write_mini(tmp_path / "proj", GATED)
    write_gate_hook(path.parent)
    gate = tmp_path / "gate"
    gate.mkdir()
    proc = subprocess.Popen(_routed([kmlc_exe(), "run", "training", "-f", str(path)]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(KMLC_TEST_GATE=str(gate),
                                    KMLC_TEST_MOMENT="before_node_run:evaluate"))
    err = signal_at_gate(proc, gate, signal.SIGINT, what="the gate before evaluate")
    assert proc.returncode == 130, err
    assert "marked KILLED (SIGINT)" in err, err


def test_killing_the_client_kills_the_command_whose_worker_closes_the_run(
        tmp_path: Path) -> None:
    """As ``kill -9`` of a real ``kmlc run``: the command dies, its tracking worker sees it
    gone, closes the run as KILLED and ends."""
    path = write_mini(tmp_path / "proj", GATED)
    write_gate_hook(path.parent)
    gate = tmp_path / "gate"
    gate.mkdir()
    proc = subprocess.Popen(_routed([kmlc_exe(), "run", "training", "-f", str(path)]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=path.parent,
                            env=env(KMLC_TEST_GATE=str(gate),
                                    KMLC_TEST_MOMENT="before_node_run:evaluate"))
    try:
        wait_for(lambda: (gate / "reached").exists() or proc.poll() is not None,
                 what="the gate before evaluate")
        assert proc.poll() is None
        # the command, its tracking worker and the worker's client: the processes in the
        # project's folder (forked processes keep the server's /proc/PID/environ)
        ours = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != proc.pid
                and _cwd(int(p)) == path.parent]
        assert len(ours) >= 2, "the routed run and its tracking worker not found"
        proc.kill()
        assert proc.wait(30) == -signal.SIGKILL
        wait_for(lambda: not any(_alive(p) for p in ours), seconds=60,
                 what="the routed run's processes to end")
    finally:
        (gate / "go").write_text("")
        if proc.poll() is None:
            proc.kill()
    client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("mini").experiment_id])
    assert run.info.status == "KILLED"


def _cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
