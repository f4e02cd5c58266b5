"""``kedro run``'s options and logging under ``kmlc run``: Kedro's behaviour is the reference."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner
from spaceflights_project import SPACEFLIGHTS_YAML, write_spaceflights

from kmlc.cli import main

CANDIDATE = "candidate_modelling_pipeline"
UNTRACKED = SPACEFLIGHTS_YAML.replace(
    "parameters:\n", "tracking: {disable_for: [__default__]}\nparameters:\n", 1)
LOG_LINE = "Model has a coefficient R^2 of"


def _ran(output: str) -> list[str]:
    """The node names the progress lines report, in order."""
    return [line.split()[1] for line in output.splitlines() if line.startswith("[")
            and "/" in line.split()[0]]


def test_to_outputs_and_from_inputs_select_as_kedro_does(tmp_path: Path) -> None:
    from kedro.pipeline import Pipeline

    from kmlc.compiler.project import compile_project
    from kmlc.config.loader import load_project

    path = write_spaceflights(tmp_path, UNTRACKED)
    runner = CliRunner()
    target = f"{CANDIDATE}.regressor"
    result = runner.invoke(main, ["run", "-f", str(path), "--to-outputs", target])
    assert result.exit_code == 0, result.output
    everything: Pipeline = compile_project(load_project(path)).pipelines["__default__"]
    assert _ran(result.output) == [n.name for n in everything.to_outputs(target).nodes]
    assert (tmp_path / "data/06_models" / CANDIDATE / "regressor.pickle").exists()
    assert not (tmp_path / "data/08_reporting" / CANDIDATE).exists()
    result = runner.invoke(main, ["run", "-f", str(path), "--from-inputs", "X_train",
                                  "--to-outputs", "regressor"])
    assert result.exit_code == 1 and "X_train" in result.output  # memory: nothing to load
    result = runner.invoke(main, ["run", "-f", str(path), "--to-outputs", "regresor"])
    assert result.exit_code == 1 and "did you mean 'regressor'?" in result.output


VERSIONED = """\
version: 1
name: versions
tracking: {disable_for: [__default__]}
parameters: {value: 1}
datasets:
  model: {type: pickle.PickleDataset, filepath: data/model.pkl, versioned: true}
  out: {type: json.JSONDataset, filepath: data/out.json}
nodes:
  - {name: make, func: vnodes.make, inputs: params:value, outputs: model}
  - {name: use, func: vnodes.use, inputs: model, outputs: out}
"""


def test_load_versions_loads_the_version_kedro_loads(tmp_path: Path) -> None:
    from kedro.io import DataCatalog

    (tmp_path / "vnodes.py").write_text(
        "def make(value):\n    return {'value': value}\n\n\ndef use(model):\n    return model\n")
    path = tmp_path / "mlproject.yml"
    path.write_text(VERSIONED)
    runner = CliRunner()
    for value in (1, 2):
        result = runner.invoke(main, ["run", "-f", str(path), "--params", f"value={value}"])
        assert result.exit_code == 0, result.output
    first, second = sorted(p.name for p in (tmp_path / "data/model.pkl").iterdir())
    result = runner.invoke(main, ["run", "-f", str(path), "--from-inputs", "model",
                                  "--load-versions", f"model:{first}"])
    assert result.exit_code == 0, result.output
    assert _ran(result.output) == ["use"]
    kedro = DataCatalog.from_config(
        {"model": {"type": "pickle.PickleDataset", "filepath": str(tmp_path / "data/model.pkl"),
                   "versioned": True}}, load_versions={"model": first})
    assert json.loads((tmp_path / "data/out.json").read_text()) == kedro.load("model") == {
        "value": 1}
    with (tmp_path / "data/model.pkl" / second / "model.pkl").open("rb") as f:
        assert pickle.load(f) == {"value": 2}
    result = runner.invoke(main, ["run", "-f", str(path), "--load-versions", f"modle:{first}"])
    assert result.exit_code == 1 and "did you mean 'model'?" in result.output
    result = runner.invoke(main, ["run", "-f", str(path), "--load-versions", "model"])
    assert result.exit_code == 2 and "DATASET:VERSION" in result.output


@pytest.mark.parametrize("how", ["file", "env"])
def test_a_logging_config_from_the_file_or_kedro_logging_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    log = tmp_path / "run.log"
    config = {"version": 1, "disable_existing_loggers": False,
              "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log)}},
              "loggers": {"ds_nodes": {"level": "INFO"}},
              "root": {"level": "WARNING", "handlers": ["file"]}}
    text = UNTRACKED
    if how == "file":
        text = text.replace("parameters:\n", f"logging: {json.dumps(config)}\nparameters:\n", 1)
    else:
        (tmp_path / "logging.yml").write_text(json.dumps(config))
        monkeypatch.setenv("KEDRO_LOGGING_CONFIG", str(tmp_path / "logging.yml"))
    path = write_spaceflights(tmp_path, text)
    result = CliRunner().invoke(main, ["run", "-f", str(path), "--namespace", CANDIDATE])
    assert result.exit_code == 0, result.output
    assert LOG_LINE not in result.output
    assert LOG_LINE in log.read_text()


def test_verbose_shows_kedros_dataset_lines(tmp_path: Path) -> None:
    path = write_spaceflights(tmp_path, UNTRACKED)
    runner = CliRunner()
    result = runner.invoke(main, ["run", "-f", str(path), "--namespace", CANDIDATE])
    assert LOG_LINE in result.output and "Loading data from" not in result.output
    result = runner.invoke(main, ["run", "-f", str(path), "--namespace", CANDIDATE, "-v"])
    assert "Loading data from" in result.output and LOG_LINE in result.output


def test_a_logging_config_python_refuses_is_a_clean_error(tmp_path: Path) -> None:
    text = UNTRACKED.replace("parameters:\n", "logging: {version: 1, root: {handlers: [nope]}}\n"
                             "parameters:\n", 1)
    path = write_spaceflights(tmp_path, text)
    result = CliRunner().invoke(main, ["run", "-f", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "the logging config of `logging:` is not valid" in result.output
    assert "[KMLC605]" in result.output
