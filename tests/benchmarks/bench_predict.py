"""Benchmark: predict and load_model of the iris model kmlc logs, vs its floor and kedro-mlflow.

On a temp copy of examples/iris, ``kmlc run training`` logs the bound model. Then, for a
1-row and a 10,000-row input, the median time of one predict call:

- raw: ``iris_nodes.clean`` + ``iris_nodes.predict`` called on the in-memory artifacts;
- floor: a hand-written models-from-code ``mlflow.pyfunc.PythonModel`` calling the same
  functions, logged with kmlc's signature, loaded with ``mlflow.pyfunc.load_model``;
- kmlc: ``mlflow.pyfunc.load_model`` on what kmlc logged (target: <= 1.10x the floor);
- kedro-mlflow: its ``KedroPipelineModel`` of the same pipeline (``pipeline_ml_factory``),
  in the kedro-mlflow venv (subprocess).

Every figure is a median with min-max over at least 5 rounds: in each round, each model
is timed (median per call over a short window of calls), the models interleaved within
the round; kedro-mlflow's model, in its own venv's process, runs its rounds there.

Then ``load_model`` in a fresh process (median with min-max of 5 fresh processes per
model, the models interleaved; target <= 1 s) and where that time goes (cProfile of one
load, ``-X importtime`` of the imports it triggers).

Run: ``python tests/benchmarks/bench_predict.py [--quick] [--kmf-python PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

WORKER = Path(__file__).resolve().parent / "_kmf_worker.py"

FLOOR_MODEL = '''\
"""The floor: the least a pyfunc model of the iris inference pipeline can do."""
import pickle

import mlflow
from mlflow.pyfunc import PythonModel

import iris_nodes


class FloorModel(PythonModel):
    def load_context(self, context):
        with open(context.artifacts["scaler"], "rb") as handle:
            self.scaler = pickle.load(handle)
        with open(context.artifacts["classifier"], "rb") as handle:
            self.classifier = pickle.load(handle)

    def predict(self, context, model_input, params=None):
        features = iris_nodes.clean(model_input)
        return iris_nodes.predict(self.scaler, self.classifier, features)


mlflow.models.set_model(FloorModel())
'''

LOAD = """\
import json, sys, time
start = time.perf_counter()
import mlflow.pyfunc
imported = time.perf_counter()
if sys.argv[2]:
    mlflow.set_tracking_uri(sys.argv[2])
mlflow.pyfunc.load_model(sys.argv[1])
done = time.perf_counter()
print(json.dumps({"import": imported - start, "load": done - imported, "total": done - start}))
"""

PROFILE_LOAD = """\
import cProfile, json, sys
import mlflow.pyfunc
if sys.argv[2]:
    mlflow.set_tracking_uri(sys.argv[2])
profiler = cProfile.Profile()
profiler.enable()
mlflow.pyfunc.load_model(sys.argv[1])
profiler.disable()
import pstats
stats = pstats.Stats(profiler).stats
out = {}
for label, suffix, func in json.loads(sys.argv[3]):
    out[label] = max([v[3] for (f, _l, n), v in stats.items()
                      if f.replace("\\\\", "/").endswith(suffix) and n == func] or [0.0])
print(json.dumps(out))
"""

# (label, file suffix, function): cumulative time of that call in one load_model.
LOAD_PARTS = [
    ("load_model, all", "mlflow/pyfunc/__init__.py", "load_model"),
    ("  resolve URI + copy the model folder", "mlflow/tracking/artifact_utils.py",
     "_download_artifact_from_uri"),
    ("    import MLflow's SQL store (models:/ URIs)", "tracking/sqlalchemy_store.py",
     "<module>"),
    ("  check the model's requirements", "mlflow/utils/requirements_utils.py",
     "warn_dependency_requirement_mismatches"),
    ("  read MLmodel", "mlflow/models/model.py", "load"),
    ("  run the model's code (models-from-code)", "mlflow/pyfunc/loaders/code_model.py",
     "_load_pyfunc"),
    ("    load_context", "pyfunc.py", "load_context"),
    ("      kmlc: import kedro.io", "kedro/io/__init__.py", "<module>"),
    ("      kmlc: artifacts via Kedro datasets", "pyfunc.py", "_load_artifact"),
    ("      kmlc: import node functions", "pyfunc.py", "_resolve"),
    ("      import sklearn (unpickling)", "sklearn/__init__.py", "<module>"),
    ("      import iris_nodes (matplotlib, pandas)", "iris_nodes.py", "<module>"),
    ("      floor: import iris_nodes", "floor_model.py", "<module>"),
]


def make_inputs(instances_csv: Path, folder: Path) -> dict[str, Path]:
    import pandas as pd

    frame = pd.read_csv(instances_csv)
    big = frame.sample(n=10_000, replace=True, random_state=0).reset_index(drop=True)
    big["id"] = range(1, len(big) + 1)
    paths = {"1 row": folder / "one.csv", "10,000 rows": folder / "big.csv"}
    frame.iloc[:1].to_csv(paths["1 row"], index=False)
    big.to_csv(paths["10,000 rows"], index=False)
    return paths


def train(project: Path) -> str:
    """``kmlc run training``; returns the logged model's URI."""
    _, done = c.timed_subprocess([c.kmlc_executable(), "run", "training", "-f",
                                  str(project / "mlproject.yml")], cwd=project)
    match = re.search(r"model logged: (\S+)", done.stdout)
    if match is None:
        raise RuntimeError(f"kmlc run training logged no model:\n{done.stdout}\n{done.stderr}")
    return match.group(1)


def log_floor(project: Path, tracking_uri: str, signature: Any) -> str:
    import mlflow

    code = project / "floor_model.py"
    code.write_text(FLOOR_MODEL, encoding="utf-8")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("floor")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="floor", python_model=str(code),
            artifacts={"scaler": str(project / "data/06_models/scaler.pkl"),
                       "classifier": str(project / "data/06_models/classifier.pkl")},
            code_paths=[str(project / "iris_nodes.py")], signature=signature,
            pip_requirements=["mlflow", "scikit-learn", "pandas"])
    return str(info.model_uri)


def load_times(cases: list[tuple[str, str, str, str]], repeats: int
               ) -> dict[str, dict[str, list[float]]]:
    """Import / load_model / total seconds per case and fresh process.

    The cases alternate within each repeat, so a burst of load from other processes
    hits all of them rather than one.
    """
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in cases}
    with tempfile.TemporaryDirectory(prefix="kmlc-bench-load-") as cwd:
        for _ in range(repeats):
            for name, python, uri, store in cases:
                _, done = c.timed_subprocess([python, "-c", LOAD, uri, store], cwd=cwd)
                runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {name: {key: [r[key] for r in values] for key in values[0]}
            for name, values in runs.items()}


def profile_load(cases: list[tuple[str, str, str]]) -> None:
    """Attribute one load_model per model (cProfile, fresh process) to its main parts."""
    columns = {}
    with tempfile.TemporaryDirectory(prefix="kmlc-bench-load-") as cwd:
        for name, uri, store in cases:
            _, done = c.timed_subprocess([sys.executable, "-c", PROFILE_LOAD, uri, store,
                                          json.dumps(LOAD_PARTS)], cwd=cwd)
            columns[name] = json.loads(done.stdout.strip().splitlines()[-1])
    rows = []
    for label, _, _ in LOAD_PARTS:
        values = [columns[name].get(label, 0.0) for name in columns]
        if any(values):
            rows.append([label, *(c.fmt_time(v) if v else "-" for v in values)])
    c.table("where load_model's time goes: cProfile of one load_model per model in a fresh "
            "process, after `import mlflow.pyfunc` (cumulative; profiler overhead included; "
            "indented = inside the row above)", ["part", *columns], rows)


def importtime_load(uri: str, tracking_uri: str, top: int = 10) -> None:
    """Imports that load_model triggers (after `import mlflow.pyfunc`), by cumulative time."""
    script = ("import sys, mlflow.pyfunc\nimport os\nos.write(2, b'--- load ---\\n')\n"
              "mlflow.set_tracking_uri(sys.argv[2]) if sys.argv[2] else None\n"
              "mlflow.pyfunc.load_model(sys.argv[1])\n")
    with tempfile.TemporaryDirectory(prefix="kmlc-bench-load-") as cwd:
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", script, uri,
                               tracking_uri], capture_output=True, text=True, cwd=cwd,
                              env={**os.environ, **c.QUIET_ENV})
    before, _, after = done.stderr.partition("--- load ---")
    rows = []
    for text, phase in ((before, "import mlflow.pyfunc"), (after, "inside load_model")):
        entries = []
        for line in text.splitlines():
            parts = line.removeprefix("import time:").split("|")
            if not line.startswith("import time:") or len(parts) != 3:
                continue
            if not parts[1].strip().isdigit():
                continue
            name = parts[2].rstrip()
            if len(name) - len(name.lstrip()) == 1:
                entries.append((int(parts[1]), name.strip()))
        entries.sort(reverse=True)
        total = sum(us for us, _ in entries)
        rows.append([phase, "(all top-level imports)", c.fmt_time(total / 1e6)])
        rows += [[phase, name, c.fmt_time(us / 1e6)] for us, name in entries[:top // 2]]
    c.table("imports of a fresh load_model process (python -X importtime, one run)",
            ["when", "module", "cumulative"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing windows")
    parser.add_argument("--seconds", type=float, default=None,
                        help="timing window per model, input and round (default 0.5, "
                             "quick 0.2)")
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"predict rounds (default {c.MIN_RUNS}, quick 2)")
    parser.add_argument("--load-repeats", type=int, default=None,
                        help=f"fresh processes per load_model case (default {c.MIN_RUNS}, "
                             "quick 2)")
    c.add_kmf_option(parser)
    args = parser.parse_args()
    seconds = args.seconds or (0.2 if args.quick else 0.5)
    rounds = args.rounds or (2 if args.quick else c.MIN_RUNS)
    load_repeats = args.load_repeats or (2 if args.quick else c.MIN_RUNS)
    c.quiet_logging()
    print(c.machine())
    kmf_python = c.check_kmf_python(args.kmf_python)

    import warnings

    import mlflow
    import mlflow.pyfunc
    import pandas as pd

    warnings.filterwarnings("ignore")
    c.quiet_logging()  # again: importing MLflow reset its loggers
    with tempfile.TemporaryDirectory(prefix="kmlc-bench-predict-") as tmp:
        root = Path(tmp)
        project = root / "iris"
        shutil.copytree(c.IRIS, project, ignore=shutil.ignore_patterns(
            "mlruns", "mlartifacts", "mlflow.db", "__pycache__", "06_models", "07_*",
            "08_*"))
        tracking_uri = f"sqlite:///{project / 'mlflow.db'}"
        kmlc_uri = train(project)
        print(f"kmlc model: {kmlc_uri}")
        inputs = make_inputs(project / "data/01_raw/instances.csv", root)
        frames = {label: pd.read_csv(path) for label, path in inputs.items()}

        mlflow.set_tracking_uri(tracking_uri)
        kmlc_model = mlflow.pyfunc.load_model(kmlc_uri)
        signature = kmlc_model.metadata.signature
        with contextlib.redirect_stderr(io.StringIO()):  # MLflow's type-hint advice
            floor_uri = log_floor(project, tracking_uri, signature)
            floor_model = mlflow.pyfunc.load_model(floor_uri)

        sys.path.insert(0, str(project))
        import pickle

        import iris_nodes

        with open(project / "data/06_models/scaler.pkl", "rb") as handle:
            scaler = pickle.load(handle)
        with open(project / "data/06_models/classifier.pkl", "rb") as handle:
            classifier = pickle.load(handle)

        def raw(frame: Any) -> Any:
            return iris_nodes.predict(scaler, classifier, iris_nodes.clean(frame))

        kmlc_inner = kmlc_model.unwrap_python_model()
        floor_inner = floor_model.unwrap_python_model()
        expected = {label: raw(frame) for label, frame in frames.items()}
        for label, frame in frames.items():
            pd.testing.assert_frame_equal(kmlc_model.predict(frame), expected[label])
            pd.testing.assert_frame_equal(floor_model.predict(frame), expected[label])

        kmf: dict[str, Any] | None = None
        if kmf_python is not None:
            params = _iris_parameters(project)
            kmf_args = {"code": str(project), "workdir": str(root / "kmf"),
                        "instances": str(project / "data/01_raw/instances.csv"),
                        "labels": str(project / "data/01_raw/labels.csv"),
                        "parameters": params, "inputs": {k: str(v) for k, v in inputs.items()},
                        "tracking_uri": f"sqlite:///{root / 'kmf.db'}",
                        "seconds": seconds, "max_calls": 500, "rounds": rounds}
            _, done = c.timed_subprocess([kmf_python, str(WORKER), "pipeline-model",
                                          json.dumps(kmf_args)], cwd=root)
            kmf = json.loads(done.stdout.strip().splitlines()[-1])

        models = {
            "raw functions": raw,
            "floor (hand-written PythonModel)": floor_model.predict,
            "kmlc logged model": kmlc_model.predict,
            "  floor, unwrapped (no pyfunc schema check)": (
                lambda f: floor_inner.predict(None, f)),
            "  kmlc, unwrapped (no pyfunc schema check)": (
                lambda f: kmlc_inner.predict(None, f)),
        }
        # every (input, model) once per round, interleaved: a median per call each time
        timed = c.interleave({f"{label}|{name}": (lambda m=model, f=frame: c.median_calls(
                                  lambda: m(f), seconds))
                              for label, frame in frames.items()
                              for name, model in models.items()}, rounds, warmup=False)
        rows = []
        for label in frames:
            measured = {name: timed[f"{label}|{name}"] for name in models}
            if kmf is not None:
                measured["kedro-mlflow KedroPipelineModel (own process)"] = (
                    kmf["predict"][label])
            floor = measured["floor (hand-written PythonModel)"]
            for name, values in measured.items():
                verdict = ""
                ratio = statistics.median(values) / statistics.median(floor)
                if name == "kmlc logged model":
                    verdict = "yes" if ratio <= 1.10 else "NO"
                rows.append([label, name, c.spread(values), c.fmt_ratio(ratio), verdict])
        c.table(f"predict, iris model: median per call over ~{seconds:g} s of calls, then "
                f"the median (min-max) of {rounds} interleaved rounds",
                ["input", "model", "per call", "vs floor", "kmlc <= 1.10x floor"], rows)

        load_rows = []
        local_kmlc = Path(mlflow.artifacts.download_artifacts(kmlc_uri,
                                                              dst_path=str(root / "kmlc-dl")))
        local_floor = Path(mlflow.artifacts.download_artifacts(
            floor_uri, dst_path=str(root / "floor-dl")))
        cases = [("kmlc logged model (models:/ URI)", sys.executable, kmlc_uri, tracking_uri),
                 ("kmlc model, local folder", sys.executable, str(local_kmlc), ""),
                 ("floor, local folder", sys.executable, str(local_floor), "")]
        if kmf is not None and kmf_python is not None:
            cases.append(("kedro-mlflow KedroPipelineModel (models:/ URI)", kmf_python,
                          kmf["model_uri"], f"sqlite:///{root / 'kmf.db'}"))
        for name, times in load_times(cases, load_repeats).items():
            verdict = ("yes" if statistics.median(times["load"]) <= 1.0 else "NO"
                       ) if name.startswith("kmlc") else ""
            load_rows.append([name, c.spread(times["import"]), c.spread(times["load"]),
                              c.spread(times["total"]), verdict])
        c.table(f"mlflow.pyfunc.load_model in a fresh process (median (min-max) of "
                f"{load_repeats} interleaved fresh processes)",
                ["model", "import mlflow.pyfunc", "load_model call", "total",
                 "load_model <= 1 s"], load_rows)
        profile_load([("kmlc, models:/ URI", kmlc_uri, tracking_uri),
                      ("kmlc, local folder", str(local_kmlc), ""),
                      ("floor, local folder", str(local_floor), "")])
        importtime_load(kmlc_uri, tracking_uri)
    return 0


def _iris_parameters(project: Path) -> dict[str, Any]:
    from kmlc import load_project

    return dict(load_project(project / "mlproject.yml").parameters)


if __name__ == "__main__":
    raise SystemExit(main())
