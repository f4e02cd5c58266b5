"""`kmlc run` options through the CLI, each checked by its effect.

Which nodes ran is recorded by a real Kedro hook of the project (``hooks:``); the run's
name, runner and store are read back from the real sqlite store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mini_project import MINI_YAML
from mlflow.tracking import MlflowClient

from kmlc.cli import main

RECORD_HOOK = '''\
import json
from pathlib import Path

from kedro.framework.hooks import hook_impl


class RecordNodes:
    def __init__(self):
        self.seen = []

    @hook_impl
    def before_pipeline_run(self, run_params):
        self.seen = []

    @hook_impl
    def after_node_run(self, node):
        self.seen.append(node.name)

    @hook_impl
    def after_pipeline_run(self, run_params):
        Path(run_params["project_path"], "ran.json").write_text(json.dumps(sorted(self.seen)))
'''

# `check` also carries the tag `extra`, so a comma-separated --tags can be told apart
HOOKED_YAML = MINI_YAML.replace(
    "    outputs: checked\n    tags: [training]\n",
    "    outputs: checked\n    tags: [training, extra]\n") + "hooks: [record_hook.RecordNodes]\n"


def _project(mini) -> Path:
    assert "tags: [training, extra]" in HOOKED_YAML
    path = mini(HOOKED_YAML)
    (path.parent / "record_hook.py").write_text(RECORD_HOOK)
    return path


def _kmlc(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _ran(path: Path) -> list[str]:
    ran = path.parent / "ran.json"
    names = json.loads(ran.read_text())
    ran.unlink()
    return names


def _run_id(output: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith("run "))
    return line.split()[1]


@pytest.mark.slow
def test_node_selection_runner_and_run_name(mini) -> None:
    path = _project(mini)
    client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")
    code, out = _kmlc("run", "training", "-f", str(path), "--runner", "thread",
                      "--run-name", "first-try")
    assert code == 0, out
    assert _ran(path) == ["check", "clean", "evaluate", "fit"]
    run = client.get_run(_run_id(out))
    assert run.info.run_name == "first-try"
    assert run.data.tags["kmlc.runner"] == "thread"  # the runner that really ran
    # --tags: comma-separated, OR-ed, inside the default pipeline
    code, out = _kmlc("run", "-f", str(path), "--tags", "inference,extra")
    assert code == 0, out
    assert _ran(path) == ["check", "clean", "predict"]
    run = client.get_run(_run_id(out))
    assert run.info.run_name == "__default__" and run.data.tags["kmlc.runner"] == "sequential"
    # --nodes: comma-separated and repeated
    code, out = _kmlc("run", "training", "-f", str(path), "--nodes", "clean, fit",
                      "--nodes", "check")
    assert code == 0, out
    assert _ran(path) == ["check", "clean", "fit"]
    # --from-nodes / --to-nodes (features is in memory, so slices start at clean or check)
    code, out = _kmlc("run", "training", "-f", str(path), "--from-nodes", "check")
    assert code == 0, out
    assert _ran(path) == ["check"]
    code, out = _kmlc("run", "training", "-f", str(path), "--to-nodes", "fit,clean")
    assert code == 0, out
    assert _ran(path) == ["clean", "fit"]
    code, out = _kmlc("run", "training", "-f", str(path), "--from-nodes", "clean",
                      "--to-nodes", "evaluate")
    assert code == 0, out
    assert _ran(path) == ["clean", "evaluate", "fit"]


def test_tracking_uri_sends_the_run_elsewhere(mini, tmp_path: Path) -> None:
    path = _project(mini)
    other = tmp_path / "other" / "store.db"
    other.parent.mkdir()
    code, out = _kmlc("run", "inference", "-f", str(path), "--nodes", "clean",
                      "--tracking-uri", f"sqlite:///{other}", "--run-name", "elsewhere")
    assert code == 0, out
    assert _ran(path) == ["clean"]
    run = MlflowClient(f"sqlite:///{other}").get_run(_run_id(out))
    assert run.info.run_name == "elsewhere" and run.data.tags["kmlc.pipeline"] == "inference"
    assert not (path.parent / "mlflow.db").exists()  # the project's own store untouched


@pytest.mark.slow
def test_verbose_shows_the_traceback_quiet_does_not(mini) -> None:
    path = _project(mini)
    (path.parent / "data/08_reporting").mkdir(parents=True)
    (path.parent / "data/08_reporting/report.json").write_text('{"accuracy": 1.0}')
    code, out = _kmlc("run", "training", "-f", str(path), "--nodes", "check",
                      "--params", "fail=true")
    assert code == 1 and "Traceback" not in out
    assert "node 'check' failed: ValueError: the check failed on purpose" in out
    code, out = _kmlc("run", "training", "-f", str(path), "--nodes", "check",
                      "--params", "fail=true", "-v")
    assert code == 1
    assert "Traceback (most recent call last)" in out
    assert 'in check\n    raise ValueError("the check failed on purpose")' in out
    code, out = _kmlc("run", "training", "-f", str(path), "--nodes", "check", "--verbose",
                      "--params", "fail=true")
    assert code == 1 and "Traceback (most recent call last)" in out


HELPER = """\
def must_be_small(value):
    if value > 1:
        raise ValueError(f"{value} is too large")
"""


@pytest.mark.slow
def test_a_node_failure_shows_the_users_frame_that_raised(
        mini, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the one-line error: the innermost frame of the project's code (a helper it
    calls, or the node's line that called a library), with the line itself; -v shows the
    whole traceback instead."""
    from mini_project import MINI_NODES

    nodes = MINI_NODES.replace("    if fail:\n", "    import checks\n\n"
                               "    checks.must_be_small(sleep + 2)\n    if fail:\n")
    nodes = nodes.replace("def clean(instances: pd.DataFrame) -> pd.DataFrame:\n",
                          "def clean(instances: pd.DataFrame) -> pd.DataFrame:\n"
                          "    instances = instances[['id', 'x1', 'x2', 'nope']]\n")
    path = mini(nodes=nodes)
    (path.parent / "checks.py").write_text(HELPER)
    (path.parent / "data/08_reporting").mkdir(parents=True)
    (path.parent / "data/08_reporting/report.json").write_text('{"accuracy": 1.0}')
    monkeypatch.chdir(path.parent)
    code, out = _kmlc("run", "training", "--nodes", "check")
    assert code == 1 and "Traceback" not in out, out
    lines = out.splitlines()
    assert "error: node 'check' failed: ValueError: 2 is too large [KMLC610]" in lines, out
    at = lines.index("error: node 'check' failed: ValueError: 2 is too large [KMLC610]")
    assert lines[at + 1:at + 4] == ["  at checks.py:3, in must_be_small",
                                    '    raise ValueError(f"{value} is too large")',
                                    "  (-v: the full traceback)"]
    # raised inside pandas: the node's own line that called it
    code, out = _kmlc("run", "inference", "--nodes", "clean")
    assert code == 1
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("error: node 'clean' failed"))
    assert lines[at + 1:at + 3] == ["  at mini_nodes.py:10, in clean",
                                    "    instances = instances[['id', 'x1', 'x2', 'nope']]"]
    code, out = _kmlc("run", "training", "--nodes", "check", "-v")
    assert code == 1 and "Traceback (most recent call last)" in out
    assert "  at checks.py:3" not in out and "-v: the full traceback" not in out


def test_run_from_a_subfolder_finds_the_file_in_a_parent_and_says_which(
        mini, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As git, Kedro and dbt: without -f, the nearest parent folder's mlproject.yml."""
    path = mini()
    below = path.parent / "data" / "01_raw"
    monkeypatch.chdir(below)
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 0, result.output
    assert result.stderr == "using ../../mlproject.yml (no mlproject.yml here; found in a " \
                            "parent folder)\n"
    assert "\n../../mlproject.yml: valid: 5 nodes" in result.stdout
    store = f"sqlite:///{tmp_path / 'store.db'}"
    result = CliRunner().invoke(main, ["run", "inference", "--nodes", "clean",
                                       "--tracking-uri", store])
    assert result.exit_code == 0, result.output
    assert "using ../../mlproject.yml" in result.stderr
    run = MlflowClient(store).get_run(_run_id(result.stdout))
    assert run.data.tags["kmlc.pipeline"] == "inference"
    # -f given: taken as it is, never looked up
    result = CliRunner().invoke(main, ["validate", "-f", "mlproject.yml"])
    assert result.exit_code == 1 and "file not found: mlproject.yml" in result.stderr
    assert "using" not in result.stderr


@pytest.mark.slow
def test_a_failing_node_has_one_name_in_kedros_log_and_kmlcs_error(mini: Any) -> None:
    """A node in a namespace fails in a real `kmlc run`: Kedro's ERROR line ("Node
    audit.check: ...") and kmlc's error name it the same way, the name `--nodes` takes
    (issue 27 item 6)."""
    import os
    import re
    import subprocess

    from mini_project import kmlc_exe

    text = MINI_YAML.replace("  threshold: 0.5\n",
                             "  threshold: 0.5\n  audit: {fail: true, sleep: 0}\n")
    text += ("pipelines:\n  audit: {namespace: audit, nodes: [check], inputs: [report], "
             "tags: [training]}\n")
    path = mini(text)
    env = {**os.environ, "COLUMNS": "250", "DO_NOT_TRACK": "1",
           "KEDRO_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([kmlc_exe(), "run", "training", "-q", "-f", str(path)],
                          cwd=path.parent, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    said = done.stdout + done.stderr  # Kedro's rich handler writes to stdout
    kedro = re.findall(r"ERROR +Node (\S+): check\(", said)
    ours = re.findall(r"^error: node '([^']+)' failed: ValueError", said, re.MULTILINE)
    assert kedro == ours == ["audit.check"], said
    # the name is the one the node filters take
    code, out = _kmlc("run", "training", "-f", str(path), "--nodes", "audit.chek")
    assert code == 1 and "(did you mean 'audit.check'?)" in out, out
