"""What a cache record must hold to be used (``kmlc.cache.records``)."""

from __future__ import annotations

from typing import Any

import pytest

from kmlc.cache.records import metric_problem, record_problem

REF = "sha256:" + "0" * 64


@pytest.mark.parametrize("value", [1, 2.5, -3, {"value": 1.5}, {"value": 2, "step": 3},
                                   {"value": 0, "step": -1}])
def test_one_metric_takes_a_number_or_a_value_with_a_step(value: Any) -> None:
    assert metric_problem("mlflow.metric", value) is None


@pytest.mark.parametrize("value", [True, "1", None, [1], {"value": "1"}, {"value": True},
                                   {"value": 1, "step": 1.5}, {"value": 1, "step": True},
                                   {"value": 1, "other": 2}, {"step": 1}])
def test_one_metric_refuses_anything_else(value: Any) -> None:
    assert metric_problem("mlflow.metric", value) == (
        f"expected a number or {{value, step}}, found {str(value)[:60]!r}")


@pytest.mark.parametrize("value", [[], [1, 2.5], {"0": 1.0, "1": 2, "-1": 3}, {}])
def test_a_metric_history_takes_numbers_or_numbers_by_step(value: Any) -> None:
    assert metric_problem("mlflow.metric_history", value) is None


@pytest.mark.parametrize("value", [3, [1, "2"], [True], {"a": 1}, {"1": "x"}, {"1.5": 1}, "12",
                                   {"X1": 1}, {"-x": 1}])
def test_a_metric_history_refuses_anything_else(value: Any) -> None:
    assert metric_problem("mlflow.metric_history", value) == (
        f"expected a list of numbers or {{step: number}}, found {str(value)[:60]!r}")


@pytest.mark.parametrize("value", [{}, {"a": 1, "b": {"value": 2, "step": 1}, "c": [1, 2.0]}])
def test_many_metrics_take_a_mapping_of_points_or_histories(value: Any) -> None:
    assert metric_problem("mlflow.metrics", value) is None


@pytest.mark.parametrize("value", [1, [1], {1: 2}, {"a": "x"}, {"a": [1, "x"]}, {"a": None}])
def test_many_metrics_refuse_anything_else(value: Any) -> None:
    assert metric_problem("mlflow.metrics", value) == (
        f"expected a mapping of name -> number, found {str(value)[:60]!r}")


def test_a_long_value_is_cut_in_the_message() -> None:
    problem = metric_problem("mlflow.metric", "x" * 100)
    assert problem == f"expected a number or {{value, step}}, found {'x' * 60!r}"


OUTPUTS = {"table": "file", "model": "versioned", "score": "metric", "kept": "memory"}
TYPES = {"score": "mlflow.metric"}
GOOD = {"run_id": "r1", "outputs": {"table": "sha256:a", "model": "version:1"},
        "metrics": {"score": 0.5}, "memory": {"kept": REF}}


@pytest.mark.parametrize(("record", "problem"), [
    (GOOD, None),
    ({**GOOD, "run_id": None}, None),
    ({k: v for k, v in GOOD.items() if k not in ("run_id", "memory")}, None),
    ({**GOOD, "memory": {}}, None),  # a memory value not kept: not a problem of the record
    ("text", "it is a str, not a mapping"),
    ([GOOD], "it is a list, not a mapping"),
    ({**GOOD, "run_id": 3}, "its run_id is not a string"),
    ({**GOOD, "outputs": None}, "its outputs is not a mapping"),
    ({k: v for k, v in GOOD.items() if k != "outputs"}, "its outputs is not a mapping"),
    ({**GOOD, "metrics": [0.5]}, "its metrics is not a mapping"),
    ({k: v for k, v in GOOD.items() if k != "metrics"}, "its metrics is not a mapping"),
    ({**GOOD, "memory": [REF]}, "its memory is not a mapping"),
    ({**GOOD, "outputs": {"model": "version:1"}}, "it has no content hash for output 'table'"),
    ({**GOOD, "outputs": {"table": "sha256:a", "model": 1}},
     "it has no content hash for output 'model'"),
    ({**GOOD, "metrics": {}}, "it has no value for metric 'score'"),
    ({**GOOD, "metrics": {"score": "high"}},
     "its value for metric 'score' is not valid: expected a number or {value, step}, "
     "found 'high'"),
    ({**GOOD, "memory": {"kept": "sha256:zz"}},
     "its reference for memory output 'kept' is not a sha256 reference"),
])
def test_record_problem_names_the_first_thing_missing(record: Any, problem: str | None) -> None:
    assert record_problem(record, OUTPUTS, TYPES) == problem


def test_outputs_of_other_kinds_need_nothing_in_the_record() -> None:
    assert record_problem({"outputs": {}, "metrics": {}}, {"p": "param", "o": "opaque"},
                          {}) is None
