"""Content-hash caching (`kmlc run --cache`): real runs on a real sqlite store, each
checked by which nodes really ran (the node code appends its name to a side file) and
by what the run recorded (tags, the `kmlc/cache.json` artifact, metrics, artifacts)."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from kmlc.cli import main

# double -> doubled (pickle) -> shift -> shifted (memory) -> add -> total (pickle) -> report
CHAIN_YAML = """\
version: 1
name: chain
parameters: {scale: 2, offset: 1, digits: 3, fail: false}
datasets:
  raw: {type: pandas.CSVDataset, filepath: data/raw.csv}
  doubled: {type: pickle.PickleDataset, filepath: data/doubled.pkl}
  total: {type: pickle.PickleDataset, filepath: data/total.pkl}
  score: {type: mlflow.metric}
  summary: {type: json.JSONDataset, filepath: data/summary.json, track: {artifact_path: reports}}
nodes:
  - {name: double, func: chain_nodes.double, inputs: [raw, params:scale], outputs: doubled}
  - {name: shift, func: chain_nodes.shift, inputs: doubled, outputs: shifted}
  - {name: add, func: chain_nodes.add, inputs: [shifted, params:offset, params:fail],
     outputs: total}
  - {name: report, func: chain_report.report, inputs: [total, params:digits],
     outputs: [score, summary]}
"""

RAN = '''\
from pathlib import Path


def ran(name):
    with open(Path(__file__).parent / "ran.txt", "a") as handle:
        handle.write(name + "\\n")
'''

CHAIN_NODES = '''\
from chain_ran import ran


def double(raw, scale):
    ran("double")
    return [v * scale for v in raw["x"]]


def shift(doubled):
    ran("shift")
    return [v + 0.5 for v in doubled]


def add(shifted, offset, fail):
    ran("add")
    if fail:
        raise ValueError("add failed on purpose")
    return sum(shifted) + offset
'''

CHAIN_REPORT = '''\
from chain_ran import ran


def report(total, digits):
    ran("report")
    return round(total / 7, digits), {"total": round(total, digits)}
'''

ALL = ["double", "shift", "add", "report"]


def _chain(root: Path, text: str = CHAIN_YAML) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "raw.csv").write_text("x\n1\n2\n3\n")
    (root / "chain_ran.py").write_text(RAN)
    (root / "chain_nodes.py").write_text(CHAIN_NODES)
    (root / "chain_report.py").write_text(CHAIN_REPORT)
    path = root / "mlproject.yml"
    path.write_text(text)
    for module in ("chain_ran", "chain_nodes", "chain_report"):
        sys.modules.pop(module, None)
    return path


def _run(path: Path, *args: str, code: int = 0) -> tuple[list[str], str, str]:
    """``kmlc run`` in process: (the nodes that ran, the run id, the output)."""
    ran = path.parent / "ran.txt"
    ran.unlink(missing_ok=True)
    result = CliRunner().invoke(main, ["run", "-f", str(path), *args])
    assert result.exit_code == code, result.output
    names = ran.read_text().split() if ran.exists() else []
    run_id = next((line.split()[1] for line in result.output.splitlines()
                   if line.startswith("run ")), "")
    return names, run_id, result.output


def _client(path: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")


def _cache_artifact(client: MlflowClient, run_id: str, tmp: Path) -> dict:
    local = client.download_artifacts(run_id, "kmlc/cache.json", str(tmp))
    return json.loads(Path(local).read_text())


@pytest.mark.slow
def test_nothing_changed_runs_no_node_and_the_run_stays_complete(tmp_path: Path) -> None:
    path = _chain(tmp_path / "p")
    ran, first, out = _run(path, "--cache")
    assert ran == ALL
    assert "cache: no node skipped (4 ran)" in out
    ran, second, out = _run(path, "--cache")
    assert ran == []
    assert f"cache: skipped 4 of 4 nodes (cached from run {first})" in out
    client = _client(path)
    a, b = client.get_run(first), client.get_run(second)
    assert b.info.status == "FINISHED"
    assert b.data.metrics == a.data.metrics == {"score": pytest.approx(round(14.5 / 7, 3))}
    assert b.data.params == a.data.params  # every parameter the pipeline reads is logged
    assert b.data.tags["kmlc.cache.skipped"] == "4"
    assert b.data.tags["kmlc.cache.skipped_nodes"] == "double,shift,add,report"
    assert b.data.tags["kmlc.cache.from_runs"] == first
    assert [x.path for x in client.list_artifacts(second, "reports")] == [
        "reports/summary.json"]  # the tracked file of the skipped node, logged again
    skipped = _cache_artifact(client, second, tmp_path / "dl")["nodes"]
    assert sorted(skipped) == sorted(ALL)
    assert {s["from_run"] for s in skipped.values()} == {first}
    assert json.loads((path.parent / "data" / "summary.json").read_text()) == {"total": 14.5}


@pytest.mark.slow
def test_a_parameter_read_by_the_last_node_reruns_only_that_node(tmp_path: Path) -> None:
    path = _chain(tmp_path / "p")
    _run(path, "--cache")
    ran, run_id, out = _run(path, "--cache", "--params", "digits=1")
    assert ran == ["report"]
    assert "cache: skipped 3 of 4 nodes" in out
    assert _client(path).get_run(run_id).data.metrics["score"] == pytest.approx(2.1)
    ran, _, _ = _run(path, "--cache")  # back to 3 digits: that record is still there
    assert ran == []


def test_plan_shows_what_a_cached_run_would_skip(tmp_path: Path) -> None:
    path = _chain(tmp_path / "p")
    plan = CliRunner().invoke(main, ["plan", "-f", str(path), "--format", "text"])
    assert plan.exit_code == 0, plan.output
    assert "(cache:" not in plan.output  # no index yet: nothing to say
    _, first, _ = _run(path, "--cache")
    plan = CliRunner().invoke(main, ["plan", "-f", str(path), "--format", "text",
                                     "--params", "digits=1"])
    assert plan.exit_code == 0, plan.output
    states = {line.split(". ")[1].split()[0]: line.split("(cache: ")[1].rstrip(")")
              for line in plan.output.splitlines() if "(cache: " in line}
    assert states == {"double": f"skip, from run {first}", "shift": f"skip, from run {first}",
                      "add": f"skip, from run {first}", "report": "runs"}


def test_changed_input_bytes_rerun_their_consumers_and_everything_downstream(
        tmp_path: Path) -> None:
    path = _chain(tmp_path / "p")
    _run(path, "--cache")
    (path.parent / "data" / "raw.csv").write_text("x\n1\n2\n4\n")
    ran, _, _ = _run(path, "--cache")
    assert ran == ALL
    assert json.loads((path.parent / "data" / "summary.json").read_text()) == {"total": 16.5}


@pytest.mark.slow
def test_an_edited_module_reruns_its_nodes(tmp_path: Path) -> None:
    path = _chain(tmp_path / "p")
    _run(path, "--cache")
    report = path.parent / "chain_report.py"
    report.write_text(report.read_text().replace("total / 7", "total / 5"))
    sys.modules.pop("chain_report", None)
    ran, run_id, _ = _run(path, "--cache")
    assert ran == ["report"]
    assert _client(path).get_run(run_id).data.metrics["score"] == pytest.approx(2.9)


def test_a_deleted_or_modified_output_reruns_its_producer(tmp_path: Path) -> None:
    path = _chain(tmp_path / "p")
    _run(path, "--cache")
    (path.parent / "data" / "total.pkl").write_bytes(b"not the pickle add wrote")
    ran, _, _ = _run(path, "--cache")
    # add makes total again from the value shift kept in the cache; report reads total
    assert ran == ["add", "report"]
    (path.parent / "data" / "doubled.pkl").unlink()
    ran, _, _ = _run(path, "--cache")
    assert ran == ALL


@pytest.mark.slow
def test_no_cache_force_nodes_and_cache_true_in_the_file(tmp_path: Path) -> None:
    path = _chain(tmp_path / "p", CHAIN_YAML + "cache: true\n")
    assert _run(path)[0] == ALL
    assert _run(path)[0] == []  # `cache: true` in the file
    ran, run_id, out = _run(path, "--no-cache", "--force-nodes", "add")
    assert ran == ALL
    assert not [line for line in out.splitlines() if line.startswith("cache:")]
    assert "warning: --force-nodes has no effect without the cache" in out
    assert "kmlc.cache.skipped" not in _client(path).get_run(run_id).data.tags
    # forcing add runs report too (it reads total); add gets the value shift kept
    ran, run_id, _ = _run(path, "--force-nodes", "add")
    assert ran == ["add", "report"]
    assert _client(path).get_run(run_id).data.tags["kmlc.cache.skipped_nodes"] == (
        "double,shift")
    assert _run(path, "--force-nodes", "double,report")[0] == ALL
    _, _, out = _run(path, "--force-nodes", "ad", code=1)
    assert "--force-nodes: node 'ad' is not in pipeline '__default__'" in out
    assert "did you mean 'add'?" in out.lower()


def test_a_failing_node_records_what_finished_before_it(tmp_path: Path) -> None:
    path = _chain(tmp_path / "p")
    ran, _, out = _run(path, "--cache", "--params", "fail=true", code=1)
    assert ran == ["double", "shift", "add"]
    ran, _, _ = _run(path, "--cache")
    # double and shift are reused (add gets shifted from the value shift kept in the cache)
    assert ran == ["add", "report"]
    failed = re.search(r"run (\w+) marked FAILED", out)
    assert failed, out
    index = json.loads((path.parent / ".kmlc" / "cache.json").read_text())
    assert [r["run_id"] for r in index["records"].values() if r["node"] == "double"] == [
        failed.group(1)]  # the earlier run that produced it: the failed one


def test_a_failed_run_without_tracking_records_exactly_the_nodes_that_finished(
        tmp_path: Path) -> None:
    """Tracking disabled, ``add`` fails: the index holds double and shift (no run id),
    never add or report; the next run reuses them and records all four."""
    text = CHAIN_YAML.replace("  score: {type: mlflow.metric}\n", "").replace(
        "  summary: {type: json.JSONDataset, filepath: data/summary.json, track: "
        "{artifact_path: reports}}\n", "  summary: {type: json.JSONDataset, filepath: "
        "data/summary.json}\n  score: {type: json.JSONDataset, filepath: data/score.json}\n")
    path = _chain(tmp_path / "p", text + "tracking: {disable_for: [__default__]}\n")
    ran, _, _ = _run(path, "--cache", "--params", "fail=true", code=1)
    assert ran == ["double", "shift", "add"]
    index = path.parent / ".kmlc" / "cache.json"
    records = json.loads(index.read_text())["records"]
    assert sorted(r["node"] for r in records.values()) == ["double", "shift"]
    assert {r["run_id"] for r in records.values()} == {None}
    (shift,) = (r for r in records.values() if r["node"] == "shift")
    assert set(shift["memory"]) == {"shifted"}  # the value add reads, kept
    ran, _, out = _run(path, "--cache")
    assert ran == ["add", "report"]
    assert "skipped 2 of 4 nodes" in out
    records = json.loads(index.read_text())["records"]
    assert sorted(r["node"] for r in records.values()) == sorted(ALL)


def test_a_file_rewritten_within_its_timestamps_granularity_is_hashed_again(
        tmp_path: Path) -> None:
    """The stat cache trusts (size, mtime) only for a file last modified well before it
    was hashed: raw.csv, rewritten with the same size and the same modification time as
    when it was hashed (a file system with coarse timestamps), reruns its consumer."""
    path = _chain(tmp_path / "p")
    raw = path.parent / "data" / "raw.csv"
    stamp = time.time_ns() + 3600 * 10**9  # as recent as the hash, whenever that runs
    os.utime(raw, ns=(stamp, stamp))
    assert _run(path, "--cache")[0] == ALL
    stat_entries = json.loads((path.parent / ".kmlc" / "cache.json").read_text())["files"]
    assert str(raw) in stat_entries  # it was hashed, and its stat entry kept
    raw.write_text("x\n1\n2\n4\n")  # same size
    os.utime(raw, ns=(stamp, stamp))  # same modification time
    ran, _, _ = _run(path, "--cache")
    assert ran == ALL
    assert json.loads((path.parent / "data" / "summary.json").read_text()) == {"total": 16.5}
    # touched, not changed: hashed again (another mtime), same bytes, nothing reruns
    old = time.time_ns() - 3600 * 10**9
    os.utime(raw, ns=(old, old))
    assert _run(path, "--cache")[0] == []


def test_a_corrupt_index_is_a_warning_and_is_rebuilt(tmp_path: Path) -> None:
    path = _chain(tmp_path / "p")
    index = path.parent / ".kmlc" / "cache.json"
    index.parent.mkdir()
    index.write_text("{not json")
    ran, _, out = _run(path, "--cache")
    assert ran == ALL
    assert "warning: the cache index" in out and "cannot be read" in out
    assert "Traceback" not in out
    assert json.loads(index.read_text())["version"] == 1
    assert _run(path, "--cache")[0] == []


def _records(path: Path) -> tuple[Path, dict]:
    index = path.parent / ".kmlc" / "cache.json"
    return index, json.loads(index.read_text())


def _edit_record(path: Path, node: str, edit) -> None:
    index, data = _records(path)
    (key,) = [k for k, r in data["records"].items() if r["node"] == node]
    data["records"][key] = edit(data["records"][key])
    index.write_text(json.dumps(data))


@pytest.mark.parametrize(("node", "edit", "problem", "ran"), [
    ("report", lambda r: {**r, "metrics": {"score": "abc"}},
     "its value for metric 'score' is not valid", ["report"]),
    ("report", lambda r: {**r, "metrics": {}}, "it has no value for metric 'score'",
     ["report"]),
    ("add", lambda r: {**r, "outputs": ["total"]}, "its outputs is not a mapping",
     ["add", "report"]),
    ("add", lambda r: {**r, "outputs": {"total": 3}}, "it has no content hash for output 'total'",
     ["add", "report"]),
    ("double", lambda r: "{broken", "it is a str, not a mapping", ALL),
    ("shift", lambda r: {**r, "memory": {"shifted": "sha256:zz"}},
     "its reference for memory output 'shifted' is not a sha256 reference",
     ["shift", "add", "report"]),
    ("report", lambda r: {**r, "run_id": 7}, "its run_id is not a string", ["report"]),
])
def test_a_record_that_does_not_validate_is_ignored_with_a_warning(
        tmp_path: Path, node: str, edit, problem: str, ran: list[str]) -> None:
    path = _chain(tmp_path / "p")
    _, first, _ = _run(path, "--cache")
    _edit_record(path, node, edit)
    names, run_id, out = _run(path, "--cache")
    assert names == ran
    assert (f"warning: the cache record of node '{node}' in "
            f"{path.parent / '.kmlc' / 'cache.json'} is not valid ({problem}") in out
    assert "it is ignored, the node runs" in out and "Traceback" not in out
    assert _client(path).get_run(run_id).info.status == "FINISHED"
    assert _client(path).get_run(run_id).data.metrics == _client(path).get_run(
        first).data.metrics
    names, _, out = _run(path, "--cache")  # recorded again, valid
    assert names == [] and "warning" not in out


def test_a_kept_memory_value_that_is_damaged_makes_its_producer_run(tmp_path: Path) -> None:
    path = _chain(tmp_path / "p")
    _run(path, "--cache")
    _, data = _records(path)
    (ref,) = [r["memory"]["shifted"] for r in data["records"].values() if r["node"] == "shift"]
    kept = path.parent / ".kmlc" / "objects" / (ref.split(":")[1] + ".pkl")
    kept.write_bytes(kept.read_bytes()[:-3] + b"abc")  # the disk flipped a few bytes
    ran, _, out = _run(path, "--cache", "--params", "offset=2")  # add reads shifted
    assert ran == ["shift", "add", "report"]
    assert ("warning: the cache record of node 'shift' (run " in out
            and f"cannot hand on 'shifted': its kept value {kept.name} is corrupt" in out)
    ran, _, out = _run(path, "--cache", "--params", "offset=3")  # shift kept it again
    assert ran == ["add", "report"] and "warning" not in out


UNPICKLABLE = CHAIN_NODES.replace(
    "    return [v + 0.5 for v in doubled]",
    "    return {'values': [v + 0.5 for v in doubled], 'how': lambda v: v + 0.5}").replace(
    "    return sum(shifted) + offset", "    return sum(shifted['values']) + offset")


@pytest.mark.slow
def test_memory_values_not_kept_make_their_producer_run_and_the_line_says_why(
        tmp_path: Path) -> None:
    path = _chain(tmp_path / "p")
    (path.parent / "chain_nodes.py").write_text(UNPICKLABLE)
    _, _, out = _run(path, "--cache")
    line = next(x for x in out.splitlines() if x.startswith("cache:"))
    assert line.startswith("cache: no node skipped (4 ran); memory outputs not kept (their "
                           "consumers rerun with their producer): shifted (cannot be pickled")
    ran, _, out = _run(path, "--cache", "--params", "offset=2")  # add reads shifted
    assert ran == ["shift", "add", "report"] and "shifted (cannot be pickled" in out
    assert not list((path.parent / ".kmlc" / "objects").glob("*.tmp"))
    # over the limit of the file's `cache:` mapping: not kept either
    path = _chain(tmp_path / "q", CHAIN_YAML + "cache: {memory_limit_mb: 0.00001}\n")
    assert _run(path)[0] == ALL
    ran, _, out = _run(path, "--params", "offset=2")
    assert ran == ["shift", "add", "report"]
    assert "shifted (larger than the cache's limit of 10 B)" in out
    assert not list((path.parent / ".kmlc" / "objects").iterdir())
    path.write_text(CHAIN_YAML + "cache: {enabled: false}\n")
    assert _run(path)[0] == ALL and "cache:" not in _run(path)[2]


@pytest.mark.slow
def test_cache_prune_removes_only_kept_values_no_record_needs(tmp_path: Path) -> None:
    path = _chain(tmp_path / "p")
    _run(path, "--cache")
    _run(path, "--cache", "--params", "scale=3")  # a second record of shift, its own value
    objects = path.parent / ".kmlc" / "objects"
    kept = sorted(objects.glob("*.pkl"))
    assert len(kept) == 2
    stray = objects / ("0" * 64 + ".pkl")  # a value no record names (a pruned record's)
    stray.write_bytes(b"x")
    mine = objects / "notes.txt"  # not the cache's: never removed
    mine.write_text("mine")
    prune = CliRunner().invoke(main, ["cache", "prune", "--file", str(path)])
    assert prune.exit_code == 0, prune.output
    assert "dropped 0 records, removed 1 kept values" in prune.output
    assert sorted(objects.glob("*.pkl")) == kept and mine.exists()
    again = ("--cache", "--params", "scale=3", "--params", "offset=2")
    assert _run(path, *again)[0] == ["add", "report"]
    prune = CliRunner().invoke(main, ["cache", "prune", "-f", str(path), "--max-size", "0"])
    assert prune.exit_code == 0, prune.output
    assert "removed 2 kept values" in prune.output and "0 kept values left" in prune.output
    assert not list(objects.glob("*.pkl")) and mine.exists()
    assert (path.parent / "data" / "doubled.pkl").exists()  # the project's files stay
    # the records of shift went with their values: it runs again, the others are reused
    assert _run(path, *again)[0] == ["shift", "add", "report"]
    (path.parent / ".kmlc" / "cache.json").write_text("{broken")
    prune = CliRunner().invoke(main, ["cache", "prune", "--file", str(path)])
    assert prune.exit_code == 1 and "nothing was removed" in prune.output
    assert list(objects.glob("*.pkl"))


def _iris(root: Path) -> Path:
    import shutil

    iris = Path(__file__).resolve().parents[2] / "examples" / "iris"
    (root / "data").mkdir(parents=True)
    shutil.copytree(iris / "data" / "01_raw", root / "data" / "01_raw")
    for name in ("mlproject.yml", "iris_nodes.py"):
        shutil.copy(iris / name, root / name)
    return root / "mlproject.yml"


@pytest.mark.slow
def test_iris_a_new_model_c_reruns_only_the_nodes_that_read_it_and_those_after(
        tmp_path: Path) -> None:
    """Issue 24's acceptance: the split hands its outputs on in memory, yet only
    fit_classifier (reads model.c) and evaluate (after it) run; the run's metrics are
    those of an uncached run with the same parameter."""
    path = _iris(tmp_path / "iris")
    _, first, out = _run(path, "training", "--cache")
    assert "cache: no node skipped (5 ran)" in out
    _, run_id, out = _run(path, "training", "--cache", "--params", "model.c=2")
    assert f"cache: skipped 3 of 5 nodes (cached from run {first})" in out
    client = _client(path)
    summary = _cache_artifact(client, run_id, tmp_path / "dl")
    assert summary["ran"] == ["fit_classifier", "evaluate"]
    assert summary["handed_on"] == ["x_test", "x_train", "y_test", "y_train"]
    fresh = _iris(tmp_path / "fresh")
    _, reference, _ = _run(fresh, "training", "--params", "model.c=2")
    assert client.get_run(run_id).data.metrics == _client(fresh).get_run(
        reference).data.metrics
    assert client.get_run(run_id).data.params["model.c"] == "2"


def test_tracking_disabled_pipelines_are_cached_too(tmp_path: Path) -> None:
    text = CHAIN_YAML.replace("  score: {type: mlflow.metric}\n", "").replace(
        "  summary: {type: json.JSONDataset, filepath: data/summary.json, track: "
        "{artifact_path: reports}}\n", "  summary: {type: json.JSONDataset, filepath: "
        "data/summary.json}\n  score: {type: json.JSONDataset, filepath: data/score.json}\n")
    path = _chain(tmp_path / "p", text + "tracking: {disable_for: [__default__]}\n")
    assert _run(path, "--cache")[0] == ALL
    ran, _, out = _run(path, "--cache")
    assert ran == []
    assert "skipped 4 of 4 nodes" in out and "tracking disabled" in out


@pytest.mark.slow
def test_a_node_that_logs_an_mlflow_flavor_model_is_never_skipped(
        mini, tmp_path: Path) -> None:
    path = mini()  # fit writes sk_model (mlflow.model), which lives only in its own run
    _run(path, "training", "--cache")
    _, run_id, _ = _run(path, "training", "--cache")
    client = _client(path)
    ran = _cache_artifact(client, run_id, tmp_path / "dl")["ran"]
    assert "fit" in ran and "evaluate" in ran  # evaluate reads what fit wrote
    assert "clean" not in ran  # fit gets its memory output from the value clean kept
    assert _cache_artifact(client, run_id, tmp_path / "dl2")["handed_on"]
    assert client.get_run(run_id).data.tags["kmlc.cache.skipped"] == "1"
    experiment = client.get_run(run_id).info.experiment_id
    assert {m.source_run_id for m in client.search_logged_models([experiment])
            if m.name == "sk_model"} >= {run_id}


@pytest.mark.slow
def test_iris_rerun_skips_everything_and_logs_the_same_model(tmp_path: Path) -> None:
    import shutil
    import subprocess

    # not `from conftest import IRIS`: which conftest that names depends on the test order
    iris = Path(__file__).resolve().parents[2] / "examples" / "iris" / "mlproject.yml"
    root = tmp_path / "iris"
    (root / "data").mkdir(parents=True)
    shutil.copytree(iris.parent / "data" / "01_raw", root / "data" / "01_raw")
    for name in ("mlproject.yml", "iris_nodes.py"):
        shutil.copy(iris.parent / name, root / name)
    path = root / "mlproject.yml"
    outputs = []
    for _ in range(2):
        result = CliRunner().invoke(main, ["run", "training", "-f", str(path), "--cache"])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "cache: skipped 5 of 5 nodes" in outputs[1]
    models = [next(line.split()[-1] for line in out.splitlines()
                   if line.startswith("model logged: ")) for out in outputs]
    runs = [next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
            for out in outputs]
    client = _client(path)
    assert client.get_run(runs[1]).data.metrics == client.get_run(runs[0]).data.metrics
    assert client.get_run(runs[1]).data.params == client.get_run(runs[0]).data.params
    assert [a.path for a in client.list_artifacts(runs[1], "reports")] == [
        "reports/confusion_matrix.png"]
    # a fresh process: both models' packed files and their predictions on the raw input
    code = f"""
import hashlib, json, sys
from pathlib import Path
import mlflow, pandas as pd
mlflow.set_tracking_uri("sqlite:///{root}/mlflow.db")
raw = pd.read_csv("{root}/data/01_raw/instances.csv")
out = []
for uri in {models!r}:
    folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(Path("{tmp_path}")
                                                      / uri.split("/")[-1])))
    packed = {{str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "MLmodel"}}
    predicted = mlflow.pyfunc.load_model(uri).predict(raw)
    out.append({{"packed": packed, "predicted": predicted.to_json()}})
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    assert "artifacts/classifier.pkl" in first["packed"]
    assert second["packed"] == first["packed"]
    assert second["predicted"] == first["predicted"]


@pytest.mark.slow
def test_versioned_outputs_are_known_by_their_version(tmp_path: Path) -> None:
    text = CHAIN_YAML.replace("filepath: data/doubled.pkl}",
                              "filepath: data/doubled.pkl, versioned: true}")
    path = _chain(tmp_path / "p", text)
    assert _run(path, "--cache")[0] == ALL
    assert _run(path, "--cache")[0] == []
    ran, _, _ = _run(path, "--cache", "--params", "scale=3")  # a new version of doubled
    assert ran == ALL
    assert len(list((path.parent / "data" / "doubled.pkl").iterdir())) == 2
    assert _run(path, "--cache", "--params", "scale=3")[0] == []
    # scale=2 again: its record names an older version than the latest, so double reruns
    assert _run(path, "--cache")[0] == ALL


@pytest.mark.slow
def test_parallel_runner_records_the_nodes_without_metrics(tmp_path: Path) -> None:
    path = _chain(tmp_path / "p")
    assert _run(path, "--cache", "--runner", "parallel")[0] == ALL
    ran, run_id, out = _run(path, "--cache", "--runner", "parallel")
    # report logs a metric, whose value stayed in the worker process: it runs again
    assert ran == ["report"]
    assert "skipped 3 of 4 nodes" in out
    assert _client(path).get_run(run_id).data.metrics["score"] == pytest.approx(2.071)


def test_spaceflights_namespaces_a_candidate_parameter_reruns_only_the_candidate(
        tmp_path: Path) -> None:
    """The Kedro spaceflights data-science nodes, unchanged (tests/spaceflights_project.py),
    instantiated twice under namespaces: a parameter of one namespace reruns only it."""
    from spaceflights_project import write_spaceflights

    path = write_spaceflights(tmp_path / "sf")
    sys.modules.pop("ds_nodes", None)
    _, first, _ = _run(path, "--cache")
    active = path.parent / "data/06_models/active_modelling_pipeline/regressor.pickle"
    before = active.stat().st_mtime_ns
    _, run_id, out = _run(path, "--cache", "--params",
                          "candidate_modelling_pipeline.model_options.test_size=0.3")
    assert f"skipped 6 of 9 nodes (cached from run {first})" in out
    client = _client(path)
    summary = _cache_artifact(client, run_id, tmp_path / "dl")
    assert summary["ran"] == [f"candidate_modelling_pipeline.{n}" for n in (
        "split_data_node", "train_model_node", "evaluate_model_node")]
    assert all(not n.startswith("candidate") for n in summary["nodes"])
    assert active.stat().st_mtime_ns == before  # the skipped namespace wrote nothing


@pytest.mark.slow
def test_without_the_cache_nothing_is_imported_hashed_or_written(tmp_path: Path) -> None:
    import subprocess

    path = _chain(tmp_path / "p")
    code = ("import sys\nfrom kmlc.cli import main\n"
            "try:\n"
            f"    main(['run', '-f', {str(path)!r}])\n"
            "except SystemExit as exc:\n"
            "    assert not exc.code, exc.code\n"
            "print(sorted(m for m in sys.modules if m.startswith(('kmlc.cache', "
            "'kmlc.compiler.fingerprint'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=path.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert not (path.parent / ".kmlc").exists()
    assert (path.parent / "ran.txt").read_text().split() == ALL
