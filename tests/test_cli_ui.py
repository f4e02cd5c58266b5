"""``kmlc ui``: the URL once the server answers; SIGTERM/SIGINT stop its whole process group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from mini_project import kmlc_exe, write_mini


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _group_of_children(pid: int) -> set[int]:
    """Every process in the process groups of ``pid``'s children (read from /proc)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                stats[int(entry.name)] = (int(fields[1]), int(fields[2]))  # ppid, pgid
    groups = {pgid for ppid, pgid in stats.values() if ppid == pid}
    return {p for p, (_, pgid) in stats.items() if pgid in groups}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow  # the MLflow UI starts web workers and a job runner: 10 to 60 s
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_ui_answers_then_stops_its_whole_process_group(tmp_path: Path) -> None:
    path = write_mini(tmp_path / "proj")
    port = _free_port()
    # two web workers, not MLflow's four (MLFLOW_WORKERS, read by `mlflow ui`): still a
    # multi-process uvicorn beside the job runner and its consumers, two interpreters less
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
           "MLFLOW_WORKERS": "2"}
    proc = subprocess.Popen([kmlc_exe(), "ui", "-f", str(path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    group: set[int] = set()
    try:
        assert proc.stdout is not None
        line = ""
        while not line.startswith("MLflow UI on"):  # MLflow's own lines come first
            line = proc.stdout.readline()
            assert line, proc.communicate()
        assert line == (f"MLflow UI on http://127.0.0.1:{port} "
                        f"(store: sqlite:///{path.parent / 'mlflow.db'})\n")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            assert answer.status == 200
        group = _group_of_children(proc.pid)
        assert group, "the server runs in a process group of its own"
        proc.send_signal(signal.SIGINT)  # to kmlc alone (SIGTERM takes the same path)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert err.splitlines()[-1] == "MLflow UI stopped"
        time.sleep(0.2)
        assert [pid for pid in group if _alive(pid)] == []
    finally:
        for pid in {proc.pid, *(group or _group_of_children(proc.pid))}:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
