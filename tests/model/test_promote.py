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
    # 5. again: the alias points at that version already, and the line says nothing moved
    done = CliRunner().invoke(main, ["promote", "-f", str(path), "--run-id",
                                     str(first.run_id)])
    assert done.exit_code == 0, done.output
    assert "promotion: alias 'champion' already points at mini version 1: nothing moved" \
        in done.output
    assert "moved to" not in done.output

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


def test_promote_a_run_without_the_gates_metric_names_it_and_registers_nothing(
        tmp_path: Path) -> None:
    """The gate reads best_r2, the run logged r2 and mae: said so, and no version is made
    (one that could never be promoted)."""
    path = write_mini(tmp_path / "proj", _with_promote(
        "    alias: champion\n    when: \"metrics['best_r2'] > 0.5\"\n"))
    store = f"sqlite:///{path.parent / 'mlflow.db'}"
    client = MlflowClient(store)
    run = client.create_run(client.create_experiment("mini"))
    client.log_metric(run.info.run_id, "r2", 0.7)
    client.log_metric(run.info.run_id, "mae", 0.1)
    client.set_terminated(run.info.run_id)
    done = CliRunner().invoke(main, ["promote", "-f", str(path), "--run-id", run.info.run_id,
                                     "--tracking-uri", store])
    assert done.exit_code == 0, done.output
    assert done.output == (
        "promotion: alias 'champion' not moved, no version registered: the gate "
        "`metrics['best_r2'] > 0.5` cannot be evaluated: the run has no metric 'best_r2' "
        "(its metrics: mae, r2)\n")
    assert client.search_model_versions("name='mini'") == []


def test_gate_lacking_names_the_missing_metric_or_parameter() -> None:
    gate = PromoteSpec("champion", when="metrics['best_r2'] > 0.5 and params['c'] == '1'")
    passed, reason, _ = decide(gate, {"r2": 0.7}, {"c": "1"}, None)
    assert not passed
    assert reason.endswith("cannot be evaluated: the run has no metric 'best_r2' (its "
                           "metrics: r2)")
    passed, reason, _ = decide(gate, {"best_r2": 0.7}, {"alpha": "1"}, None)
    assert reason.endswith("the run has no parameter 'c' (its parameters: alpha)")
    compare = PromoteSpec("champion", metric="rmse", mode="min")
    assert decide(compare, {"mae": 0.1}, {}, None)[1] == (
        "the run logged no metric 'rmse' to compare with the current version (its metrics: "
        "mae)")
