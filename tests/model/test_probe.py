"""The runtime on a hand-made plan: the probe finds what steps change, predict copies only that."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterator
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
