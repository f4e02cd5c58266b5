"""The runners' table (kmlc/runners), the runner resolved once as the project loads, and
the one Selection from the command line to Kedro's Pipeline.filter."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from kedro.pipeline import Pipeline
from kedro.runner import AbstractRunner

from kmlc.cli import main
from kmlc.config.loader import load_project
from kmlc.config.schema import schema_text
from kmlc.config.selection import Selection, filters
from kmlc.config.spec import RUNNERS as NAMES
from kmlc.config.spec import RunnerSpec
from kmlc.errors import KmlcError, RunError, RunInterrupted
from kmlc.runners import RUNNERS, make_runner

IRIS = Path(__file__).resolve().parents[2] / "examples" / "iris" / "mlproject.yml"


def test_the_table_the_schema_and_the_choices_name_the_same_runners() -> None:
    schema = json.loads(schema_text())
    assert list(RUNNERS) == list(NAMES)
    assert typing.get_args(typing.get_type_hints(RunnerSpec)["type"]) == NAMES
    assert schema["properties"]["runner"]["properties"]["type"]["enum"] == list(NAMES)
    choices = {p.name: p.type for p in main.commands["run"].params}["runner"]
    assert list(choices.choices) == list(NAMES)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", list(NAMES))
def test_each_row_makes_a_kedro_runner_of_its_kind(name: str) -> None:
    spec = load_project(IRIS, runner=name)
    runner = make_runner(spec)
    assert isinstance(runner, AbstractRunner)
    assert type(runner).__name__.lower().startswith(name if name != "parallel" else "progress")
    assert RUNNERS[name].shared_memory is (name == "parallel")


@pytest.mark.parametrize(("runner", "address", "expected"), [
    (None, None, ("sequential", None)),  # the file's
    ("thread", None, ("thread", None)),
    (None, "tcp://127.0.0.1:8786", ("dask", "tcp://127.0.0.1:8786")),  # an address: dask
    ("dask", None, ("dask", None)),  # a local cluster
])
def test_the_runner_is_resolved_once_as_the_project_loads(
        runner: str | None, address: str | None, expected: tuple[str, str | None]) -> None:
    spec = load_project(IRIS, runner=runner, address=address)
    assert (spec.runner.type, spec.runner.address) == expected


def test_unknown_runner_names_the_runners() -> None:
    from dataclasses import replace

    spec = load_project(IRIS)
    with pytest.raises(RunError) as info:
        make_runner(replace(spec, runner=replace(spec.runner, type="spark")))  # type: ignore[arg-type]
    assert "unknown runner 'spark'" in str(info.value) and "sequential" in str(info.value)


def test_importing_the_runners_leaves_kedro_runner_out() -> None:
    """kedro.runner sets up Kedro's logging when imported: the run sets it up first."""
    code = ("import sys, kmlc.run, kmlc.runners\n"
            "print('kedro.runner' in sys.modules, 'kedro.framework.project' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_each_filter_is_an_option_of_run_and_a_keyword_of_pipeline_filter() -> None:
    options = {opt for p in main.commands["run"].params for opt in p.opts}
    keywords = set(inspect.signature(Pipeline.filter).parameters)
    for f in filters():
        assert set(f.metadata["flags"]) <= options, f.name
        assert f.metadata["kedro"] in keywords, f.name
    assert set(Selection().kedro_filter()) <= keywords


def test_the_selection_reaches_kedros_run_params_as_kedro_names_them() -> None:
    selection = Selection(tags=["a"], nodes=("n",), namespaces=["ns"],
                          load_versions={"ds": "v1"})
    assert selection == Selection(tags=("a",), nodes=("n",), namespaces=("ns",),
                                  load_versions={"ds": "v1"})  # lists or tuples: one value
    params = selection.run_params()
    assert params["tags"] == ["a"] and params["node_names"] == ["n"]
    assert params["namespaces"] == ["ns"] and params["load_versions"] == {"ds": "v1"}
    assert not Selection().filtered and selection.filtered


def test_errors_carry_the_run_as_fields() -> None:
    error = RunError("boom")
    assert (error.run_id, error.status, error.notes) == (None, None, ())
    error.add_run("abc", "FAILED", ["a note"])
    assert (error.run_id, error.status, error.notes) == ("abc", "FAILED", ("a note",))
    stopped = RunInterrupted("signal 15", run_id="abc", status="KILLED", notes=["n"])
    assert isinstance(stopped, KeyboardInterrupt) and not isinstance(stopped, KmlcError)
    assert (stopped.args, stopped.run_id, stopped.status, stopped.notes) == (
        ("signal 15",), "abc", "KILLED", ("n",))
