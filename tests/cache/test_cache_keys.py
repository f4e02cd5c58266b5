"""What goes into a node's cache key (``kmlc.cache.skip.RunCache.key``), on real Kedro runs
in process (tracking disabled) or on the cache's own hooks, called as Kedro calls them.

The key holds the content of every input but parameters (whose values are in the node's
static hash, a secret one by its HMAC): a persisted input's bytes, a memory input's
producer's key, a metric input's value. A node whose input cannot be told apart has no
key: it always runs and is never recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cached_runs import index_records as _records
from cached_runs import run_cache as _cache
from cached_runs import run_cached, write_project

from kmlc.cache import INDEX_FILE, RunCache

NODES = '''\
from pathlib import Path


def _ran(name):
    with open(Path(__file__).parent / "ran.txt", "a") as handle:
        handle.write(name + "\\n")


def double(scale, raw):
    _ran("double")
    return [v * scale for v in raw["x"]]


def shift(doubled):
    _ran("shift")
    return [v + 0.5 for v in doubled], {"copy": doubled}


def add(shifted, offset):
    _ran("add")
    return sum(shifted) + int(offset)


def score(raw):
    _ran("score")
    return {"value": float(raw["x"].sum()), "step": 1}


def judge(half):
    _ran("judge")
    return half["value"] > 1


def tally(raw):
    _ran("tally")
    return int(raw["x"].sum())


def score_and_keep(raw):
    _ran("score")
    return float(raw["x"].mean()), list(raw["x"])


def judge_kept(kept, limit):
    _ran("judge")
    return max(kept) > limit
'''

# double -> doubled (pickle) -> shift -> shifted (memory), copy (json) -> add -> total (json)
CHAIN = """\
version: 1
name: keys
parameters: {scale: 2, offset: 1}
datasets:
  raw: {type: pandas.CSVDataset, filepath: data/raw.csv}
  doubled: {type: pickle.PickleDataset, filepath: data/doubled.pkl}
  copy: {type: json.JSONDataset, filepath: data/copy.json}
  total: {type: json.JSONDataset, filepath: data/total.json}
nodes:
  - {name: double, func: keys_nodes.double, inputs: {scale: params:scale, raw: raw},
     outputs: doubled}
  - {name: shift, func: keys_nodes.shift, inputs: doubled, outputs: [shifted, copy]}
  - {name: add, func: keys_nodes.add, inputs: [shifted, params:offset], outputs: total}
tracking: {disable_for: [__default__]}
"""
ALL = ["double", "shift", "add"]

# score -> half (a metric) -> judge -> verdict (json)
SCORED = """\
version: 1
name: scored
datasets:
  raw: {type: pandas.CSVDataset, filepath: data/raw.csv}
  half: {type: mlflow.metric}
  verdict: {type: json.JSONDataset, filepath: data/verdict.json}
nodes:
  - {name: score, func: keys_nodes.score, inputs: raw, outputs: half}
  - {name: judge, func: keys_nodes.judge, inputs: half, outputs: verdict}
"""

# score -> half (a metric), kept (memory) -> judge -> verdict (json)
KEPT = """\
version: 1
name: kept
parameters: {limit: 1}
datasets:
  raw: {type: pandas.CSVDataset, filepath: data/raw.csv}
  half: {type: mlflow.metric}
  verdict: {type: json.JSONDataset, filepath: data/verdict.json}
nodes:
  - {name: score, func: keys_nodes.score_and_keep, inputs: raw, outputs: [half, kept]}
  - {name: judge, func: keys_nodes.judge_kept, inputs: [kept, params:limit], outputs: verdict}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "p", "keys_nodes", NODES, CHAIN)


def _run(path: Path, *params: str) -> list[str]:
    """One cached run in process: the nodes that ran."""
    ran, result = run_cached(path, *params)
    assert result.status == "FINISHED"
    return ran


def test_an_input_listed_after_a_parameter_is_in_the_key(project: Path) -> None:
    """double reads `params:scale` first, then `raw`: new bytes of raw rerun it."""
    assert _run(project) == ALL
    assert _run(project) == []
    (project.parent / "data" / "raw.csv").write_text("x\n1\n2\n4\n")
    assert _run(project) == ALL
    assert json.loads((project.parent / "data" / "total.json").read_text()) == 16.5


def test_a_memory_input_of_a_node_never_recorded_leaves_its_reader_unrecorded(
        project: Path) -> None:
    """shift also writes `copy` where its content cannot be hashed (``memory://``): it is
    never recorded, so `shifted` has no key, and add, which reads it, has none either."""
    project.write_text(CHAIN.replace("filepath: data/copy.json",
                                     f"filepath: memory://{project.parent.parent.name}/c.json"))
    assert _run(project) == ALL
    assert sorted(_records(project)) == ["double"]
    assert _run(project) == ["shift", "add"]
    assert sorted(_records(project)) == ["double"]


def test_a_secret_parameter_changed_reruns_its_node(project: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`offset` is a secret: the key holds its HMAC, never its value, and still changes."""
    project.write_text(CHAIN.replace(
        "offset: 1}", "offset: \"{{ env('KMLC_TEST_OFFSET', secret=true) }}\"}"))
    monkeypatch.setenv("KMLC_TEST_OFFSET", "1")
    assert _run(project) == ALL
    assert _run(project) == []
    monkeypatch.setenv("KMLC_TEST_OFFSET", "2")
    assert _run(project) == ["add"]
    assert json.loads((project.parent / "data" / "total.json").read_text()) == 15.5


def _score_and_judge(cache: RunCache, value: Any, verdict: Path) -> None:
    """What Kedro's runner tells the cache's hooks when score, then judge, run here."""
    score, judge = cache.pipeline.nodes
    cache.after_node_run(score, None, {}, {"half": value}, False)
    cache.after_dataset_saved("half", value, score)
    verdict.write_text("true")
    cache.after_dataset_saved("verdict", True, judge)
    cache.after_node_run(judge, None, {"half": value}, {"verdict": True}, False)


def test_a_node_reading_a_metric_is_keyed_by_the_metrics_value(project: Path) -> None:
    """judge reads the metric score saves: the next run skips both, with the value read
    back from the index (its keys sorted there: `step` before `value`), and reruns judge
    alone when the value recorded changes."""
    project.write_text(SCORED)
    verdict = project.parent / "data" / "verdict.json"
    cache = _cache(project)
    assert cache.decide() == ["score", "judge"]
    _score_and_judge(cache, {"value": np.float64(6.0), "step": 1}, verdict)
    cache.record("r1")
    records = _records(project)
    assert sorted(records) == ["judge", "score"]
    assert records["score"]["metrics"] == {"half": {"value": 6.0, "step": 1}}
    cache = _cache(project)
    assert cache.decide() == [] and cache.skipped["judge"].from_run == "r1"
    index = project.parent / INDEX_FILE
    data = json.loads(index.read_text())
    for record in data["records"].values():
        if record["node"] == "score":
            record["metrics"]["half"]["value"] = 0.5
    index.write_text(json.dumps(data))
    assert _cache(project).decide() == ["judge"]


def test_a_node_reading_a_metric_of_a_node_run_elsewhere_is_not_recorded(
        project: Path) -> None:
    """score, judge and tally ran in worker processes (no hook here): score's metric is
    not known, so neither score nor judge, which reads it, is recorded; tally, after score
    in the pipeline's order, is."""
    project.write_text(SCORED.replace(
        "nodes:\n", "  total: {type: json.JSONDataset, filepath: data/total.json}\nnodes:\n")
        + "  - {name: tally, func: keys_nodes.tally, inputs: raw, outputs: total}\n")
    cache = _cache(project)
    assert cache.decide() == ["score", "tally", "judge"]
    score, tally, judge = cache.pipeline.nodes
    cache.saved_elsewhere(score)
    (project.parent / "data" / "verdict.json").write_text("true")
    cache.saved_elsewhere(judge)
    (project.parent / "data" / "total.json").write_text("6")
    cache.saved_elsewhere(tally)
    cache.record(None)
    assert sorted(_records(project)) == ["tally"]


def test_a_node_that_reruns_for_a_lost_value_is_recorded_from_this_run_only(
        project: Path) -> None:
    """score's kept value is lost: a run with another `limit` reruns it with judge. Both
    ran in worker processes (no hook here), so neither is recorded again: not score from
    its old record's metric, nor judge under the old record's key of score."""
    project.write_text(KEPT)
    verdict = project.parent / "data" / "verdict.json"
    cache = _cache(project)
    assert cache.decide() == ["score", "judge"]
    score, judge = cache.pipeline.nodes
    cache.after_node_run(score, None, {}, {"half": 2.0, "kept": [1, 2, 3]}, False)
    cache.after_dataset_saved("half", 2.0, score)
    cache.after_dataset_saved("kept", [1, 2, 3], score)
    verdict.write_text("true")
    cache.after_dataset_saved("verdict", True, judge)
    cache.after_node_run(judge, None, {}, {"verdict": True}, False)
    cache.record("r1")
    assert sorted(_records(project)) == ["judge", "score"]
    for kept in (project.parent / ".kmlc" / "objects").iterdir():
        kept.unlink()
    cache = _cache(project, "limit=5")
    assert cache.decide() == ["score", "judge"]
    cache.saved_elsewhere(score)
    verdict.write_text("false")
    cache.saved_elsewhere(judge)
    cache.record("r2")
    records = json.loads((project.parent / INDEX_FILE).read_text())["records"]
    assert sorted((r["node"], r["run_id"]) for r in records.values()) == [
        ("judge", "r1"), ("score", "r1")]


def test_a_remote_versioned_input_is_never_taken_as_unchanged(project: Path) -> None:
    """raw lives in ``memory://`` (versioned): its bytes cannot be hashed here, its load
    version says nothing of another writer's copy: double and all after it always run."""
    from kedro.io import Version
    from kedro_datasets.pandas import CSVDataset

    where = f"memory://{project.parent.parent.name}/raw.csv"
    CSVDataset(filepath=where, version=Version(None, None)).save(
        pd.DataFrame({"x": [1, 2, 3]}))
    project.write_text(CHAIN.replace("filepath: data/raw.csv}",
                                     f"filepath: '{where}', versioned: true}}"))
    assert _run(project) == ALL
    assert _run(project) == ALL
    assert sorted(_records(project)) == ["add", "shift"]  # double has no key
