"""`kmlc ui`: a real MLflow UI on a real sqlite store, stopped with SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tracking_servers import free_port, kmlc_exe, quiet_env, write_mini


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_ui_serves_the_given_store_and_stops_on_sigterm(tmp_path: Path) -> None:
    path = write_mini(tmp_path / "proj")
    store = tmp_path / "elsewhere.db"
    MlflowClient(f"sqlite:///{store}").create_experiment("only-in-elsewhere")
    port = free_port()
    proc = subprocess.Popen(
        [kmlc_exe(), "ui", "-f", str(path), "--host", "127.0.0.1", "--port", str(port),
         "--tracking-uri", f"sqlite:///{store}"],
        env=quiet_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)
    try:
        url = (f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/get-by-name"
               "?experiment_name=only-in-elsewhere")
        deadline = time.monotonic() + 120
        answer = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = _get(url)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        assert answer is not None, f"the UI never answered: {proc.returncode}"
        assert answer["experiment"]["name"] == "only-in-elsewhere"  # --tracking-uri honoured
        assert not (path.parent / "mlflow.db").exists()  # the project's store not touched
        assert len(_group_members(proc.pid)) >= 1
        # kmlc says where the UI is once its own poll finds it answering, which may be
        # after this test's poll did: the signal goes once the line is out (a gate)
        lines: list[str] = []
        assert proc.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while (not any("MLflow UI on" in line for line in lines)
               and time.monotonic() < deadline and proc.poll() is None):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=30)
        out = "".join(lines)
        assert f"MLflow UI on http://127.0.0.1:{port}" in out
        deadline = time.monotonic() + 30
        while _group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _group_members(proc.pid) == [], "kmlc ui left a child process behind"
        with contextlib.suppress(urllib.error.URLError, ConnectionError):
            _get(url)
            raise AssertionError("the UI still answers after SIGTERM")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(timeout=10)
