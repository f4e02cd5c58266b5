"""Shared by the fault tests: a project hook that stops a real `kmlc run` at one moment.

``KMLC_TEST_GATE`` names a folder and ``KMLC_TEST_MOMENT`` the moment (``after_pipeline_run``
or ``before_node_run:NODE``): there the hook writes ``reached`` and waits until the test
writes ``go`` (or two minutes pass). No fixed sleeps: the test acts when the hook is there.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from mini_project import MINI_YAML

GATE_HOOK = '''\
"""A hook that stops at one moment of the run while KMLC_TEST_GATE names a folder."""

import os
import time
from pathlib import Path

from kedro.framework.hooks import hook_impl


def _gate(moment):
    folder = os.environ.get("KMLC_TEST_GATE")
    if not folder or os.environ.get("KMLC_TEST_MOMENT") != moment:
        return
    Path(folder, "reached").write_text(moment)
    deadline = time.monotonic() + 120
    while not Path(folder, "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


class Gate:
    @hook_impl
    def before_node_run(self, node):
        _gate(f"before_node_run:{node.name}")

    @hook_impl
    def after_pipeline_run(self):
        _gate("after_pipeline_run")
'''

GATED = MINI_YAML + "hooks: [gate_hook.Gate]\n"  # the mini project, with the gate

REGISTERED = MINI_YAML.replace("model:\n  input: instances\n",
                               "model:\n  input: instances\n  registered_name: mini-model\n"
                               "  alias: champion\n") + "hooks: [gate_hook.Gate]\n"


def env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true", **extra}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def wait_for(check: Callable[[], object], seconds: float = 300.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def signal_at_gate(proc: subprocess.Popen[str], gate: Path, signum: int, *, what: str,
                   seconds: float = 300.0, timeout: float = 120.0) -> str:
    """Wait until ``proc`` (a `kmlc run` with ``KMLC_TEST_GATE=gate``) is held at the gate,
    send it ``signum`` and return its stderr; the gate is opened and the process killed
    whatever happens."""
    try:
        wait_for(lambda: (gate / "reached").exists() or proc.poll() is not None,
                 seconds=seconds, what=what)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signum)
        return proc.communicate(timeout=timeout)[1]
    finally:
        (gate / "go").write_text("")
        if proc.poll() is None:
            proc.kill()


def write_gate_hook(root: Path) -> None:
    (root / "gate_hook.py").write_text(GATE_HOOK)


def half_built_run(path: Path, gate: Path) -> tuple[str, str]:
    """Kill (SIGKILL) a real `kmlc run training` of ``path`` (``GATED``) while its model is
    being built:
    the model is PENDING, with its files, in a run the worker closes as KILLED. Returns
    (run id, model id)."""
    import signal
    import subprocess

    from mini_project import kmlc_exe
    from mlflow.tracking import MlflowClient

    write_gate_hook(path.parent)
    gate.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([kmlc_exe(), "run", "training", "-f", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env(KMLC_TEST_GATE=str(gate),
                                    KMLC_TEST_MOMENT="before_node_run:check"))
    client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")
    found: list[object] = []

    def pending() -> bool:
        if not (gate / "reached").exists():
            return False
        experiment = client.get_experiment_by_name("mini")
        models = client.search_logged_models([experiment.experiment_id],
                                             filter_string="name = 'model'")
        ready = [m for m in models if str(m.status) == "PENDING" and Path(
            m.artifact_location.removeprefix("file://"), "MLmodel").exists()]
        found[:] = ready
        return bool(ready)

    try:
        wait_for(pending, what="the model to be PENDING with its files")
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        (gate / "go").write_text("")
        if proc.poll() is None:
            proc.kill()
    model = found[0]
    run_id = model.source_run_id  # type: ignore[attr-defined]
    wait_for(lambda: client.get_run(run_id).info.status == "KILLED",
             what="the worker to close the run as KILLED")
    return str(run_id), str(model.model_id)  # type: ignore[attr-defined]
