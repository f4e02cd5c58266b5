"""Benchmark: the small-project loop, ``kmlc run training`` on the iris example vs ``kedro run``.

The same nodes (``examples/iris/iris_nodes.py``, unchanged) run two ways, whole
processes, interleaved in one sitting:

(a) ``kmlc run training`` on a warm store (the model is logged at the end) / plain
    ``kedro run --pipeline training`` of a Kedro project generated from the same file
    (same catalog entries, parameters and node functions; no tracking). Target <= 1.3x.
(b) the model logging left on the main path after the last node (``ModelJob.finish``:
    the model is built in the tracking worker while the last nodes run). Target <= 0.5 s.
(c) the first run on a fresh project (the store is created) minus the second. Target
    <= 0.5 s.

With ``--kmf-python`` (a venv with kedro-mlflow 2.0.3), (a) gets a third column:
``kedro run --pipeline training`` of the same Kedro project under kedro-mlflow, its
training pipeline bound to the inference pipeline with ``pipeline_ml_factory`` (the
model is logged at the end of the run, as kmlc's is), parameters logged by its hook,
``accuracy`` an ``MlflowMetricDataset``; the metrics dict and the confusion matrix
``MlflowArtifactDataset`` s (kedro-mlflow's metric datasets take no plain dict of
floats, so the dict is logged as a JSON artifact).

Run: ``python tests/benchmarks/bench_iris.py [--repeats N] [--kmf-python PATH]``.
Medians with min-max.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "examples" / "iris"

# `kmlc run` in a fresh process, timing what is left of the model after the last node
FINISH_TIMER = """\
import json, sys, time
import kmlc.cli, kmlc.model.job
spent = []
original = kmlc.model.job.ModelJob.finish
def finish(self):
    start = time.perf_counter()
    try:
        return original(self)
    finally:
        spent.append(time.perf_counter() - start)
kmlc.model.job.ModelJob.finish = finish
sys.argv = ["kmlc", "run", "training", "-f", sys.argv[1]]
try:
    kmlc.cli.main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(spent))
"""


# kedro-mlflow's datasets for kmlc's MLflow types in the iris file (see the docstring)
KMF_CATALOG = {
    "accuracy": {"type": "kedro_mlflow.io.metrics.MlflowMetricDataset", "key": "accuracy"},
    "metrics": {"type": "kedro_mlflow.io.artifacts.MlflowArtifactDataset",
                "dataset": {"type": "json.JSONDataset",
                            "filepath": "data/08_reporting/metrics.json"}},
}

KMF_REGISTRY = """\
from kedro_mlflow.pipeline import pipeline_ml_factory


def bind(training, inference):
    return pipeline_ml_factory(training=training, inference=inference,
                               input_name="instances",
                               log_model_kwargs={"artifact_path": "model",
                                                 "signature": "auto"})
"""


def write_kedro_project(folder: Path, kmf_tracking_uri: str | None = None) -> Path:
    """A Kedro project running the iris nodes: generated from the kmlc file, no tracking.

    With ``kmf_tracking_uri``: the same project under kedro-mlflow (see the docstring).
    """
    from kmlc import load_project

    spec = load_project(IRIS / "mlproject.yml")
    package = folder / "src" / "iris_kedro"
    package.mkdir(parents=True)
    (folder / "conf" / "base").mkdir(parents=True)
    (folder / "conf" / "local").mkdir(parents=True)
    shutil.copytree(IRIS / "data", folder / "data")
    shutil.copy(IRIS / "iris_nodes.py", folder / "src" / "iris_nodes.py")
    (folder / "pyproject.toml").write_text(
        '[tool.kedro]\npackage_name = "iris_kedro"\nproject_name = "iris"\n'
        f'kedro_init_version = "{_kedro_version()}"\nsource_dir = "src"\n')
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(c.KMF_SETTINGS if kmf_tracking_uri else "")
    nodes: dict[str, list[str]] = {"training": [], "inference": []}
    for n in spec.nodes:
        inputs = dict(n.inputs) if isinstance(n.inputs, dict) else n.inputs
        inputs = list(inputs) if isinstance(inputs, tuple) else inputs
        outputs = list(n.outputs) if isinstance(n.outputs, tuple) else n.outputs
        for tag in nodes:
            if tag in n.tags:
                nodes[tag].append(f"node(iris_nodes.{n.function_name}, {inputs!r}, "
                                  f"{outputs!r}, name={n.name!r}, tags={list(n.tags)!r})")
    registry = "import iris_nodes\nfrom kedro.pipeline import Pipeline, node\n"
    training = f"Pipeline([{', '.join(nodes['training'])}])"
    if kmf_tracking_uri:  # the training pipeline bound to the inference pipeline
        registry += KMF_REGISTRY
        training = f"bind({training}, Pipeline([{', '.join(nodes['inference'])}]))"
    (package / "pipeline_registry.py").write_text(
        registry + "\n\ndef register_pipelines():\n"
        f"    training = {training}\n"
        "    return {'__default__': training, 'training': training}\n")
    catalog = {}
    for name, ds in spec.datasets.items():
        if kmf_tracking_uri and name in KMF_CATALOG:
            catalog[name] = KMF_CATALOG[name]
        elif ds.is_mlflow:
            continue  # plain Kedro: a memory dataset
        elif kmf_tracking_uri and ds.track_artifact:
            catalog[name] = {"type": "kedro_mlflow.io.artifacts.MlflowArtifactDataset",
                             "dataset": dict(ds.config)}
        else:
            catalog[name] = dict(ds.config)
    if kmf_tracking_uri:
        c.write_kmf_mlflow_yml(folder / "conf" / "base", kmf_tracking_uri,
                               experiment="iris-kedro-mlflow")
        (folder / "conf" / "logging.yml").write_text(c.QUIET_LOGGING_YML)
    (folder / "conf" / "base" / "catalog.yml").write_text(json.dumps(catalog, indent=2))
    (folder / "conf" / "base" / "parameters.yml").write_text(
        json.dumps(dict(spec.parameters), indent=2))
    return folder


def _kedro_version() -> str:
    import kedro

    return str(kedro.__version__)


def _timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    return c.timed_subprocess(cmd, cwd=cwd, env=env)[0]


def _stats(values: list[float]) -> str:
    return (f"{statistics.median(values):.2f} s "
            f"({min(values):.2f}-{max(values):.2f}, n={len(values)})")


KMF_MODEL_CHECK = """\
import sys, mlflow
sys.path.insert(0, "src")  # its model pickles the nodes by reference: the project's code
mlflow.set_tracking_uri(sys.argv[1])
client = mlflow.MlflowClient()
(run,) = client.search_runs([client.get_experiment_by_name("iris-kedro-mlflow").experiment_id])
assert "model.c" in run.data.params and "accuracy" in run.data.metrics, run.data
model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
import pandas as pd
print(len(model.predict(pd.read_csv(sys.argv[2]))))
"""


def _check_kmf_model(kmf_python: str, project: Path) -> None:
    """kedro-mlflow's run logged the parameters, the metric and a model that predicts."""
    done = subprocess.run([kmf_python, "-c", KMF_MODEL_CHECK,
                           f"sqlite:///{project / 'mlflow.db'}",
                           str(project / "data" / "01_raw" / "instances.csv")],
                          cwd=project, capture_output=True, text=True, env=c.kmf_env(project))
    if done.returncode != 0:
        raise RuntimeError(f"kedro-mlflow's iris run is not what it should be:\n"
                           f"{done.stderr[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    c.add_kmf_option(parser)
    args = parser.parse_args()
    kmlc = c.kmlc_executable()
    kedro = str(Path(sys.executable).with_name("kedro"))
    print(c.machine())
    kmf_python = c.check_kmf_python(args.kmf_python)
    c.quiet_logging()  # plain Kedro at WARNING too, as kmlc run sets it (fair to both)
    with tempfile.TemporaryDirectory(prefix="kmlc-bench-iris-") as tmp:
        root = Path(tmp)
        project = root / "kmlc-iris"
        shutil.copytree(IRIS, project, ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts"))
        plain = write_kedro_project(root / "kedro-iris")
        file = project / "mlproject.yml"
        _timed([kmlc, "run", "training", "-f", str(file)], project)  # warm the store
        _timed([kedro, "run", "--pipeline", "training"], plain)
        kmf_times: list[float] = []
        if kmf_python:
            kmf = write_kedro_project(root / "kmf-iris",
                                      f"sqlite:///{root / 'kmf-iris' / 'mlflow.db'}")
            kmf_kedro = [str(Path(kmf_python).with_name("kedro")), "run", "--pipeline",
                         "training"]
            _timed(kmf_kedro, kmf, c.kmf_env(kmf))  # warm its store
            _check_kmf_model(kmf_python, kmf)
        kmlc_times, kedro_times, finish_times = [], [], []
        for _ in range(args.repeats):  # interleaved
            kmlc_times.append(_timed([kmlc, "run", "training", "-f", str(file)], project))
            kedro_times.append(_timed([kedro, "run", "--pipeline", "training"], plain))
            if kmf_python:
                kmf_times.append(_timed(kmf_kedro, kmf, c.kmf_env(kmf)))
            done = subprocess.run([sys.executable, "-c", FINISH_TIMER, str(file)],
                                  cwd=project, capture_output=True, text=True, check=True)
            finish_times.extend(json.loads(done.stdout.strip().splitlines()[-1]))
        first, second = [], []
        for i in range(args.repeats):
            fresh = root / f"fresh-{i}"
            shutil.copytree(IRIS, fresh,
                            ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts"))
            first.append(_timed([kmlc, "run", "training", "-f", str(fresh / "mlproject.yml")],
                                fresh))
            second.append(_timed([kmlc, "run", "training", "-f",
                                  str(fresh / "mlproject.yml")], fresh))
    ratio = statistics.median(kmlc_times) / statistics.median(kedro_times)
    extra = statistics.median(a - b for a, b in zip(first, second, strict=True))
    print(f"(a) kmlc run training (warm store): {_stats(kmlc_times)}")
    print(f"    plain kedro run, same nodes:    {_stats(kedro_times)}")
    print(f"    ratio {ratio:.2f}x (target <= 1.3x)")
    if kmf_times:
        print(f"    kedro-mlflow kedro run, same nodes: {_stats(kmf_times)}; "
              f"{statistics.median(kmf_times) / statistics.median(kedro_times):.2f}x plain "
              f"kedro, kmlc/kedro-mlflow "
              f"{statistics.median(kmlc_times) / statistics.median(kmf_times):.2f}x")
    print(f"(b) model logging after the last node: {_stats(finish_times)} (target <= 0.5 s)")
    print(f"(c) first run on a fresh project {_stats(first)}; second {_stats(second)}; "
          f"first - second {extra:.2f} s (target <= 0.5 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
