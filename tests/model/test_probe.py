"""The runtime on a hand-made plan: the probe finds what steps change, predict copies only that."""

from __future__ import annotations

import importlib
import pickle
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kmlc.compiler.inference_plan import ArtifactRef, InferencePlan, Step
from kmlc.model.probe import fingerprint, probe_mutations

# node code written the way Kedro users write it: inputs changed in place
NODES = '''
def clean(frame):
    frame["x"] = frame["x"] * 2          # the caller's input, changed in place
    return frame

def lookup(frame, table, options):
    table.setdefault("seen", 0)          # a packed artifact, changed in place
    table["seen"] += 1
    return frame["x"] * table["scale"] * options["weights"]["x"] + table["seen"]

def shift(scores, offsets):
    offsets += 1                         # an array, changed in place
    return scores + offsets.sum()
'''


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    (tmp_path / "probe_nodes.py").write_text(NODES, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with (tmp_path / "table.pkl").open("wb") as handle:
        pickle.dump({"scale": 3}, handle)
    with (tmp_path / "offsets.pkl").open("wb") as handle:
        pickle.dump(np.zeros(2), handle)
    plan = InferencePlan(
        "rows", "shifted",
        (Step("clean", "probe_nodes:clean", ["rows"], "frame"),
         Step("lookup", "probe_nodes:lookup", {"frame": "frame", "table": "table",
                                               "options": "params:options"}, "scores"),
         Step("shift", "probe_nodes:shift", ["scores", "offsets"], "shifted")),
        (ArtifactRef("table", {"type": "pickle.PickleDataset"}, "table.pkl"),
         ArtifactRef("offsets", {"type": "pickle.PickleDataset"}, "offsets.pkl")),
        {"params:options": {"weights": {"x": 1.0}, "tags": ["a"]}}, ("probe_nodes",))

    def load(the_plan: InferencePlan) -> Any:
        from kmlc.model import runtime

        path = tmp_path / "kmlc_plan.json"
        path.write_text(the_plan.to_json(), encoding="utf-8")
        model = runtime.PipelineRuntime()
        model.load_context(SimpleNamespace(artifacts={
            "kmlc_plan": str(path), "table": str(tmp_path / "table.pkl"),
            "offsets": str(tmp_path / "offsets.pkl")}))
        return model

    yield plan, load
    sys.modules.pop("probe_nodes", None)


def test_probe_finds_each_change_and_predict_copies_only_those(build: Any) -> None:
    plan, load = build
    rows = pd.DataFrame({"x": [1.0, 2.0]})
    mutated, output = probe_mutations(load(plan), rows.copy())
    assert mutated == {"clean": {"rows": "copy"}, "lookup": {"table": "deepcopy"},
                       "shift": {"offsets": "copy"}}
    assert list(output) == [9.0, 15.0]
    model = load(plan.with_mutations(mutated))
    untouched = rows.copy()
    results = [list(model.predict(None, rows)) for _ in range(3)]
    assert results == [[9.0, 15.0]] * 3
    pd.testing.assert_frame_equal(rows, untouched)
    assert model._values["table"] == {"scale": 3}


def test_without_copies_calls_see_each_other(build: Any) -> None:
    """What the copies prevent: the model as it was (``copy_mode: assign`` everywhere)."""
    plan, load = build
    model = load(plan)
    rows = pd.DataFrame({"x": [1.0, 2.0]})
    first, second = list(model.predict(None, rows)), list(model.predict(None, rows))
    assert first != second and list(rows["x"]) == [4.0, 8.0]


def test_params_by_dotted_path_and_unknown_ones_listed(build: Any) -> None:
    from mlflow.exceptions import MlflowException

    plan, load = build
    model = load(plan)
    assert sorted(model.param_targets) == ["options.tags", "options.weights.x"]
    out = model.predict(None, pd.DataFrame({"x": [1.0]}), params={"options.weights.x": 2.0})
    assert list(out) == [15.0]  # 1 * 2 (clean) * 3 * 2.0 + 1 (seen) + 2 (offsets)
    assert plan.params["params:options"]["weights"]["x"] == 1.0  # frozen values kept
    with pytest.raises(MlflowException, match=r"options\.weight\b.*options\.tags, "
                                              r"options\.weights\.x"):
        model.predict(None, pd.DataFrame({"x": [1.0]}), params={"options.weight": 2.0})


def test_fingerprints_follow_content() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [[1], [2]]})  # list cells: not hashable
    assert fingerprint(frame) == fingerprint(frame.copy())
    changed = frame.copy()
    changed.loc[0, "a"] = 5
    assert fingerprint(changed) != fingerprint(frame)
    renamed = frame.rename(columns={"a": "c"})
    assert fingerprint(renamed) != fingerprint(frame)
    array = np.arange(3)
    assert fingerprint(array) == fingerprint(array.copy()) != fingerprint(array + 1)
    assert fingerprint({"k": [1]}) != fingerprint({"k": [2]})
    assert fingerprint(lambda: None) is None  # unpicklable
    assert fingerprint(None) is not None and fingerprint(None) != fingerprint(0)


def test_the_probe_runs_each_step_on_copies_not_on_the_model_or_the_sample(build: Any) -> None:
    """Every step of the plan changes an input in place; after the probe, the sample and
    the loaded artifacts are as they were, so the model predicts as a fresh one does."""
    plan, load = build
    rows = pd.DataFrame({"x": [1.0, 2.0]})
    fresh = list(load(plan).predict(None, rows.copy()))
    model = load(plan)
    sample = rows.copy()
    probe_mutations(model, sample)
    pd.testing.assert_frame_equal(sample, rows)  # clean doubled x in its copy only
    assert list(model.predict(None, rows.copy())) == fresh  # table.seen, offsets untouched


# ---------------------------------------------------------------- probe_model on a project

PROBE_YAML = """\
version: 1
name: probe_proj
parameters:
  opts: {rate: 0.5, n: 3, flag: false, name: a, tags: [a, b], mixed: [1, a],
         nested: {k: 1}, fail: false, empty: null, maybe: [1, null]}
datasets:
  instances: {type: pandas.CSVDataset, filepath: data/instances.csv}
  model_file: {type: pickle.PickleDataset, filepath: data/model.pkl}
nodes:
  - {name: fit, func: probe_proj_nodes.fit, inputs: instances, outputs: model_file,
     tags: [training]}
  - {name: clean, func: probe_proj_nodes.clean, inputs: instances, outputs: features,
     tags: [training, inference]}
  - {name: predict, func: probe_proj_nodes.predict,
     inputs: [model_file, features, params:opts], outputs: predictions, tags: [inference]}
model:
  input: instances
"""

PROBE_NODES = '''\
from kedro.io import AbstractDataset


class Unreachable(AbstractDataset):
    """A dataset of the project's own whose store cannot be reached."""

    def __init__(self, table):
        raise ConnectionError(f"no route to {table}")

    def _load(self):
        raise NotImplementedError

    def _save(self, data):
        raise NotImplementedError

    def _describe(self):
        return {}


class Keyed(AbstractDataset):
    """A dataset of the project's own that reads with the credentials it is given."""

    def __init__(self, table, credentials=None):
        self._credentials = credentials

    def _load(self):
        return dict(self._credentials or {})

    def _save(self, data):
        raise NotImplementedError

    def _exists(self):
        return self._credentials is not None

    def _describe(self):
        return {}


def fit(instances):
    return {"scale": 2.0}


def clean(instances):
    instances["x"] = instances["x"] * 10  # the caller's rows, changed in place
    return instances


def predict(model, features, opts):
    if opts["fail"]:
        raise ValueError("the step failed on purpose")
    return features["x"] * model["scale"] + opts["rate"]
'''


@pytest.fixture
def probe_project(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "data" / "instances.csv").write_text(
        "id,x\n" + "".join(f"{i},{i}.0\n" for i in range(1, 8)))
    with (root / "data" / "model.pkl").open("wb") as handle:
        pickle.dump({"scale": 2.0}, handle)  # what training saved
    (root / "probe_proj_nodes.py").write_text(PROBE_NODES)
    (root / "mlproject.yml").write_text(PROBE_YAML)
    sys.modules.pop("probe_proj_nodes", None)
    yield root / "mlproject.yml"
    sys.modules.pop("probe_proj_nodes", None)


def test_probe_model_runs_the_plan_on_copies_of_the_first_five_rows(
        probe_project: Path) -> None:
    from kmlc import load_project
    from kmlc.model.probe import load_model_input, model_input_missing, probe_model

    spec = load_project(probe_project)
    assert model_input_missing(spec) is None
    data = load_model_input(spec)
    assert list(data["x"]) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    probe = probe_model(spec, data)
    assert list(probe.sample["x"]) == [1.0, 2.0, 3.0, 4.0, 5.0]  # as read: not cleaned
    assert list(data["x"]) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert list(probe.output) == [20.5, 40.5, 60.5, 80.5, 100.5]
    assert probe.copies == {"clean": {"instances": "copy"}}
    # one pyfunc param per scalar or one-typed list leaf, by dotted name; a bool is no int
    assert probe.params == (("opts.fail", "boolean", False, None),
                            ("opts.flag", "boolean", False, None),
                            ("opts.n", "long", 3, None),
                            ("opts.name", "string", "a", None),
                            ("opts.nested.k", "long", 1, None),
                            ("opts.rate", "double", 0.5, None),
                            ("opts.tags", "string", ["a", "b"], (-1,)))


def test_a_step_that_fails_on_the_first_rows_is_an_export_error(probe_project: Path) -> None:
    from kmlc import load_project
    from kmlc.errors import ExportError
    from kmlc.model.probe import probe_model

    spec = load_project(probe_project, params=["opts.fail=true"])
    with pytest.raises(ExportError) as caught:
        probe_model(spec, pd.DataFrame({"id": [1], "x": [1.0]}))
    assert caught.value.message == ("the inference pipeline fails on the first rows of "
                                    "'instances': ValueError: the step failed on purpose")
    (probe_project.parent / "data" / "model.pkl").unlink()  # an artifact training left out
    with pytest.raises(ExportError, match="artifact 'model_file' was not found at "):
        probe_model(spec, pd.DataFrame({"id": [1], "x": [1.0]}))


def test_a_model_input_not_there_yet_or_unreadable_says_why(probe_project: Path) -> None:
    from kmlc import load_project
    from kmlc.model.probe import load_model_input, model_input_missing

    (probe_project.parent / "data" / "instances.csv").unlink()
    spec = load_project(probe_project)
    assert model_input_missing(spec) == "it does not exist yet"
    assert load_model_input(spec) is None
    probe_project.write_text(PROBE_YAML.replace(
        "{type: pandas.CSVDataset, filepath: data/instances.csv}",
        "{type: probe_proj_nodes.Unreachable, table: rows}"))
    why = model_input_missing(load_project(probe_project))
    assert why is not None and why.startswith("DatasetError: ")
    assert "no route to rows" in why
    probe_project.write_text(PROBE_YAML.replace("model:\n  input: instances",
                                                "model:\n  input: features"))
    spec = load_project(probe_project)
    assert model_input_missing(spec) is None  # a memory dataset: nothing to find
    assert load_model_input(spec) is None


def test_the_first_rows_are_a_copy_of_their_own() -> None:
    from kmlc.model.probe import EXAMPLE_ROWS, first_rows

    assert EXAMPLE_ROWS == 5
    frame = pd.DataFrame({"x": range(8)})
    head = first_rows(frame)
    assert list(head["x"]) == [0, 1, 2, 3, 4]
    head.loc[0, "x"] = 99
    assert frame.loc[0, "x"] == 0
    rows = [[i] for i in range(8)]
    listed = first_rows(rows)
    assert listed == [[0], [1], [2], [3], [4]] and listed[0] is not rows[0]
    assert first_rows(tuple(range(8))) == (0, 1, 2, 3, 4)
    assert list(first_rows(np.arange(8))) == [0, 1, 2, 3, 4]  # ndim 1: sliced too
    array = np.arange(16).reshape(8, 2)
    sliced = first_rows(array)
    assert sliced.shape == (5, 2)
    sliced[0, 0] = 99
    assert array[0, 0] == 0
    one = {"x": [1, 2]}
    assert first_rows(one) == one and first_rows(one)["x"] is not one["x"]
    scalar = np.float64(3.0)  # ndim 0: not sliced
    assert first_rows(scalar) == 3.0
    shaped = SimpleNamespace(shape=(3,))  # a shape, no ndim: not sliced
    assert first_rows(shaped) == shaped and first_rows(shaped) is not shaped


def test_the_probe_reads_this_runs_staged_copy_of_an_artifact(probe_project: Path,
                                                              tmp_path: Path) -> None:
    """Another run may have rewritten ``data/model.pkl`` since this one saved it: the
    probe reads the copy this run staged."""
    from kmlc import load_project
    from kmlc.model.probe import probe_model

    staged = tmp_path / "staged.pkl"
    with staged.open("wb") as handle:
        pickle.dump({"scale": 3.0}, handle)
    spec = load_project(probe_project)
    rows = pd.DataFrame({"id": [1], "x": [1.0]})
    assert list(probe_model(spec, rows).output) == [20.5]
    assert list(probe_model(spec, rows, {"model_file": str(staged)}).output) == [30.5]


def test_the_model_input_is_read_with_its_credentials(probe_project: Path) -> None:
    from kmlc import load_project
    from kmlc.model.probe import load_model_input, model_input_missing

    (probe_project.parent / "creds.yml").write_text("db:\n  user: reader\n")
    probe_project.write_text(PROBE_YAML.replace(
        "{type: pandas.CSVDataset, filepath: data/instances.csv}",
        "{type: probe_proj_nodes.Keyed, table: rows, credentials: db}").replace(
        "name: probe_proj\n", "name: probe_proj\ncredentials: creds.yml\n"))
    spec = load_project(probe_project)
    assert model_input_missing(spec) is None
    assert load_model_input(spec) == {"user": "reader"}


# ---------------------------------------------------------------- what the probe sees change

@pytest.fixture
def runtime_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``make(nodes, steps, output, artifacts=None, keys=())``: a plan over node code
    written into ``tmp_path`` (module ``probe_more``) and its artifacts pickled there
    (``artifacts(module)``: name -> value), and a loader of the runtime model of a plan."""
    from kmlc.model import runtime

    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("probe_more", None)

    def make(nodes: str, steps: tuple[Step, ...], output: str,
             artifacts: Callable[[Any], dict[str, Any]] | None = None,
             keys: tuple[str, ...] = ()) -> tuple[InferencePlan, Callable[..., Any]]:
        (tmp_path / "probe_more.py").write_text(nodes, encoding="utf-8")
        values = artifacts(importlib.import_module("probe_more")) if artifacts else {}
        for name, value in values.items():
            (tmp_path / f"{name}.pkl").write_bytes(pickle.dumps(value))
        plan = InferencePlan("rows", output, steps,
                             tuple(ArtifactRef(name, {"type": "pickle.PickleDataset"},
                                               f"{name}.pkl") for name in values),
                             {}, ("probe_more",), keys=keys)

        def load(the_plan: InferencePlan) -> Any:
            path = tmp_path / "kmlc_plan.json"
            path.write_text(the_plan.to_json(), encoding="utf-8")
            model = runtime.PipelineRuntime()
            model.load_context(SimpleNamespace(artifacts={
                "kmlc_plan": str(path),
                **{name: str(tmp_path / f"{name}.pkl") for name in values}}))
            return model

        return plan, load

    yield make
    sys.modules.pop("probe_more", None)


FRAME_NODES = """
def downcast(frame):
    frame["n"] = frame["n"].astype("int32")   # the same numbers, a narrower type

def relabel(frame):
    frame.index = frame.index + 10            # the same rows, other labels

def name_index(frame):
    frame.index.name = "row"

def note(frame):
    frame.attrs["unit"] = "cm"

def rename(series):
    series.name = "renamed"

def reshape(grid):
    grid.shape = (3, 2)                       # the same numbers, another shape

def total(frame, series, grid):
    return int(frame["n"].sum() + series.sum() + grid.sum())
"""


def test_the_probe_sees_a_value_changed_only_in_its_types_labels_attrs_or_shape(
        runtime_of: Any) -> None:
    """A step that changes only the column types, the index, its name or the attrs of a
    frame, a series' name or an array's shape changes its input as much as one that
    changes the numbers: each is copied. Steps without outputs run too; a step that only
    reads is not copied."""
    plan, load = runtime_of(FRAME_NODES, (
        Step("downcast", "probe_more:downcast", ["rows"], None),
        Step("relabel", "probe_more:relabel", ["rows"], None),
        Step("name_index", "probe_more:name_index", ["rows"], None),
        Step("note", "probe_more:note", ["rows"], None),
        Step("rename", "probe_more:rename", ["series"], None),
        Step("reshape", "probe_more:reshape", ["grid"], None),
        Step("total", "probe_more:total", ["rows", "series", "grid"], "total")), "total",
        lambda _: {"series": pd.Series([1, 2], name="s"), "grid": np.arange(6)})
    rows = pd.DataFrame({"n": [1, 2, 3]})
    mutated, output = probe_mutations(load(plan), rows)
    assert mutated == {"downcast": {"rows": "copy"}, "relabel": {"rows": "copy"},
                       "name_index": {"rows": "copy"}, "note": {"rows": "copy"},
                       "rename": {"series": "deepcopy"}, "reshape": {"grid": "copy"}}
    assert output == 24
    pd.testing.assert_frame_equal(rows, pd.DataFrame({"n": [1, 2, 3]}))
    assert rows.attrs == {}


UNPICKLABLE_NODES = """
def bump(frame):
    frame["n"] += 1                           # beside a column pickle refuses

def rules(frame):
    return frame["rule"]

def rename(series):
    series.name = "renamed"

def apply(frame, series):
    return [rule(n) for rule, n in zip(series, frame["n"])]
"""


def test_the_probe_sees_changes_to_a_frame_that_pickle_refuses(runtime_of: Any) -> None:
    """A frame or series holding objects that cannot be pickled (functions here) is still
    fingerprinted from its content, so the steps changing it are seen."""
    plan, load = runtime_of(UNPICKLABLE_NODES, (
        Step("bump", "probe_more:bump", ["rows"], None),
        Step("rules", "probe_more:rules", ["rows"], "rules"),
        Step("rename", "probe_more:rename", ["rules"], None),
        Step("apply", "probe_more:apply", ["rows", "rules"], "applied")), "applied")
    rows = pd.DataFrame({"n": [1, 2], "rule": [lambda n: n * 10, lambda n: -n]})
    mutated, output = probe_mutations(load(plan), rows)
    assert mutated == {"bump": {"rows": "copy"}, "rename": {"rules": "deepcopy"}}
    assert output == [10, -2]


STATE_NODES = """
import numpy as np


class Session:
    \"\"\"A client that refuses to be copied, as database sessions and locks do.\"\"\"

    def __init__(self):
        self.rate = 2.0

    def __deepcopy__(self, memo):
        raise TypeError("a Session cannot be copied")


def jitter(rng, rows):
    return rows["x"] + np.round(rng.random(len(rows)) / 10, 6)  # the generator moves on


def count(table, session, columns, scores):
    table["counts"]["n"] += 1                 # a nested value, changed in place
    return scores * session.rate * len(columns) + table["counts"]["n"]


def state():
    return {"rng": np.random.default_rng(0), "table": {"counts": {"n": 0}},
            "session": Session(), "columns": __import__("pandas").Index(["x"])}
"""


def test_the_probe_sees_state_that_steps_move_and_leaves_the_model_as_loaded(
        runtime_of: Any) -> None:
    """A random generator drawn from and a nested dict changed in place are seen (the
    model then predicts the same at every call); an input that refuses to be copied is
    handed over as it is, and an index only read is left alone. After the probe, the
    model predicts as a fresh one does: the probe changed none of its values."""
    plan, load = runtime_of(STATE_NODES, (
        Step("jitter", "probe_more:jitter", ["rng", "rows"], "scores"),
        Step("count", "probe_more:count", ["table", "session", "columns", "scores"],
             "counted")), "counted", lambda module: module.state())
    rows = pd.DataFrame({"x": [1.0, 2.0]})
    fresh = list(load(plan).predict(None, rows))
    model = load(plan)
    mutated, output = probe_mutations(model, rows)
    assert mutated == {"jitter": {"rng": "deepcopy"}, "count": {"table": "deepcopy"}}
    assert list(output) == fresh
    assert list(model.predict(None, rows)) == fresh
    copying = load(plan.with_mutations(mutated))
    assert [list(copying.predict(None, rows)) for _ in range(3)] == [fresh] * 3


SHARED_NODES = """
class DataFrame:
    \"\"\"A frame of another library (polars, Spark): Kedro hands it over as it is.\"\"\"

    def __init__(self, rows):
        self.rows = rows


def mark(cells, table):
    cells[0].append("seen")                   # a list inside an object array
    table.rows.append(0)                      # the other library's frame, in place
    return len(table.rows)


def read(cells, size):
    return size * 10 + len(cells[0])


def state():
    import numpy as np

    cells = np.empty(2, dtype=object)
    cells[0], cells[1] = [], []
    return {"cells": cells, "table": DataFrame([1, 2, 3])}
"""


def test_the_probe_output_is_what_a_fresh_model_predicts(runtime_of: Any) -> None:
    """Kedro copies an array for a step that changes it (``copy``: the lists inside it
    are shared) and deep-copies a frame of another library (its ``assign``): the probe
    finds both changes, and gives what the model's first call returns, where the next
    step sees the list the first one grew."""
    plan, load = runtime_of(SHARED_NODES, (
        Step("mark", "probe_more:mark", ["cells", "table"], "size"),
        Step("read", "probe_more:read", ["cells", "size"], "out")), "out",
        lambda module: module.state())
    rows = pd.DataFrame({"x": [1.0]})
    mutated, output = probe_mutations(load(plan), rows)
    assert mutated == {"mark": {"cells": "copy", "table": "deepcopy"}}
    assert output == load(plan.with_mutations(mutated)).predict(None, rows) == 41


KEYED_NODES = """
def score(rows):
    return (rows["x"] * 2).rename("score")
"""


def test_the_probe_output_is_what_predict_returns_keys_first(runtime_of: Any) -> None:
    """With ``model.keys``, the probe's output (the signature's) carries the key columns
    taken from the rows, as predict's does."""
    plan, load = runtime_of(KEYED_NODES, (Step("score", "probe_more:score", ["rows"],
                                               "scores"),), "scores", keys=("id",))
    rows = pd.DataFrame({"id": ["a", "b"], "x": [1.0, 2.0]})
    model = load(plan)
    _, output = probe_mutations(model, rows)
    assert list(output.columns) == ["id", "score"] and list(output["id"]) == ["a", "b"]
    pd.testing.assert_frame_equal(output, model.predict(None, rows))


def test_an_unreadable_model_input_is_named_in_why(probe_project: Path) -> None:
    from kmlc import load_project
    from kmlc.model.probe import model_input_missing

    probe_project.write_text(PROBE_YAML.replace(
        "{type: pandas.CSVDataset, filepath: data/instances.csv}",
        "{type: probe_proj_nodes.Unreachable, table: rows}"))
    why = model_input_missing(load_project(probe_project))
    assert why is not None and "dataset 'instances'" in why
