"""``model.promote``: the alias moves only when the run passes the file's gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mini_project import MINI_YAML, write_mini
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from kmlc import RunOptions, load_project, run_pipeline
from kmlc.cli import main
from kmlc.config.spec import PromoteSpec
from kmlc.model.promote import decide
from kmlc.tracking.client import open_client


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


@pytest.mark.slow
def test_promote_a_run_without_the_gates_metric_names_it_and_registers_nothing(
        tmp_path: Path) -> None:
    """The gate reads best_r2, the run logged r2 and mae: said so, and no version is made
    (one that could never be promoted)."""
    path = write_mini(tmp_path / "proj", _with_promote(
        "    alias: champion\n    when: \"metrics['best_r2'] > 0.5\"\n"))
    store = f"sqlite:///{path.parent / 'mlflow.db'}"
    client = open_client(store)  # kmlc's seeded store: no migrations to wait for
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


def _store_with_runs(path: Path, *metrics: float) -> tuple[str, MlflowClient, list[str]]:
    """A real sqlite store beside ``path`` with one finished run per ``accuracy`` value."""
    store = f"sqlite:///{path.parent / 'mlflow.db'}"
    client = open_client(store)  # kmlc's seeded store: no migrations to wait for
    experiment = client.create_experiment("mini")
    runs = []
    for value in metrics:
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "accuracy", value)
        client.log_param(run.info.run_id, "c", "1.0")
        client.set_terminated(run.info.run_id)
        runs.append(run.info.run_id)
    client.create_registered_model("mini")
    return store, client, runs


def _version(client: MlflowClient, run_id: str) -> str:
    return str(client.create_model_version("mini", f"runs:/{run_id}/model",
                                           run_id=run_id).version)


def _promote(path: Path, store: str, run_id: str) -> Any:
    return CliRunner().invoke(main, ["promote", "-f", str(path), "--run-id", run_id,
                                     "--tracking-uri", store])


@pytest.mark.slow
def test_promote_takes_the_runs_newest_version_never_another_runs(tmp_path: Path) -> None:
    """The run was registered twice (versions 1 and 3), another run in between (2) and
    after (4): ``kmlc promote`` moves the alias to the run's newest version, 3."""
    path = write_mini(tmp_path / "proj", _with_promote("    alias: champion\n"))
    store, client, (run, other) = _store_with_runs(path, 0.9, 0.5)
    assert [_version(client, r) for r in (run, other, run, other)] == ["1", "2", "3", "4"]
    done = _promote(path, store, run)
    assert done.exit_code == 0, done.output
    assert done.output == "promotion: alias 'champion' moved to mini version 3: no gate\n"
    assert _alias(client) == "3"
    assert client.get_model_version("mini", "3").tags["kmlc.promotion"] == "promoted"
    assert "kmlc.promotion" not in client.get_model_version("mini", "1").tags
    assert len(client.search_model_versions("name='mini'")) == 4  # none registered


@pytest.mark.slow
def test_a_gate_that_raises_is_a_rejection_not_an_error(tmp_path: Path) -> None:
    """The gate divides by a metric that is 0: the decision says the gate failed and why,
    the command succeeds, the alias does not move and the run and version say so."""
    path = write_mini(tmp_path / "proj", _with_promote(
        "    alias: champion\n    when: \"1 / metrics['accuracy'] > 2\"\n"))
    store, client, (run,) = _store_with_runs(path, 0.0)
    assert _version(client, run) == "1"
    done = _promote(path, store, run)
    assert done.exit_code == 0, done.output
    assert done.output.startswith(
        "promotion: alias 'champion' not moved to mini version 1: the gate "
        "`1 / metrics['accuracy'] > 2` failed: ")
    assert "division by zero" in done.output
    assert _alias(client) is None
    tags = client.get_run(run).data.tags
    assert tags["kmlc.promotion"] == "rejected"
    assert tags["kmlc.promotion.numbers"] == '{"metrics.accuracy": 0.0}'
    assert "failed: " in client.get_model_version("mini", "1").tags["kmlc.promotion.reason"]


@pytest.mark.slow
def test_already_promoted_moves_nothing_decides_nothing_and_keeps_the_tags(
        tmp_path: Path) -> None:
    """The alias points at the run's version: promoting it again leaves the alias and the
    earlier decision's tags alone, even when the file's gate would now reject the run."""
    path = write_mini(tmp_path / "proj", _with_promote(
        "    alias: champion\n    when: \"metrics['accuracy'] > 0.5\"\n"))
    store, client, (run, other) = _store_with_runs(path, 0.9, 0.95)
    assert [_version(client, r) for r in (run, other)] == ["1", "2"]
    first = _promote(path, store, run)
    assert first.exit_code == 0, first.output
    assert "moved to mini version 1" in first.output and _alias(client) == "1"
    before = client.get_run(run).data.tags
    path.write_text(_with_promote("    alias: champion\n    when: \"metrics['accuracy'] > 5\"\n"))
    again = _promote(path, store, run)
    assert again.exit_code == 0, again.output
    assert again.output == ("promotion: alias 'champion' already points at mini version 1: "
                            "nothing moved\n")
    assert _alias(client) == "1"
    after = client.get_run(run).data.tags
    assert {k: v for k, v in after.items() if k.startswith("kmlc.promotion")} == {
        k: v for k, v in before.items() if k.startswith("kmlc.promotion")}
    assert after["kmlc.promotion"] == "promoted"
    assert "kmlc.promotion.previous_version" not in after
    # the other run's version is decided on as usual: the stricter gate rejects it
    other_done = _promote(path, store, other)
    assert "not moved to mini version 2" in other_done.output and _alias(client) == "1"
    assert client.get_run(other).data.tags["kmlc.promotion.previous_version"] == "1"


# ------------------------------------------------------------- the decision, in process


def test_each_decision_says_why_with_the_numbers_it_read() -> None:
    when = "metrics['acc'] >= 0.9"
    gate = PromoteSpec("champion", when=when)
    assert decide(PromoteSpec("champion"), {"acc": 0.1}, {}, None) == (True, "no gate", {})
    assert decide(gate, {"acc": 0.95, "loss": 1.0}, {}, None) == (
        True, f"`{when}` holds", {"metrics.acc": 0.95})
    assert decide(gate, {"acc": 0.5}, {}, None) == (
        False, f"`{when}` does not hold", {"metrics.acc": 0.5})
    both = PromoteSpec("champion", when=when, metric="acc", mode="max")
    assert decide(both, {"acc": 0.95}, {}, None) == (
        True, f"`{when}` holds and the alias points at no version yet", {"metrics.acc": 0.95})
    assert decide(both, {"acc": 0.95}, {}, {"loss": 2.0}) == (
        True, f"`{when}` holds and the current version logged no 'acc'", {"metrics.acc": 0.95})
    assert decide(both, {"acc": 0.95}, {}, {"acc": 0.92}) == (
        True, f"`{when}` holds and acc 0.95 vs 0.92 of the current version is better (max)",
        {"metrics.acc": 0.95, "current.acc": 0.92})
    assert decide(both, {"acc": 0.95}, {}, {"acc": 0.95}) == (
        False, f"`{when}` holds, but acc 0.95 vs 0.95 of the current version is not better "
        "(max)", {"metrics.acc": 0.95, "current.acc": 0.95})
    lower = PromoteSpec("champion", metric="rmse", mode="min")
    assert decide(lower, {"rmse": 0.5}, {}, None) == (
        True, "the alias points at no version yet", {"metrics.rmse": 0.5})
    assert decide(lower, {"rmse": 0.5}, {}, {}) == (
        True, "the current version logged no 'rmse'", {"metrics.rmse": 0.5})
    assert decide(lower, {"rmse": 0.5}, {}, {"rmse": 0.5}) == (
        False, "rmse 0.5 vs 0.5 of the current version is not better (min)",
        {"metrics.rmse": 0.5, "current.rmse": 0.5})
    assert decide(lower, {"rmse": 0.25}, {}, {"rmse": 1e-7})[1] == (
        "rmse 0.25 vs 1e-07 of the current version is not better (min)")
    assert decide(lower, {"rmse": 0.25}, {}, {"rmse": 0.5})[:2] == (
        True, "rmse 0.25 vs 0.5 of the current version is better (min)")
    assert decide(lower, {}, {}, None) == (
        False, "the run logged no metric 'rmse' to compare with the current version (its "
        "metrics: none)", {})


def test_a_gate_that_cannot_be_evaluated_or_fails_is_a_rejection() -> None:
    def reason(when: str, metrics: dict, params: dict | None = None) -> tuple:
        return decide(PromoteSpec("champion", when=when), metrics, params or {}, None)

    assert reason("metrics['acc']", {"loss": 1.0}) == (
        False, "the gate `metrics['acc']` cannot be evaluated: the run has no metric 'acc' "
        "(its metrics: loss)", {})
    assert reason("metrics['a'] + metrics['b'] + metrics['a'] > 1", {}) == (
        False, "the gate `metrics['a'] + metrics['b'] + metrics['a'] > 1` cannot be "
        "evaluated: the run has no metrics 'a', 'b' (its metrics: none)", {})
    assert reason("params['c'] == '1' and params['d'] == '2'", {}, {"e": "x"})[1].endswith(
        "cannot be evaluated: the run has no parameter 'c' (its parameters: e)")
    assert reason("nope > 1", {"acc": 1.0}) == (
        False, "the gate `nope > 1` cannot be evaluated: 'nope' is undefined", {})
    passed, why, numbers = reason("metrics['acc'] > 'x'", {"acc": 1.0})
    assert not passed and why.startswith("the gate `metrics['acc'] > 'x'` failed: ")
    assert "not supported" in why and numbers == {"metrics.acc": 1.0}
    assert reason("1 / metrics['acc'] > 2", {"acc": 0.0})[1] == (
        "the gate `1 / metrics['acc'] > 2` failed: float division by zero")


def test_unreadable_says_what_a_gate_lacks_and_nothing_else() -> None:
    from kmlc.model.promote import unreadable

    def why(promote: PromoteSpec, metrics: dict, params: dict | None = None) -> str | None:
        return unreadable(promote, metrics, params or {})

    assert why(PromoteSpec("champion"), {}) is None
    gate = PromoteSpec("champion", when="metrics['acc'] > 0.5 and params['c'] == '1'")
    assert why(gate, {"acc": 0.7}, {"c": "1"}) is None
    assert why(gate, {"acc": 0.1}, {"c": "1"}) is None  # readable: it does not hold
    assert why(gate, {"loss": 1.0, "mae": 2.0}, {"c": "1"}) == (
        "the gate `metrics['acc'] > 0.5 and params['c'] == '1'` cannot be evaluated: the run "
        "has no metric 'acc' (its metrics: loss, mae)")
    assert why(gate, {"acc": 0.7}, {}) == (
        "the gate `metrics['acc'] > 0.5 and params['c'] == '1'` cannot be evaluated: the run "
        "has no parameter 'c' (its parameters: none)")
    assert why(PromoteSpec("champion", when="metrics['acc']"), {}) == (
        "the gate `metrics['acc']` cannot be evaluated: the run has no metric 'acc' (its "
        "metrics: none)")
    assert why(PromoteSpec("champion", when="1 / metrics['acc'] > 2"), {"acc": 0.0}) is None
    assert why(PromoteSpec("champion", when="metrics['acc'] > 'x'"), {"acc": 0.0}) is None
    assert why(PromoteSpec("champion", when="nope > 1"), {}) is None  # no read it lacked
    compare = PromoteSpec("champion", when="metrics['acc'] > 0.5", metric="rmse")
    assert why(compare, {"acc": 0.7}) == (
        "the run logged no metric 'rmse' to compare with the current version (its metrics: "
        "acc)")
    assert why(PromoteSpec("champion", metric="rmse"), {}) == (
        "the run logged no metric 'rmse' to compare with the current version (its metrics: "
        "none)")
    assert why(compare, {"acc": 0.7, "rmse": 1.0}) is None


def test_the_promotion_line() -> None:
    from kmlc.model.promote import Promotion, gate_of

    assert gate_of(PromoteSpec("champion")) is None
    assert gate_of(PromoteSpec("champion", when="metrics['a'] > 1"))(
        metrics={"a": 2}, params={}) is True
    moved = Promotion(True, "champion", "mini", "3", "no gate")
    assert not moved.unchanged and moved.numbers == {} and moved.previous_version is None
    assert moved.line() == "alias 'champion' moved to mini version 3: no gate"
    kept = Promotion(False, "champion", "mini", "4", "`x` does not hold", previous_version="3")
    assert not kept.unchanged
    assert kept.line() == "alias 'champion' not moved to mini version 4: `x` does not hold"
    same = Promotion(True, "champion", "mini", "3", "", previous_version="3")
    assert same.unchanged
    assert same.line() == "alias 'champion' already points at mini version 3: nothing moved"
    none = Promotion(False, "champion", "mini", "", "the run has no metric 'a'")
    assert none.line() == ("alias 'champion' not moved, no version registered: the run has "
                           "no metric 'a'")
