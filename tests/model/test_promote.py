"""``model.promote``: the alias moves only when the run passes the file's gate."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from mini_project import MINI_YAML, write_mini
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from kmlc import RunOptions, load_project, run_pipeline
from kmlc.cli import main
from kmlc.config.spec import PromoteSpec
from kmlc.model.promote import decide


def _with_promote(promote: str) -> str:
    return MINI_YAML.replace("model:\n  input: instances\n",
                             "model:\n  input: instances\n  registered_name: mini\n"
                             "  promote:\n" + promote)


def _alias(client: MlflowClient, alias: str = "champion") -> str | None:
    try:
        return str(client.get_model_version_by_alias("mini", alias).version)
    except MlflowException:
        return None


@pytest.mark.slow  # three real training runs
def test_gate_decides_on_real_runs(tmp_path: Path) -> None:
    path = write_mini(tmp_path / "proj", _with_promote(
        "    alias: champion\n    when: \"metrics['accuracy'] > 1.5\"\n"))
    client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")

    # 1. the gate fails: the version is registered, the alias does not move, the run is fine
    first = run_pipeline(load_project(path), "training", RunOptions(progress=False))
    assert first.status == "FINISHED" and first.registered_version == "1"
    assert first.promotion is not None and not first.promotion.promoted
    assert "does not hold" in first.promotion.reason
    assert _alias(client) is None
    accuracy = client.get_run(str(first.run_id)).data.metrics["accuracy"]
    tags = client.get_run(str(first.run_id)).data.tags
    assert tags["kmlc.promotion"] == "rejected"
    assert tags["kmlc.promotion.numbers"] == f'{{"metrics.accuracy": {accuracy}}}'
    assert client.get_model_version("mini", "1").tags["kmlc.promotion"] == "rejected"

    # 2. gate and comparison pass (no current version): promoted, printed by the CLI
    path.write_text(_with_promote(
        "    alias: champion\n    when: \"metrics['accuracy'] >= 0\"\n"
        "    better_than_current: {metric: accuracy, mode: max}\n"))
    done = CliRunner().invoke(main, ["run", "training", "-f", str(path)])
    assert done.exit_code == 0, done.output
    assert "promotion: alias 'champion' moved to mini version 2" in done.output
    assert _alias(client) == "2"

    # 3. the same accuracy again is not better: rejected, exit code 0, alias stays
    done = CliRunner().invoke(main, ["run", "training", "-f", str(path)])
    assert done.exit_code == 0, done.output
    assert "promotion: alias 'champion' not moved to mini version 3" in done.output
    assert f"accuracy {accuracy:g} vs {accuracy:g} of the current version is not better" \
        in done.output
    assert _alias(client) == "2"
    assert client.get_model_version("mini", "3").tags["kmlc.promotion.previous_version"] == "2"

    # 4. kmlc promote applies the file's (now looser) gate to the first run's version 1
    path.write_text(_with_promote("    alias: champion\n    when: \"metrics['accuracy'] >= 0\"\n"))
    done = CliRunner().invoke(main, ["promote", "-f", str(path), "--run-id",
                                     str(first.run_id)])
    assert done.exit_code == 0, done.output
    assert "alias 'champion' moved to mini version 1" in done.output
    assert _alias(client) == "1"
    assert len(client.search_model_versions("name='mini'")) == 3  # no new version
    assert client.get_run(str(first.run_id)).data.tags["kmlc.promotion"] == "promoted"

    done = CliRunner().invoke(main, ["promote", "-f", str(path), "--run-id", "nope"])
    assert done.exit_code == 1 and "run 'nope' was not found" in done.output


def test_decide_modes_and_missing_metrics() -> None:
    lower = PromoteSpec("champion", metric="rmse", mode="min")
    assert decide(lower, {"rmse": 0.5}, {}, {"rmse": 0.7})[0]
    assert not decide(lower, {"rmse": 0.9}, {}, {"rmse": 0.7})[0]
    assert not decide(lower, {}, {}, {"rmse": 0.7})[0]
    assert decide(lower, {"rmse": 0.9}, {}, {})[0]  # the current version never logged it
    gate = PromoteSpec("champion", when="metrics['acc'] >= 0.9 and params['c'] == '1.0'")
    passed, reason, numbers = decide(gate, {"acc": 0.95}, {"c": "1.0"}, None)
    assert passed and numbers == {"metrics.acc": 0.95, "params.c": "1.0"}
    passed, reason, _ = decide(gate, {"loss": 0.1}, {"c": "1.0"}, None)
    assert not passed and "cannot be evaluated" in reason and "acc" in reason
