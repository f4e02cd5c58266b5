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
