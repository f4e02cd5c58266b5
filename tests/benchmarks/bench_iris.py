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

Run: ``python tests/benchmarks/bench_iris.py [--repeats N]``. Medians with min-max.
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
import kmlc.cli, kmlc.run
spent = []
original = kmlc.run.ModelJob.finish
def finish(self):
    start = time.perf_counter()
    try:
        return original(self)
    finally:
        spent.append(time.perf_counter() - start)
kmlc.run.ModelJob.finish = finish
sys.argv = ["kmlc", "run", "training", "-f", sys.argv[1]]
try:
    kmlc.cli.main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(spent))
"""


def write_kedro_project(folder: Path) -> Path:
    """A Kedro project running the iris nodes: generated from the kmlc file, no tracking."""
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
    (package / "settings.py").write_text("")
    nodes = []
    for n in spec.nodes:
        if "training" not in n.tags:
            continue
        inputs = dict(n.inputs) if isinstance(n.inputs, dict) else n.inputs
        inputs = list(inputs) if isinstance(inputs, tuple) else inputs
        outputs = list(n.outputs) if isinstance(n.outputs, tuple) else n.outputs
        nodes.append(f"node(iris_nodes.{n.function_name}, {inputs!r}, {outputs!r}, "
                     f"name={n.name!r})")
    (package / "pipeline_registry.py").write_text(
        "import iris_nodes\nfrom kedro.pipeline import Pipeline, node\n\n\n"
        "def register_pipelines():\n"
        f"    training = Pipeline([{', '.join(nodes)}])\n"
        "    return {'__default__': training, 'training': training}\n")
    catalog = {}
    for name, ds in spec.datasets.items():
        if ds.is_mlflow:
            continue  # plain Kedro: a memory dataset
        catalog[name] = dict(ds.config)
    (folder / "conf" / "base" / "catalog.yml").write_text(json.dumps(catalog, indent=2))
    (folder / "conf" / "base" / "parameters.yml").write_text(
        json.dumps(dict(spec.parameters), indent=2))
    return folder


def _kedro_version() -> str:
    import kedro

    return str(kedro.__version__)


def _timed(cmd: list[str], cwd: Path) -> float:
    return c.timed_subprocess(cmd, cwd=cwd)[0]


def _stats(values: list[float]) -> str:
    return (f"{statistics.median(values):.2f} s "
            f"({min(values):.2f}-{max(values):.2f}, n={len(values)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    kmlc = c.kmlc_executable()
    kedro = str(Path(sys.executable).with_name("kedro"))
    print(c.machine())
    c.quiet_logging()  # plain Kedro at WARNING too, as kmlc run sets it (fair to both)
    with tempfile.TemporaryDirectory(prefix="kmlc-bench-iris-") as tmp:
        root = Path(tmp)
        project = root / "kmlc-iris"
        shutil.copytree(IRIS, project, ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts"))
        plain = write_kedro_project(root / "kedro-iris")
        file = project / "mlproject.yml"
        _timed([kmlc, "run", "training", "-f", str(file)], project)  # warm the store
        _timed([kedro, "run", "--pipeline", "training"], plain)
        kmlc_times, kedro_times, finish_times = [], [], []
        for _ in range(args.repeats):  # interleaved
            kmlc_times.append(_timed([kmlc, "run", "training", "-f", str(file)], project))
            kedro_times.append(_timed([kedro, "run", "--pipeline", "training"], plain))
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
    print(f"(b) model logging after the last node: {_stats(finish_times)} (target <= 0.5 s)")
    print(f"(c) first run on a fresh project {_stats(first)}; second {_stats(second)}; "
          f"first - second {extra:.2f} s (target <= 0.5 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
