"""Which nodes a cached run skips (``kmlc.cache.skip``), on real Kedro runs in process.

Tracking is disabled, so each run is a fraction of a second: the node code appends its
name to ``ran.txt``; what the run skipped and what the index holds are read back. The
tracked side (metrics restored into the new run, tags, the artifact) is in
tests/run/test_cache.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cached_runs import index_records as _records
from cached_runs import run_cache as _cache
from cached_runs import run_cached as _run
from cached_runs import write_project

from kmlc import load_project
from kmlc.cache import INDEX_FILE, cache_state
from kmlc.compiler.project import compile_project
from kmlc.errors import RunError

NODES = '''\
from pathlib import Path


def _ran(name):
    with open(Path(__file__).parent / "ran.txt", "a") as handle:
        handle.write(name + "\\n")


def double(raw, scale):
    _ran("double")
    return [v * scale for v in raw["x"]]


def shift(doubled):
    _ran("shift")
    return [v + 0.5 for v in doubled]


def add(shifted, offset):
    _ran("add")
    return sum(shifted) + offset


def note(total):
    _ran("note")
'''

# double -> doubled (pickle) -> shift -> shifted (memory) -> add -> total (json)
CHAIN = """\
version: 1
name: chain
parameters: {scale: 2, offset: 1}
datasets:
  raw: {type: pandas.CSVDataset, filepath: data/raw.csv}
  doubled: {type: pickle.PickleDataset, filepath: data/doubled.pkl}
  total: {type: json.JSONDataset, filepath: data/total.json}
nodes:
  - {name: double, func: cache_skip_nodes.double, inputs: [raw, params:scale], outputs: doubled}
  - {name: shift, func: cache_skip_nodes.shift, inputs: doubled, outputs: shifted}
  - {name: add, func: cache_skip_nodes.add, inputs: [shifted, params:offset], outputs: total}
tracking: {disable_for: [__default__]}
"""
ALL = ["double", "shift", "add"]


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    return write_project(tmp_path / "p", "cache_skip_nodes", NODES, CHAIN)


def test_an_unchanged_rerun_skips_every_node_and_hands_nothing_on(chain: Path) -> None:
    ran, result = _run(chain)
    assert ran == ALL and result.skipped == ()
    assert result.cache_line == "cache: no node skipped (3 ran)"
    records = _records(chain)
    assert sorted(records) == sorted(ALL)
    assert {r["run_id"] for r in records.values()} == {None}
    assert records["add"]["outputs"] == {"total": records["add"]["outputs"]["total"]}
    assert records["add"]["outputs"]["total"].startswith("sha256:")
    assert records["double"]["metrics"] == {} and records["double"]["memory"] == {}
    assert set(records["shift"]["memory"]) == {"shifted"}  # add reads it: kept
    assert isinstance(records["add"]["time"], int)
    ran, result = _run(chain)
    assert ran == [] and result.skipped == tuple(ALL)
    assert result.cache_line == "cache: skipped 3 of 3 nodes"
    assert json.loads((chain.parent / "data" / "total.json").read_text()) == 14.5


def test_a_parameter_reruns_its_node_and_the_memory_value_is_handed_on(chain: Path) -> None:
    _run(chain)
    ran, result = _run(chain, "offset=2")
    assert ran == ["add"]  # shift is skipped: its kept value is handed to add
    assert result.skipped == ("double", "shift")
    assert json.loads((chain.parent / "data" / "total.json").read_text()) == 15.5
    ran, _ = _run(chain, "scale=3")  # double reruns, and all after it
    assert ran == ALL
    assert json.loads((chain.parent / "data" / "total.json").read_text()) == 20.5
    assert _run(chain, "offset=2")[0] == ALL  # scale is 2 again: another key for double
    assert _run(chain, "offset=2")[0] == []


def test_changed_input_bytes_and_a_removed_output_rerun_their_nodes(chain: Path) -> None:
    _run(chain)
    (chain.parent / "data" / "total.json").unlink()
    assert _run(chain)[0] == ["add"]  # shift's kept value hands shifted on
    (chain.parent / "data" / "doubled.pkl").write_bytes(b"not what double wrote")
    assert _run(chain)[0] == ALL  # a node whose producer runs, runs
    (chain.parent / "data" / "raw.csv").write_text("x\n1\n2\n4\n")
    assert _run(chain)[0] == ALL


def test_a_kept_value_lost_makes_its_producer_run_with_a_warning(chain: Path,
                                                                 capsys: Any) -> None:
    _run(chain)
    ref = _records(chain)["shift"]["memory"]["shifted"]
    kept = chain.parent / ".kmlc" / "objects" / (ref.split(":")[1] + ".pkl")
    kept.unlink()
    cache = _cache(chain, "offset=2")
    assert cache_state(cache.spec, cache.pipeline) == {
        "double": "skip, from run -", "shift": "runs", "add": "runs"}
    assert cache.decide() == ["shift", "add"]
    (warning,) = cache.new_warnings()
    assert warning.startswith("the cache record of node 'shift' (run -) cannot hand on "
                              f"'shifted': its kept value {kept.name} cannot be read")
    assert cache.new_warnings() == []
    ran, _ = _run(chain, "offset=2")
    assert ran == ["shift", "add"]
    assert "cannot hand on 'shifted'" in capsys.readouterr().err
    assert _run(chain, "offset=3")[0] == ["add"]  # kept again


def test_forced_nodes_run_with_everything_after_them(chain: Path) -> None:
    _run(chain)
    ran, result = _run(chain, force=("shift",))
    assert ran == ["shift", "add"] and result.skipped == ("double",)
    assert result.cache_line == "cache: skipped 1 of 3 nodes"
    with pytest.raises(RunError) as caught:
        _cache(chain, force=("shfit",))
    assert caught.value.code == "KMLC603"
    assert caught.value.message == "--force-nodes: node 'shfit' is not in pipeline '__default__'"
    assert caught.value.hint is not None and "shift" in caught.value.hint


def test_plan_shows_nothing_without_an_index_and_each_node_with_one(chain: Path) -> None:
    cache = _cache(chain)
    assert cache_state(cache.spec, cache.pipeline) == {}
    _run(chain)
    assert not (chain.parent / ".kmlc" / "cache.json.tmp").exists()
    spec = load_project(chain, params=["offset=5"])
    state = cache_state(spec, compile_project(spec).pipeline("__default__"))
    assert state == {"double": "skip, from run -", "shift": "skip, from run -",
                     "add": "runs"}


def test_a_node_without_outputs_or_with_a_remote_output_always_runs(chain: Path) -> None:
    text = CHAIN.replace("tracking:", "  - {name: note, func: cache_skip_nodes.note, "
                                      "inputs: total, outputs: null}\ntracking:")
    chain.write_text(text)
    _run(chain)
    assert _run(chain)[0] == ["note"]
    assert "note" not in _records(chain)
    chain.write_text(CHAIN.replace("filepath: data/total.json",
                                   "filepath: memory://total.json"))
    assert _run(chain)[0] == ["add"]
    assert _run(chain)[0] == ["add"]  # its output cannot be hashed here: never skipped


def test_versioned_outputs_are_known_by_their_version(chain: Path) -> None:
    chain.write_text(CHAIN.replace("filepath: data/doubled.pkl}",
                                   "filepath: data/doubled.pkl, versioned: true}"))
    _run(chain)
    version = _records(chain)["double"]["outputs"]["doubled"]
    assert version.startswith("version:")
    assert _run(chain)[0] == []
    assert _run(chain, "scale=3")[0] == ALL
    assert _records(chain)["double"]["outputs"]["doubled"] != version
    # a newer version saved by no cached run: double is not skipped, its output changed
    newer = chain.parent / "data" / "doubled.pkl" / "9999-12-31T23.59.59.999Z"
    newer.mkdir()
    (newer / "doubled.pkl").write_bytes(pickle.dumps([6, 12, 18]))
    assert _run(chain, "scale=3")[0] == ALL


def test_an_index_that_cannot_be_written_is_a_note_not_a_failure(chain: Path) -> None:
    (chain.parent / ".kmlc").mkdir()
    (chain.parent / ".kmlc" / "cache.json").mkdir()  # a folder: unreadable, unwritable
    (chain.parent / ".kmlc" / "cache.json" / "x").write_text("x")
    ran, result = _run(chain)
    assert ran == ALL and result.status == "FINISHED"
    (note,) = result.notes
    assert note.startswith("the cache index could not be written: ")


def test_the_summary_tags_and_line_name_the_runs_skipped_nodes_came_from(
        chain: Path) -> None:
    _run(chain)
    index = chain.parent / INDEX_FILE
    data = json.loads(index.read_text())
    for record in data["records"].values():
        record["run_id"] = {"double": "r2", "shift": "r1", "add": None}[record["node"]]
    index.write_text(json.dumps(data))
    cache = _cache(chain, "offset=2")
    cache.decide()
    assert cache.line() == "cache: skipped 2 of 3 nodes (cached from runs r1, r2)"
    assert cache.tags() == {"kmlc.cache": "on", "kmlc.cache.skipped": "2",
                            "kmlc.cache.skipped_nodes": "double,shift",
                            "kmlc.cache.from_runs": "r1,r2"}
    summary = cache.summary()
    assert summary["nodes"] == {"double": {"key": cache.skipped["double"].key, "from_run": "r2"},
                                "shift": {"key": cache.skipped["shift"].key, "from_run": "r1"}}
    assert summary["ran"] == ["add"] and summary["cache_version"] == 1
    assert summary["handed_on"] == ["shifted"]  # no catalog: checked, not read
    assert cache.restored == {"shifted": None}
    cache = _cache(chain, "scale=2", force=("shift",))
    cache.decide()
    assert cache.line() == "cache: skipped 1 of 3 nodes (cached from run r2)"
    cache = _cache(chain)
    cache.decide()
    assert cache.line() == "cache: skipped 3 of 3 nodes (cached from runs r1, r2)"
    assert cache.tags()["kmlc.cache.from_runs"] == "r1,r2"


def test_the_stat_cache_spares_reading_unchanged_inputs_again(chain: Path) -> None:
    raw = chain.parent / "data" / "raw.csv"
    old = 1_600_000_000 * 10**9
    os.utime(raw, ns=(old, old))
    _run(chain)
    files = json.loads((chain.parent / INDEX_FILE).read_text())["files"]
    assert files[str(raw)][:2] == [raw.stat().st_size, old]
    raw.write_text("x\n1\n2\n4\n")  # same size, same time: trusted, not read
    os.utime(raw, ns=(old, old))
    assert _run(chain)[0] == []


METRIC_NODES = NODES + '''

def score(total):
    _ran("score")
    import numpy as np
    return np.float64(total / 2), {"total": total}, np.array([1.0, 2.0])
'''


def test_a_tracked_rerun_gets_the_skipped_nodes_metrics_and_tracked_files(
        chain: Path) -> None:
    """Tracked (a real sqlite store beside the project): the skipped node's metrics (numpy
    values, kept as plain JSON) are saved into the new run, its tracked file logged again."""
    from mlflow.tracking import MlflowClient

    (chain.parent / "cache_skip_nodes.py").write_text(METRIC_NODES)
    chain.write_text(CHAIN.replace("tracking: {disable_for: [__default__]}\n", "").replace(
        "nodes:\n",
        "  half: {type: mlflow.metric}\n  history: {type: mlflow.metric_history}\n"
        "  report: {type: json.JSONDataset, filepath: data/report.json, "
        "track: {artifact_path: reports}}\nnodes:\n") + (
        "  - {name: score, func: cache_skip_nodes.score, inputs: total, "
        "outputs: [half, report, history]}\n"))
    ran, first = _run(chain)
    assert ran == [*ALL, "score"]
    assert _records(chain)["score"]["metrics"] == {"half": 7.25, "history": [1.0, 2.0]}
    ran, second = _run(chain)
    assert ran == [] and second.run_id != first.run_id
    client = MlflowClient(second.tracking_uri)
    run = client.get_run(second.run_id)
    assert run.data.metrics == {"half": 7.25, "history": 2.0}
    assert [m.value for m in client.get_metric_history(second.run_id, "history")] == [1.0, 2.0]
    assert [a.path for a in client.list_artifacts(second.run_id, "reports")] == [
        "reports/report.json"]
    assert run.data.tags["kmlc.cache.skipped"] == "4"
    assert run.data.tags["kmlc.cache.from_runs"] == first.run_id
    assert run.data.tags["kmlc.cache"] == "on"
    assert run.data.tags["kmlc.cache.skipped_nodes"] == "double,shift,add,score"
    assert [a.path for a in client.list_artifacts(second.run_id, "kmlc")] == [
        "kmlc/cache.json"]
    summary = json.loads(Path(client.download_artifacts(
        second.run_id, "kmlc/cache.json", str(chain.parent))).read_text())
    assert summary == {"cache_version": 1, "ran": [], "handed_on": [],
                       "nodes": {name: {"key": summary["nodes"][name]["key"],
                                        "from_run": first.run_id}
                                 for name in [*ALL, "score"]}}


def test_a_metric_that_is_not_json_is_never_recorded(chain: Path) -> None:
    (chain.parent / "cache_skip_nodes.py").write_text(NODES + '''

def score(total):
    _ran("score")
    return {"value": object()}
''')
    chain.write_text(CHAIN.replace("tracking: {disable_for: [__default__]}\n", "").replace(
        "nodes:\n", "  half: {type: mlflow.metric}\nnodes:\n") + (
        "  - {name: score, func: cache_skip_nodes.score, inputs: total, outputs: half}\n"))
    with pytest.raises(Exception):  # noqa: B017 - MLflow refuses the value; the run fails
        _run(chain)
    assert "score" not in _records(chain)


def test_a_node_run_in_another_process_is_recorded_from_its_files(chain: Path) -> None:
    """What the parallel runner does when a node's result is back (no hook ran here):
    its files are read as they are now, its memory values are not kept."""
    _run(chain)
    index = chain.parent / INDEX_FILE
    first = set(json.loads(index.read_text())["records"])
    cache = _cache(chain, "scale=3")
    assert cache.decide() == ALL
    double, shift, add = cache.pipeline.nodes
    (chain.parent / "data" / "doubled.pkl").write_bytes(b"as the worker wrote it")
    cache.saved_elsewhere(double)
    cache.saved_elsewhere(shift)
    total = chain.parent / "data" / "total.json"
    total.write_text("20.5")
    cache.after_dataset_saved("total", 20.5, add)  # add ran here: seen by the hook
    total.write_text("99.5")  # another run rewrote it since
    cache.saved_elsewhere(add)  # and not taken again
    cache.record(None)
    records = json.loads(index.read_text())["records"]
    newest = {r["node"]: r for key, r in records.items() if key not in first}
    assert sorted(newest) == ["add", "double", "shift"]
    assert newest["shift"]["memory"] == {}  # not kept: add reruns shift to get it
    digest = cache.index.content_hash(chain.parent / "data" / "doubled.pkl")
    assert newest["double"]["outputs"] == {"doubled": digest}
    assert newest["add"]["outputs"] == {"total": "sha256:" + hashlib.sha256(b"20.5").hexdigest()}


def test_only_memory_values_another_node_reads_are_kept(chain: Path) -> None:
    """shift's `spare` is read by nobody and `score` is a metric: neither is pickled into
    the objects folder, which holds exactly the values the records name."""
    (chain.parent / "cache_skip_nodes.py").write_text(NODES.replace(
        "    return [v + 0.5 for v in doubled]",
        "    return {'spare': doubled}, [v + 0.5 for v in doubled]"))
    chain.write_text(CHAIN.replace("outputs: shifted}", "outputs: [spare, shifted]}"))
    _run(chain)
    records = _records(chain)
    assert set(records["shift"]["memory"]) == {"shifted"}
    objects = chain.parent / ".kmlc" / "objects"
    assert sorted(p.name for p in objects.iterdir()) == [
        records["shift"]["memory"]["shifted"].split(":")[1] + ".pkl"]
    assert _run(chain, "offset=2")[0] == ["add"]  # shifted handed on, after spare


def test_memory_values_over_the_limit_are_not_kept_and_the_line_says_why(chain: Path) -> None:
    limited = CHAIN + "cache: {memory_limit_mb: 0.00001}\n"
    chain.write_text(limited)
    ran, result = _run(chain)
    assert ran == ALL
    assert result.cache_line == (
        "cache: no node skipped (3 ran); memory outputs not kept (their consumers rerun "
        "with their producer): shifted (larger than the cache's limit of 10 B)")
    assert _records(chain)["shift"]["memory"] == {}
    assert not (chain.parent / ".kmlc" / "objects").exists() or not list(
        (chain.parent / ".kmlc" / "objects").iterdir())
    ran, result = _run(chain, "offset=2")
    assert ran == ["shift", "add"] and result.skipped == ("double",)
    assert result.cache_line.startswith("cache: skipped 1 of 3 nodes; memory outputs not kept")
    # doubled in memory too: both named, in order
    chain.write_text(limited.replace(
        "  doubled: {type: pickle.PickleDataset, filepath: data/doubled.pkl}\n", ""))
    ran, result = _run(chain)
    assert ran == ALL
    assert result.cache_line is not None and result.cache_line.endswith(
        ": doubled (larger than the cache's limit of 10 B); "
        "shifted (larger than the cache's limit of 10 B)")


def test_a_damaged_index_or_record_is_a_warning_and_its_nodes_run(chain: Path) -> None:
    index = chain.parent / INDEX_FILE
    index.parent.mkdir()
    index.write_text("{not json")
    cache = _cache(chain)
    (warning,) = cache.new_warnings()
    assert warning.startswith(f"the cache index {index} cannot be read (")
    assert cache.decide() == ALL
    assert _run(chain)[0] == ALL
    data = json.loads(index.read_text())
    (key,) = [k for k, r in data["records"].items() if r["node"] == "add"]
    data["records"][key]["outputs"] = {"total": 3}
    index.write_text(json.dumps(data))
    cache = _cache(chain)
    assert cache.decide() == ["add"]
    assert cache.new_warnings() == [
        f"the cache record of node 'add' in {index} is not valid (it has no content hash "
        "for output 'total'): it is ignored, the node runs"]
    assert _run(chain)[0] == ["add"]
    assert _run(chain)[0] == []  # recorded again, valid


def test_the_cache_records_when_pluggy_hands_hooks_only_their_required_arguments(
        chain: Path) -> None:
    """Kedro takes any pluggy >= 1.0, and before 1.7 pluggy calls a hook implementation
    with only the arguments it declares without a default: the cache's hooks are called
    here as Kedro's runner and that pluggy call them (with pluggy 1.6 the node was
    missing and ``--cache`` recorded nothing)."""
    from kedro.framework.hooks.manager import _create_hook_manager

    _run(chain)
    cache = _cache(chain, "scale=3")
    assert cache.decide() == ALL
    manager = _create_hook_manager()
    manager.register(cache)
    impls = {impl.function.__name__: impl for caller in manager.get_hookcallers(cache) or ()
             for impl in caller.get_hookimpls() if impl.plugin is cache}
    assert sorted(impls) == ["after_dataset_saved", "after_node_run"]

    def call(hook: str, **passed: Any) -> None:  # pluggy < 1.7: no argument with a default
        impls[hook].function(*(passed[name] for name in impls[hook].argnames))

    double = cache.pipeline.nodes[0]
    (chain.parent / "data" / "doubled.pkl").write_bytes(b"as double wrote it")
    call("after_dataset_saved", dataset_name="doubled", data=[6, 12, 18], node=double)
    call("after_node_run", node=double, catalog=None, inputs={}, outputs={"doubled": []},
         is_async=False, run_id="r")
    cache.record(None)
    records = [r for r in json.loads((chain.parent / INDEX_FILE).read_text())[
        "records"].values() if r["node"] == "double"]
    digest = cache.index.content_hash(chain.parent / "data" / "doubled.pkl")
    assert len(records) == 2 and {"doubled": digest} in [r["outputs"] for r in records]


SCORED = """\
version: 1
name: scored
datasets:
  raw: {type: pandas.CSVDataset, filepath: data/raw.csv}
  half: {type: mlflow.metric}
  history: {type: mlflow.metric_history}
nodes:
  - {name: score, func: cache_skip_nodes.score, inputs: raw, outputs: [half, history]}
"""


@pytest.mark.parametrize(("outputs", "recorded"), [
    ({"half": np.float64(7.25), "history": np.array([1.0, 2.0])},
     {"half": 7.25, "history": [1.0, 2.0]}),
    ({"half": {"value": np.float32(0.5), "step": np.int64(3)}, "history": [np.int32(1)]},
     {"half": {"value": 0.5, "step": 3}, "history": [1]}),
    ({"half": object(), "history": [1.0]}, None),  # not JSON: never recorded
])
def test_a_nodes_metrics_are_recorded_as_plain_json_and_handed_to_the_next_run(
        chain: Path, outputs: dict[str, Any], recorded: dict[str, Any] | None) -> None:
    """The values Kedro hands ``after_node_run`` (numpy numbers and arrays, as a node
    returns them) are kept as plain JSON; the next run skips the node with those values."""
    chain.write_text(SCORED)
    (chain.parent / "cache_skip_nodes.py").write_text(METRIC_NODES)
    cache = _cache(chain)
    assert cache.decide() == ["score"]
    (node,) = cache.pipeline.nodes
    cache.after_node_run(node, None, {}, outputs, False)
    for name in ("half", "history"):
        cache.after_dataset_saved(name, outputs[name], node)
    cache.record("r1")
    if recorded is None:
        assert json.loads((chain.parent / INDEX_FILE).read_text())["records"] == {}
        return
    assert _records(chain)["score"]["metrics"] == recorded
    cache = _cache(chain)
    assert cache.decide() == [] and cache.metrics == {"score": recorded}
    assert cache.skipped["score"].from_run == "r1"


def test_a_declared_memory_dataset_is_handed_on_through_the_catalog(chain: Path) -> None:
    chain.write_text(CHAIN.replace(
        "  total:", "  shifted: {type: MemoryDataset, copy_mode: assign}\n  total:"))
    _run(chain)
    ran, result = _run(chain, "offset=2")
    assert ran == ["add"] and result.skipped == ("double", "shift")
    assert json.loads((chain.parent / "data" / "total.json").read_text()) == 15.5


def test_a_nodes_key_holds_its_input_as_its_producer_saved_it(chain: Path) -> None:
    """Another run rewrote doubled.pkl after double saved it here, before this run
    recorded: shift is recorded with the bytes double saved (those double's record
    names), so once they are back, both are skipped."""
    _run(chain)
    cache = _cache(chain, "scale=3")
    assert cache.decide() == ALL
    double, shift, _ = cache.pipeline.nodes
    doubled = chain.parent / "data" / "doubled.pkl"
    doubled.write_bytes(pickle.dumps([3, 6, 9]))
    cache.after_dataset_saved("doubled", [3, 6, 9], double)
    cache.after_dataset_saved("shifted", [3.5, 6.5, 9.5], shift)
    doubled.write_bytes(pickle.dumps([2, 4, 6, 8]))  # another run's bytes, another size
    cache.record(None)
    doubled.write_bytes(pickle.dumps([3, 6, 9]))
    assert _cache(chain, "scale=3").decide() == ["add"]  # shifted handed on


def test_records_without_kept_memory_values_are_used(chain: Path) -> None:
    """Records that name no kept value (no `memory`, as an older index has them) still
    skip their nodes, each under the key of its record; what needs a value that was not
    kept reruns its producer."""
    _run(chain)
    index = chain.parent / INDEX_FILE
    data = json.loads(index.read_text())
    for record in data["records"].values():
        del record["memory"]
    index.write_text(json.dumps(data))
    cache = _cache(chain)
    assert cache.decide() == []
    assert {s.key for s in cache.skipped.values()} == set(data["records"])
    assert _run(chain, "offset=2")[0] == ["shift", "add"]


def test_a_node_that_runs_first_does_not_stop_a_later_one_handing_on(chain: Path) -> None:
    """`check` has no outputs (it always runs) and comes first in the pipeline's order:
    shift, skipped after it, still hands `shifted` on to add."""
    chain.write_text(CHAIN.replace("tracking:", "  - {name: check, func: cache_skip_nodes.note, "
                                               "inputs: raw, outputs: null}\ntracking:"))
    assert _run(chain)[0] == ["note", *ALL]
    ran, result = _run(chain, "offset=2")
    assert sorted(ran) == ["add", "note"] and result.skipped == ("double", "shift")
    assert json.loads((chain.parent / "data" / "total.json").read_text()) == 15.5


def test_a_producer_rerun_for_a_lost_value_gets_its_own_input_handed_on(chain: Path) -> None:
    """doubled and shifted both in memory, shifted's kept value lost: add reruns (offset),
    so shift must rerun to remake shifted; then double, checked before shift ran, must
    hand doubled on to it (the decision goes over the nodes again until nothing changes)."""
    chain.write_text(CHAIN.replace(
        "  doubled: {type: pickle.PickleDataset, filepath: data/doubled.pkl}\n", ""))
    _run(chain)
    ref = _records(chain)["shift"]["memory"]["shifted"]
    (chain.parent / ".kmlc" / "objects" / (ref.split(":")[1] + ".pkl")).unlink()
    ran, result = _run(chain, "offset=2")
    assert ran == ["shift", "add"] and result.skipped == ("double",)
    assert json.loads((chain.parent / "data" / "total.json").read_text()) == 15.5
