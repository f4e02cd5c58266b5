"""The run cache in tracked runs, in process (a real sqlite store beside the project): a
versioned file that is also logged (``track:``) and the bound model of a training run.

Each test makes a tracking store, so each takes seconds, not a fraction of one; the
runs without tracking are in tests/cache/test_cache_skip.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cached_runs import index_records, write_project

from kmlc import RunOptions, load_project, run_pipeline

NODES = '''\
def double(raw):
    return [v * 2 for v in raw["x"]]


def add(doubled):
    return sum(doubled)
'''

TRACKED = """\
version: 1
name: tracked
datasets:
  raw: {type: pandas.CSVDataset, filepath: data/raw.csv}
  doubled:
    type: pickle.PickleDataset
    filepath: data/doubled.pkl
    versioned: true
    track: {artifact_path: kept}
  total: {type: json.JSONDataset, filepath: data/total.json}
nodes:
  - {name: double, func: tracked_nodes.double, inputs: raw, outputs: doubled}
  - {name: add, func: tracked_nodes.add, inputs: doubled, outputs: total}
"""


def test_a_versioned_tracked_output_is_known_by_its_version(tmp_path: Path) -> None:
    """`doubled` is versioned and logged (the catalog wraps it): the record holds the
    version double saved, the next run finds it on disk, skips both nodes and logs the
    skipped node's file again."""
    from mlflow.tracking import MlflowClient

    path = write_project(tmp_path / "p", "tracked_nodes", NODES, TRACKED)
    root = path.parent
    options = RunOptions(cache=True, progress=False)
    first = run_pipeline(load_project(path), options=options)
    assert first.status == "FINISHED" and first.skipped == ()
    records = index_records(path)
    (version,) = [p.name for p in (root / "data" / "doubled.pkl").iterdir()]
    assert records["double"]["outputs"] == {"doubled": f"version:{version}"}
    second = run_pipeline(load_project(path), options=options)
    assert second.status == "FINISHED" and second.skipped == ("double", "add")
    client = MlflowClient(second.tracking_uri)
    assert [a.path for a in client.list_artifacts(second.run_id, "kept")] == [
        "kept/doubled.pkl"]


EXTRACT = ("  - {name: extract, func: mini_nodes.extract, inputs: source, outputs: instances, "
           "tags: [training]}\n")


def test_a_cached_training_run_builds_its_model_whether_nodes_run_or_are_skipped(
        mini: Callable[..., Path]) -> None:
    """The model job waits for the model's artifacts: the first run saves them as its
    nodes run (`instances`, the model's input, is written by `extract`: the job finds it
    there, read by the run); the second skips `extract` and `clean`, whose outputs the job
    is told are there."""
    from mini_project import MINI_NODES, MINI_YAML

    path = mini(MINI_YAML.replace("datasets:\n", "datasets:\n  source: {type: "
                                  "pandas.CSVDataset, filepath: data/01_raw/source.csv}\n")
                .replace("nodes:\n", "nodes:\n" + EXTRACT),
                MINI_NODES + "\n\ndef extract(source):\n    return source\n")
    raw = path.parent / "data" / "01_raw"
    (raw / "instances.csv").rename(raw / "source.csv")
    options = RunOptions(cache=True, progress=False)
    first = run_pipeline(load_project(path), "training", options)
    assert first.status == "FINISHED" and first.skipped == ()
    assert first.model_uri is not None and first.notes == ()
    second = run_pipeline(load_project(path), "training", options)
    assert second.status == "FINISHED" and second.skipped == ("extract", "clean")
    assert second.model_uri not in (None, first.model_uri) and second.notes == ()
