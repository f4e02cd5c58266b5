"""kmlc run end to end: real Kedro runners, a real sqlite MLflow store, real models."""

from __future__ import annotations

import getpass
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import forkserver
import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from faults import GATED, signal_at_gate, write_gate_hook
from faults import env as gate_env
from mini_project import MINI_NODES, MINI_YAML, kmlc_exe
from mlflow.tracking import MlflowClient

from kmlc import RunOptions, compile_project, load_project, run_pipeline
from kmlc.cli import main
from kmlc.config.selection import Selection
from kmlc.errors import RunError, TrackingError
from kmlc.run import NodeFailure


def _client(root: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root / 'mlflow.db'}")


def _run(path: Path, pipeline: str = "training", **options: object):
    spec = load_project(path, params=options.pop("params", ()),  # type: ignore[arg-type]
                        runner=options.pop("runner", None),  # type: ignore[arg-type]
                        tracking_uri=options.pop("tracking_uri", None))  # type: ignore[arg-type]
    selection = Selection(**{name: options.pop(name) for name in list(options)
                             if name in Selection.__dataclass_fields__})  # type: ignore[arg-type]
    return run_pipeline(spec, pipeline, RunOptions(selection, progress=False, **options))  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["sequential", "thread", "parallel"])
def test_training_lands_everything_in_one_run(mini, runner: str) -> None:
    path = mini()
    result = _run(path, runner=runner)
    assert result.status == "FINISHED"
    client = _client(path.parent)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"model.c": "0.5", "model.max_iter": "200", "fail": "False",
                               "sleep": "0"}
    assert run.data.metrics["accuracy"] == pytest.approx(run.data.metrics["eval.accuracy"])
    assert [m.value for m in client.get_metric_history(result.run_id, "loss")] == [1.0, 0.5, 0.25]
    assert [m.step for m in client.get_metric_history(result.run_id, "eval.curve")] == [0, 1]
    tags = run.data.tags
    assert tags["kmlc.pipeline"] == "training"
    assert tags["team"] == "tests"
    assert tags["kmlc.runner"] == runner
    assert tags["mlflow.user"] == getpass.getuser()  # as MLflow's fluent API tags runs
    assert len(tags["kmlc.file_hash"]) >= 16
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"mlproject.yml", "reports"} <= artifacts
    assert [a.path for a in client.list_artifacts(result.run_id, "reports")] == [
        "reports/report.json"]
    # the mlflow.model dataset logged a real sklearn model into the same run
    mlflow.set_tracking_uri(result.tracking_uri)  # restored by the autouse fixture
    sk = mlflow.sklearn.load_model(f"runs:/{result.run_id}/sk_model")
    assert hasattr(sk, "predict_proba")
    assert result.model_uri and result.model_uri.startswith("models:/")


@pytest.mark.slow
def test_logged_model_matches_inference_run_from_another_process(mini, tmp_path: Path) -> None:
    path = mini()
    result = _run(path)
    inference = _run(path, "inference")
    assert inference.status == "FINISHED"
    expected = pd.read_csv(path.parent / "data/07_model_output/predictions.csv", index_col="id")
    script = (
        "import sys, mlflow, pandas as pd\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "m = mlflow.pyfunc.load_model(sys.argv[2])\n"
        "out = m.predict(pd.read_csv(sys.argv[3]))\n"
        "over = m.predict(pd.read_csv(sys.argv[3]), params={'threshold': 2.0})\n"
        "out.to_csv(sys.argv[4]); print(int(over['label'].sum()))\n"
        "print('mini_nodes' in sys.modules, [p for p in sys.path if 'proj' in p])\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script, f"sqlite:///{path.parent / 'mlflow.db'}",
         f"runs:/{result.run_id}/model", str(path.parent / "data/01_raw/instances.csv"),
         str(elsewhere / "out.csv")],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert lines[0] == "0"  # the threshold parameter was overridden through pyfunc params
    # the node module came from the model's own code, not from the training project
    assert lines[1] == "True []", lines[1]
    got = pd.read_csv(elsewhere / "out.csv", index_col="id")
    pd.testing.assert_frame_equal(got, expected)


def test_logged_model_signature_and_files(mini) -> None:
    path = mini()
    result = _run(path)
    mlflow.set_tracking_uri(result.tracking_uri)  # restored by the autouse fixture
    model = mlflow.pyfunc.load_model(result.model_uri)
    signature = model.metadata.signature
    assert [c.name for c in signature.inputs.inputs] == ["id", "x1", "x2"]
    assert [c.name for c in signature.outputs.inputs] == ["proba", "label"]
    assert [p.name for p in signature.params.params] == ["threshold"]
    local = Path(mlflow.artifacts.download_artifacts(result.model_uri))
    text = "\n".join(p.read_text(errors="ignore") for p in local.rglob("*") if p.is_file())
    assert str(path.parent) not in text  # no absolute path of the training machine
    plan = json.loads((local / "artifacts" / "kmlc_plan.json").read_text())
    assert [s["name"] for s in plan["steps"]] == ["clean", "predict"]
    assert plan["params"] == {"params:threshold": 0.5}
    requirements = (local / "requirements.txt").read_text()
    for dist in ("kedro==", "mlflow==", "scikit-learn==", "pandas=="):
        assert dist in requirements
    assert (local / "code" / "mini_nodes.py").exists()


RIVAL_NODE = """\
  - name: adversary
    func: mini_nodes.rival
    inputs: [classifier, features, labels]
    outputs: rivalled
    tags: [training]
"""

RIVAL_FUNC = '''

def rival(classifier, features, labels):
    """What a second run of the project with another C does to the catalog's file."""
    import pickle

    y = labels.set_index("id").loc[features.index, "y"]
    other = LogisticRegression(C=0.001).fit(features, y)
    with open("data/06_models/classifier.pkl", "wb") as handle:
        pickle.dump(other, handle)
    return True
'''


def test_model_packs_the_classifier_this_run_trained(mini, monkeypatch) -> None:
    """Another run rewrites the pickle after this run saved it: the model keeps this run's.

    Kedro writes a file in place; two runs of one project share it. The model is built
    from what this run saved (the first run's, C=0.5), not from the file as it is now.
    """
    from mini_project import MINI_NODES, MINI_YAML

    text = MINI_YAML.replace("model:\n  input", RIVAL_NODE + "model:\n  input")
    # the classifier saved last: the adversary runs right after the model job starts
    text = text.replace("outputs: [classifier, sk_model, loss]",
                        "outputs: {a: sk_model, b: loss, c: classifier}")
    path = mini(text, MINI_NODES.replace("return model, model, [1.0, 0.5, 0.25]",
                                         "return {'a': model, 'b': [1.0, 0.5, 0.25], 'c': model}")
                + RIVAL_FUNC)
    monkeypatch.chdir(path.parent)  # the rival writes relative to the project, as Kedro
    result = _run(path)
    assert result.status == "FINISHED"
    mlflow.set_tracking_uri(result.tracking_uri)  # restored by the autouse fixture
    instances = pd.read_csv(path.parent / "data/01_raw/instances.csv")
    got = mlflow.pyfunc.load_model(result.model_uri).predict(instances)
    trained = mlflow.sklearn.load_model(f"runs:/{result.run_id}/sk_model")
    features = instances.set_index("id")[["x1", "x2"]].astype(float)
    assert got["proba"].tolist() == trained.predict_proba(features)[:, 1].tolist()
    with open(path.parent / "data/06_models/classifier.pkl", "rb") as handle:
        rival = pickle.load(handle)  # the file now holds the other run's classifier
    assert rival.C == 0.001
    assert got["proba"].tolist() != rival.predict_proba(features)[:, 1].tolist()


def test_failing_node_marks_run_failed_and_keeps_what_was_logged(mini) -> None:
    path = mini()
    with pytest.raises(NodeFailure) as info:
        _run(path, params=("fail=true",))
    assert info.value.node == "check"
    run = _client(path.parent).get_run(info.value.run_id)  # type: ignore[attr-defined]
    assert run.info.status == "FAILED"
    assert run.data.tags["kmlc.failed_node"] == "check"
    assert "failed on purpose" in run.data.tags["kmlc.error"]
    assert "accuracy" in run.data.metrics  # logged before the failure, kept
    assert run.data.params["fail"] == "True"
    assert not list(_client(path.parent).search_logged_models(
        [run.info.experiment_id], filter_string="name = 'model'"))


def test_cli_failure_exit_code_and_message(mini) -> None:
    path = mini()
    result = CliRunner().invoke(main, ["run", "training", "-f", str(path), "--params",
                                       "fail=true"])
    assert result.exit_code == 1
    assert "node 'check' failed: ValueError: the check failed on purpose" in result.output
    assert "marked FAILED" in result.output
    assert "Traceback" not in result.output


def test_inference_before_training_names_the_missing_files(mini) -> None:
    path = mini()
    result = CliRunner().invoke(main, ["run", "inference", "-f", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: pipeline 'inference' needs files that do not exist yet: classifier "
        "(data/06_models/classifier.pkl) (`kmlc run training` produces it) [KMLC604]"]
    assert "--from-nodes" not in result.output
    assert not (path.parent / "data" / "07_model_output").exists()
    assert not (path.parent / "mlflow.db").exists()  # checked before any run is opened


def test_a_pipeline_cut_from_the_nodes_feeding_it_is_refused_before_the_run(mini) -> None:
    """Kedro refuses a run whose in-memory inputs nothing produces; kmlc says which, and
    how to run them, before any run is opened (not "node 'x' failed")."""
    from mini_project import MINI_YAML

    path = mini(MINI_YAML.replace("model:\n", "pipelines:\n  scoring: {nodes: [evaluate, "
                                  "check]}\nmodel:\n"))
    result = CliRunner().invoke(main, ["run", "scoring", "-f", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: pipeline 'scoring' needs values that other nodes produce in memory: "
        "features (`kmlc run` runs it with the nodes that produce it, or declare it "
        "under `datasets:` (for example pickle.PickleDataset) to keep it between runs) "
        "[KMLC604]"]
    with pytest.raises(RunError) as info:
        _run(path, from_nodes=("evaluate",))
    assert "`kmlc run training` with no node filter runs it" in info.value.hint
    assert not (path.parent / "mlflow.db").exists() or not _client(path.parent).search_runs(
        [e.experiment_id for e in _client(path.parent).search_experiments()])


def test_missing_raw_input_is_named_before_the_run(mini) -> None:
    path = mini()
    (path.parent / "data" / "01_raw" / "labels.csv").unlink()
    with pytest.raises(RunError) as info:
        _run(path)
    assert (info.value.code, str(info.value)) == (
        "KMLC604", "pipeline 'training' needs files that do not exist yet: labels "
        "(data/01_raw/labels.csv) (no node produces it: create it first)")


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["sequential", "parallel"])
def test_progress_shows_each_nodes_own_duration_and_the_total(
        mini, runner: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = mini()
    spec = load_project(path, params=["sleep=0.6"], runner=runner)
    run_pipeline(spec, "training", RunOptions(progress=None))
    lines = capsys.readouterr().err.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert [line.split("] ")[0] for line in progress] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    seconds = {}
    for line in progress:
        name, duration = line.split("] ")[1].split(" (")
        seconds[name] = float(duration.removesuffix("s)"))
    assert set(seconds) == {"clean", "fit", "evaluate", "check"}
    assert seconds["check"] >= 0.6  # it sleeps
    total = [line for line in lines if line.startswith("4/4 nodes in ")]
    assert len(total) == 1
    # each node's own time, not the time since the start: together no more than the total
    assert sum(seconds.values()) <= float(total[0].split(" in ")[1].removesuffix("s")) + 0.2


def test_filtered_run_logs_no_model_and_says_so(mini) -> None:
    path = mini()
    result = _run(path, to_nodes=("clean",))
    assert result.status == "FINISHED"
    assert result.model_uri is None
    assert any("no model logged" in note for note in result.notes)


@pytest.mark.slow
def test_disable_for_runs_without_mlflow(mini) -> None:
    path = mini(MINI_YAML.replace("tracking:\n", "tracking:\n  disable_for: [inference]\n"))
    _run(path)  # training produces the classifier
    before = _client(path.parent).search_runs(
        [_client(path.parent).get_experiment_by_name("mini").experiment_id])
    result = _run(path, "inference")
    assert result.run_id is None
    after = _client(path.parent).search_runs(
        [_client(path.parent).get_experiment_by_name("mini").experiment_id])
    assert len(after) == len(before)
    assert (path.parent / "data/07_model_output/predictions.csv").exists()


def test_unreachable_server_fails_fast_before_any_output(mini) -> None:
    path = mini()
    started = time.perf_counter()
    with pytest.raises(TrackingError) as info:
        _run(path, tracking_uri="http://127.0.0.1:9")
    # MLflow's own retries would take minutes; 60 s holds on a loaded 2-core machine
    assert time.perf_counter() - started < 60
    assert "http://127.0.0.1:9" in str(info.value)
    assert not (path.parent / "data" / "06_models").exists()
    result = CliRunner().invoke(main, ["run", "training", "-f", str(path), "--tracking-uri",
                                       "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "unreachable" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_deleted_experiment_is_restored(mini) -> None:
    path = mini()
    first = _run(path)
    client = _client(path.parent)
    client.delete_experiment(client.get_run(first.run_id).info.experiment_id)
    second = _run(path, to_nodes=("clean",))
    assert client.get_run(second.run_id).info.status == "FINISHED"
    assert client.get_experiment_by_name("mini").lifecycle_stage == "active"


def test_secret_never_reaches_the_store_or_output(mini, monkeypatch) -> None:
    secret = "s3cr3t-T0KEN-planted"
    monkeypatch.setenv("KMLC_TEST_TOKEN", secret)
    text = MINI_YAML.replace(
        "  threshold: 0.5\n",
        "  threshold: 0.5\n  token: \"{{ env('KMLC_TEST_TOKEN', secret=true) }}\"\n").replace(
        "    inputs: [report, params:fail, params:sleep]",
        "    inputs: [report, params:fail, params:sleep, params:token]").replace(
        "def check(report, fail, sleep):", "def check(report, fail, sleep, token):")
    nodes = MINI_NODES.replace(
        "def check(report, fail, sleep):", "def check(report, fail, sleep, token):")
    path = mini(text, nodes)
    result = CliRunner().invoke(main, ["run", "training", "-f", str(path),
                                       "--run-name", "secret-test", "--params", "fail=true"])
    assert result.exit_code == 1
    assert secret not in result.output
    for file in path.parent.rglob("*"):
        if file.is_file() and file.suffix not in (".py",):
            assert secret.encode() not in file.read_bytes(), file


@pytest.mark.slow
def test_sigterm_marks_run_killed(mini, tmp_path: Path) -> None:
    path = mini(GATED)
    write_gate_hook(path.parent)
    gate = tmp_path / "gate"
    gate.mkdir()
    proc = subprocess.Popen([kmlc_exe(), "run", "training", "-f", str(path), "--params",
                             "sleep=60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=gate_env(KMLC_TEST_GATE=str(gate),
                                                    KMLC_TEST_MOMENT="before_node_run:check"))
    # the signal goes once the metrics are logged: the project's hook says when the node
    # after `evaluate` is about to run, however long a loaded machine takes to get there
    err = signal_at_gate(proc, gate, signal.SIGTERM, seconds=240, timeout=60,
                         what="the run to reach the node check")
    assert proc.returncode == 130, err
    client = _client(path.parent)  # after the run: its store is the run's to create
    experiment = client.get_experiment_by_name("mini")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "KILLED"
    assert "accuracy" in run.data.metrics


@pytest.mark.slow
def test_concurrent_runs_on_sqlite_lose_nothing(mini) -> None:
    path = mini()
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    # forks of tests/forkserver.py where they can be: the runs start together
    procs = [subprocess.Popen(forkserver.kmlc_argv(
        [kmlc_exe(), "run", "training", "-f", str(path), "--params",
         f"model.c={0.1 * (i + 1):.1f}", "--run-name", f"c{i}"], env),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
    outputs = [p.communicate(timeout=280) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    client = _client(path.parent)
    runs = client.search_runs([client.get_experiment_by_name("mini").experiment_id])
    assert len(runs) == 8
    assert sorted(r.data.params["model.c"] for r in runs) == [
        f"{0.1 * (i + 1):.1f}" for i in range(8)]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert "accuracy" in run.data.metrics
        assert [a.path for a in client.list_artifacts(run.info.run_id, "reports")]


def test_compiled_project_reuses_kedro_objects(mini) -> None:
    compiled = compile_project(load_project(mini()))
    assert set(compiled.pipelines) >= {"__default__", "training", "inference"}
    assert [n.name for n in compiled.pipelines["inference"].nodes] == ["clean", "predict"]
    catalog = compiled.catalog()
    assert catalog.load("params:model.c") == 0.5
    assert len(catalog.load("instances")) == 40
