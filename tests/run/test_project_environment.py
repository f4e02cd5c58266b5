"""What the project's nodes and hooks see during ``kmlc run``, compared with ``kedro run``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from mini_project import MINI_NODES, MINI_YAML

from kmlc import RunOptions, load_project, run_pipeline

PROBE_NODES = MINI_NODES.replace(
    "import time\n", "import os\nimport subprocess\nimport sys\nimport time\n") + '''

def probe(report):
    """What MLflow's requirement inference does: a fresh Python given this sys.path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    child = subprocess.run([sys.executable, "-c", "import helpers; print(helpers.NAME)"],
                           env=env, capture_output=True, text=True, timeout=60)
    return {"sys_path": sys.path, "child": child.stdout.strip(), "error": child.stderr[-300:]}
'''


@pytest.mark.slow
def test_nodes_see_the_code_folders_on_sys_path_for_the_whole_run(mini, tmp_path: Path) -> None:
    text = MINI_YAML.replace("name: mini\n", "name: mini\ncode: [., lib]\n") + """\
  - name: probe
    func: mini_nodes.probe
    inputs: report
    outputs: probed
    tags: [training]
"""
    text = text.replace("datasets:\n", "datasets:\n  probed: {type: json.JSONDataset, "
                        "filepath: data/probed.json}\n", 1)
    text = text.replace("model:\n  input: instances\n", "")
    path = mini(text, PROBE_NODES)
    (path.parent / "lib").mkdir()
    (path.parent / "lib" / "helpers.py").write_text("NAME = 'helpers of the project'\n")
    spec = load_project(path)
    before = list(sys.path)
    result = run_pipeline(spec, "training", RunOptions(progress=False))
    assert result.status == "FINISHED"
    probed = json.loads((path.parent / "data" / "probed.json").read_text())
    assert str(path.parent / "lib") in probed["sys_path"]
    assert str(path.parent) in probed["sys_path"]
    assert probed["child"] == "helpers of the project", probed["error"]
    assert sys.path == before  # and nothing is left behind once the run is over
    assert os.environ.get("PYTHONPATH") is None or str(path.parent / "lib") not in \
        os.environ["PYTHONPATH"].split(os.pathsep)


MODEL_HOOK = '''\
import json
from pathlib import Path

from kedro.framework.hooks import hook_impl


class ModelHook:
    """A project hook that looks for the run's model at the end, as one that registers it."""

    @hook_impl
    def after_pipeline_run(self, run_params):
        from mlflow.tracking import MlflowClient

        root = Path(run_params["project_path"])
        client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
        experiments = [e.experiment_id for e in client.search_experiments()]
        models = client.search_logged_models(experiment_ids=experiments)
        (root / "hook.json").write_text(json.dumps({
            "pipeline": run_params["pipeline_name"],
            "models": [[m.name, str(getattr(m.status, "name", m.status))] for m in models]}))
'''


@pytest.mark.slow
def test_project_hooks_see_the_model_logged_at_the_end_of_the_run(mini) -> None:
    """kedro-mlflow's hook logs the model before project hooks see the end of the run."""
    path = mini(MINI_YAML + "hooks: [model_hooks.ModelHook]\n")
    (path.parent / "model_hooks.py").write_text(MODEL_HOOK)
    result = run_pipeline(load_project(path), "training", RunOptions(progress=False))
    assert result.status == "FINISHED" and result.model_uri
    seen = json.loads((path.parent / "hook.json").read_text())
    assert seen["pipeline"] == "training"
    assert ["model", "READY"] in seen["models"], seen  # the bound model, finished
