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
from kmlc.errors import ExportError
from kmlc.model.promote import Promotion, candidate_metrics, decide, promote_run, promote_version
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


# ------------------------------------------------------ kmlc promote, in process, on a real store


def _promotion_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.startswith("kmlc.promotion")}


def test_promote_run_takes_the_runs_newest_version_and_tags_run_and_version(
        tmp_path: Path) -> None:
    """Versions 1 and 3 are the run's, 2 and 4 the other run's: each run's newest version
    is decided on, against the metric of the run the alias points at (never its own);
    the run and that version carry the decision, the numbers read (JSON, sorted) and the
    version the alias pointed at. Asked again, the alias is on the run's version already:
    nothing is decided again, the earlier tags stay."""
    when = "params['c'] == '1.0' and metrics['accuracy'] > 0.5"
    path = write_mini(tmp_path / "proj", _with_promote(
        f"    alias: champion\n    when: \"{when}\"\n"
        "    better_than_current: {metric: accuracy, mode: max}\n"))
    store, client, (run, other) = _store_with_runs(path, 0.9, 0.8)
    assert [_version(client, r) for r in (run, other, run, other)] == ["1", "2", "3", "4"]
    spec = load_project(path, tracking_uri=store)

    first = promote_run(spec, run)
    assert first == Promotion(True, "champion", "mini", "3",
                              f"`{when}` holds and the alias points at no version yet",
                              {"params.c": "1.0", "metrics.accuracy": 0.9}, None)
    assert _alias(client) == "3"
    tags = {"kmlc.promotion": "promoted", "kmlc.promotion.alias": "champion",
            "kmlc.promotion.reason": first.reason,
            "kmlc.promotion.numbers": '{"metrics.accuracy": 0.9, "params.c": "1.0"}'}
    assert _promotion_tags(client.get_run(run).data.tags) == tags
    assert _promotion_tags(client.get_model_version("mini", "3").tags) == tags
    assert _promotion_tags(client.get_model_version("mini", "1").tags) == {}

    second = promote_run(spec, other)
    reason = (f"`{when}` holds, but accuracy 0.8 vs 0.9 of the current version is not "
              "better (max)")
    assert second == Promotion(False, "champion", "mini", "4", reason, {
        "params.c": "1.0", "metrics.accuracy": 0.8, "current.accuracy": 0.9}, "3")
    assert _alias(client) == "3"
    rejected = {"kmlc.promotion": "rejected", "kmlc.promotion.alias": "champion",
                "kmlc.promotion.reason": reason, "kmlc.promotion.previous_version": "3",
                "kmlc.promotion.numbers":
                    '{"current.accuracy": 0.9, "metrics.accuracy": 0.8, "params.c": "1.0"}'}
    assert _promotion_tags(client.get_run(other).data.tags) == rejected
    assert _promotion_tags(client.get_model_version("mini", "4").tags) == rejected
    assert _promotion_tags(client.get_model_version("mini", "2").tags) == {}

    again = promote_run(spec, run)
    assert again == Promotion(True, "champion", "mini", "3",
                              "the alias already points at this version", {}, "3")
    assert again.unchanged
    assert _alias(client) == "3"
    assert _promotion_tags(client.get_run(run).data.tags) == tags
    assert _promotion_tags(client.get_model_version("mini", "3").tags) == tags
    assert len(client.search_model_versions("name='mini'")) == 4  # none registered


def test_promote_run_with_a_gate_that_raises_rejects_and_says_why(tmp_path: Path) -> None:
    """The gate divides by a metric that is 0: a rejection (no exception), the alias stays
    where it was, the run and the version say why."""
    when = "1 / metrics['accuracy'] > 2"
    path = write_mini(tmp_path / "proj", _with_promote(
        f"    alias: champion\n    when: \"{when}\"\n"))
    store, client, (run,) = _store_with_runs(path, 0.0)
    assert _version(client, run) == "1"
    decision = promote_run(load_project(path, tracking_uri=store), run)
    reason = f"the gate `{when}` failed: float division by zero"
    assert decision == Promotion(False, "champion", "mini", "1", reason,
                                 {"metrics.accuracy": 0.0}, None)
    assert decision.line() == f"alias 'champion' not moved to mini version 1: {reason}"
    assert _alias(client) is None
    assert _promotion_tags(client.get_model_version("mini", "1").tags) == {
        "kmlc.promotion": "rejected", "kmlc.promotion.alias": "champion",
        "kmlc.promotion.reason": reason,
        "kmlc.promotion.numbers": '{"metrics.accuracy": 0.0}'}


def _logged_model(client: MlflowClient, run_id: str, status: str = "READY") -> str:
    """A LoggedModel ``model`` of ``run_id`` in the store, as a training run leaves it."""
    from mlflow.entities import LoggedModelOutput

    experiment_id = client.get_run(run_id).info.experiment_id
    model = client.create_logged_model(experiment_id, name="model", source_run_id=run_id)
    if status != "PENDING":
        client.finalize_logged_model(model.model_id, status)
    if status == "READY":
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    return model.model_id


def test_promote_run_registers_only_a_finished_runs_ready_model(tmp_path: Path) -> None:
    """A run never registered gets a version of its model, then the gate; a run with no
    model, or whose model is not READY, or that did not finish, is refused: a version
    with nothing (or half a model) behind it could have taken the alias."""
    path = write_mini(tmp_path / "proj", _with_promote(
        "    alias: champion\n    when: \"metrics['accuracy'] > 0.5\"\n"))
    store, client, (good, empty, pending, failed) = _store_with_runs(path, 0.9, 0.9, 0.9, 0.9)
    model_id = _logged_model(client, good)
    _logged_model(client, pending, "PENDING")
    _logged_model(client, failed)
    client.set_terminated(failed, "FAILED")
    spec = load_project(path, tracking_uri=store)

    decision = promote_run(spec, good)
    assert decision.promoted and decision.version == "1" and _alias(client) == "1"
    version = client.get_model_version("mini", "1")
    assert version.run_id == good
    assert version.source == client.get_logged_model(model_id).artifact_location
    assert promote_run(spec, good).unchanged  # reused, not registered again

    with pytest.raises(ExportError) as info:
        promote_run(spec, empty)
    assert str(info.value) == (f"run '{empty}' has no model 'model' to register (promote a "
                               "training run that logged the model)")
    with pytest.raises(ExportError, match=f"run {pending} is FINISHED and its model .* is "
                                          "PENDING"):
        promote_run(spec, pending)
    with pytest.raises(ExportError, match=f"run {failed} is FAILED"):
        promote_run(spec, failed)
    assert [str(v.version) for v in client.search_model_versions("name='mini'")] == ["1"]
    assert _alias(client) == "1"


def test_promote_run_refuses_a_project_without_promote_or_an_unknown_run(
        tmp_path: Path) -> None:
    path = write_mini(tmp_path / "proj", _with_promote("    alias: champion\n"))
    store, _, (run,) = _store_with_runs(path, 0.9)
    with pytest.raises(ExportError, match="run 'nope' was not found in sqlite:///"):
        promote_run(load_project(path, tracking_uri=store), "nope")
    refused = ("the project has no model.promote (with model.registered_name) (add "
               "model.registered_name and model.promote to the file)")
    bare = write_mini(tmp_path / "bare", MINI_YAML)  # a model, neither name nor promote
    named = write_mini(tmp_path / "named", MINI_YAML.replace(
        "model:\n  input: instances\n", "model:\n  input: instances\n  registered_name: mini\n"))
    modelless = write_mini(tmp_path / "modelless", MINI_YAML.split("model:\n")[0])
    for project in (bare, named, modelless):
        with pytest.raises(ExportError) as info:
            promote_run(load_project(project, tracking_uri=store), run)
        assert str(info.value) == refused, project


def test_promote_run_without_the_gates_metric_registers_nothing(tmp_path: Path) -> None:
    path = write_mini(tmp_path / "proj", _with_promote(
        "    alias: champion\n    when: \"metrics['best_r2'] > 0.5\"\n"))
    store, client, (run,) = _store_with_runs(path, 0.9)
    _logged_model(client, run)
    decision = promote_run(load_project(path, tracking_uri=store), run)
    assert decision == Promotion(
        False, "champion", "mini", "", "the gate `metrics['best_r2'] > 0.5` cannot be "
        "evaluated: the run has no metric 'best_r2' (its metrics: accuracy)")
    assert client.search_model_versions("name='mini'") == []


def test_a_gate_reads_the_metrics_a_candidate_logged_under_its_name(tmp_path: Path) -> None:
    """With ``sweep.candidates`` the gate and the comparison read ``forest.r2`` as ``r2``,
    for the run and for the version the alias points at; a run of several candidates
    (whose ``r2`` is whose?) cannot be read so."""
    client = open_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("sweep")
    client.create_registered_model("m")
    promote = PromoteSpec("champion", when="metrics['r2'] > 0.5", metric="r2", mode="max")
    candidates = ("forest", "ridge")

    def decide_on(**metrics: float) -> Promotion:
        run_id = client.create_run(experiment).info.run_id
        for key, value in metrics.items():
            client.log_metric(run_id, key.replace("__", "."), value)
        version = str(client.create_model_version("m", f"runs:/{run_id}/model",
                                                  run_id=run_id).version)
        return promote_version(client, promote, "m", version, run_id, candidates)

    first = decide_on(forest__r2=0.7, forest__mae=3.0)
    assert first.promoted and first.numbers == {"metrics.r2": 0.7}
    better = decide_on(forest__r2=0.8)
    assert better.promoted and better.numbers == {"metrics.r2": 0.8, "current.r2": 0.7}
    both = decide_on(forest__r2=0.9, ridge__r2=0.95)
    assert not both.promoted and both.reason == (
        "the gate `metrics['r2'] > 0.5` cannot be evaluated: the run has no metric 'r2' "
        "(its metrics: forest.r2, ridge.r2)")
    own = decide_on(r2=0.1, forest__r2=0.99)  # a name logged as it is is read as it is
    assert not own.promoted and own.reason == "`metrics['r2'] > 0.5` does not hold"
    assert client.get_model_version_by_alias("m", "champion").version == 2


def test_candidate_metrics_adds_each_candidates_own_names() -> None:
    metrics = {"forest.r2": 0.9, "forest.cv.mae": 2.0, "ridge.rmse": 1.0, "forestry.r2": 0.1,
               "rmse": 5.0, "forest.n": 3.0, "ridge.n": 4.0}
    assert candidate_metrics(metrics, ("forest", "ridge")) == {
        **metrics, "r2": 0.9, "cv.mae": 2.0}
    assert candidate_metrics(metrics, ()) == metrics


def test_what_a_gate_lacks_is_said_after_what_it_could_read() -> None:
    """The gate read a parameter the run has, then a metric it lacks: the metric is named,
    with every metric the run has (the comparison's message too)."""
    from kmlc.model.promote import unreadable

    gate = PromoteSpec("champion", when="params['c'] == '1' and metrics['acc'] > 0.5")
    lacking = ("the gate `params['c'] == '1' and metrics['acc'] > 0.5` cannot be evaluated: "
               "the run has no metric 'acc' (its metrics: loss, mae)")
    assert unreadable(gate, {"loss": 1.0, "mae": 2.0}, {"c": "1"}) == lacking
    assert decide(gate, {"loss": 1.0, "mae": 2.0}, {"c": "1"}, None) == (
        False, lacking, {"params.c": "1"})
    compare = PromoteSpec("champion", metric="rmse")
    no_rmse = ("the run logged no metric 'rmse' to compare with the current version (its "
               "metrics: loss, mae)")
    assert unreadable(compare, {"mae": 2.0, "loss": 1.0}, {}) == no_rmse
    assert decide(compare, {"mae": 2.0, "loss": 1.0}, {}, None) == (False, no_rmse, {})


def test_a_long_reason_and_numbers_are_tagged_cut_to_5000_characters(tmp_path: Path) -> None:
    """A gate over 30 long-named metrics: its reason and the numbers it read are longer
    than the tag values some stores accept; the decision is made and tagged with their
    first 5000 characters (the Promotion keeps them whole)."""
    from mlflow.entities import Metric

    client = open_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("long")).info.run_id
    names = [f"{'validation_score_' * 10}{i:03d}" for i in range(30)]
    client.log_batch(run_id, metrics=[Metric(n, 0.5, 0, 0) for n in names])
    client.create_registered_model("m")
    version = str(client.create_model_version("m", f"runs:/{run_id}/model",
                                              run_id=run_id).version)
    when = " and ".join(f"metrics['{n}'] >= 0" for n in names)
    decision = promote_version(client, PromoteSpec("champion", when=when), "m", version, run_id)
    assert decision.promoted and decision.reason == f"`{when}` holds"
    numbers = '{' + ", ".join(f'"metrics.{n}": 0.5' for n in names) + '}'
    assert len(decision.reason) > 5000 and len(numbers) > 5000
    for tags in (client.get_run(run_id).data.tags, client.get_model_version("m", version).tags):
        assert tags["kmlc.promotion.reason"] == decision.reason[:5000]
        assert tags["kmlc.promotion.numbers"] == numbers[:5000]


def test_promote_run_reads_the_sweeps_candidate_metrics_by_name(tmp_path: Path) -> None:
    """examples/diabetes: ``sweep.candidates`` ridge and forest, a gate on ``r2``; the
    run of the forest logged ``forest.r2``, which the gate reads as ``r2``."""
    import shutil

    example = Path(__file__).resolve().parents[2] / "examples" / "diabetes"
    shutil.copy(example / "diabetes_nodes.py", tmp_path)
    path = tmp_path / "mlproject.yml"
    path.write_text((example / "mlproject.yml").read_text())
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = open_client(store)
    run = client.create_run(client.create_experiment("diabetes")).info.run_id
    client.log_metric(run, "forest.r2", 0.5)
    client.create_registered_model("diabetes")
    client.create_model_version("diabetes", f"runs:/{run}/model", run_id=run)
    decision = promote_run(load_project(path, tracking_uri=store), run)
    assert decision == Promotion(True, "champion", "diabetes", "1",
                                 "`metrics['r2'] > 0.3` holds", {"metrics.r2": 0.5})
