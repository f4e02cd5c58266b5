"""--env / --params precedence, and paths resolved from another working directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from mini_project import MINI_YAML
from mlflow.tracking import MlflowClient

from kmlc.cli import main

ENV_YAML = MINI_YAML + """\
environments:
  prod:
    parameters: {model: {c: 0.9}}
    tracking: {experiment: mini-prod, tags: {stage: prod}}
"""


def _last_run(root: Path, experiment: str):
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])[0]


@pytest.mark.slow
def test_params_override_env_which_overrides_the_file(mini, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = mini(ENV_YAML)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # paths resolve against the project, not the cwd
    runner = CliRunner()
    result = runner.invoke(main, ["run", "training", "-f", str(path), "--env", "prod"])
    assert result.exit_code == 0, result.output
    run = _last_run(path.parent, "mini-prod")
    assert run.data.params["model.c"] == "0.9"
    assert run.data.params["model.max_iter"] == "200"
    assert run.data.tags["stage"] == "prod" and run.data.tags["kmlc.env"] == "prod"
    result = runner.invoke(main, ["run", "training", "-f", str(path), "--env", "prod",
                                  "--params", "model.c=0.7", "--to-nodes", "fit"])
    assert result.exit_code == 0, result.output
    assert _last_run(path.parent, "mini-prod").data.params["model.c"] == "0.7"
    result = runner.invoke(main, ["run", "training", "-f", str(path), "--to-nodes", "fit"])
    assert _last_run(path.parent, "mini").data.params["model.c"] == "0.5"
    assert (path.parent / "mlflow.db").exists()
    assert (path.parent / "data/06_models/classifier.pkl").exists()
    assert list(elsewhere.iterdir()) == []


def test_run_selection_errors_are_clean(mini) -> None:
    path = mini()
    result = CliRunner().invoke(main, ["run", "trainig", "-f", str(path)])
    assert result.exit_code == 1
    assert "did you mean 'training'" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["run", "training", "-f", str(path), "--nodes", "fitt"])
    assert result.exit_code == 1 and "fit" in result.output


USER_HOOKS = '''\
import json
from pathlib import Path

from kedro.framework.hooks import hook_impl


class RecordNodes:
    def __init__(self):
        self.seen = []

    @hook_impl
    def after_node_run(self, node):
        self.seen.append(node.name)

    @hook_impl
    def after_pipeline_run(self, run_params):
        Path(run_params["project_path"], "hook.json").write_text(json.dumps(self.seen))
'''


def test_user_hooks_are_registered(mini) -> None:
    path = mini(MINI_YAML + "hooks: [mini_hooks.RecordNodes]\n")
    (path.parent / "mini_hooks.py").write_text(USER_HOOKS)
    result = CliRunner().invoke(main, ["run", "inference", "-f", str(path), "--to-nodes",
                                       "clean"])
    assert result.exit_code == 0, result.output
    assert (path.parent / "hook.json").read_text() == '["clean"]'
