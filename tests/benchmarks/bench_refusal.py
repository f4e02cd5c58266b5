"""Benchmark: how fast ``kmlc run`` refuses a mistake that needs only the file.

Each kind of refusal — an unknown pipeline; a node, tag, namespace or dataset the
pipeline lacks in a filter; a misspelt ``--params`` or ``--env``; an invalid file —
is timed as a whole ``kmlc run`` process on the iris example (``examples/iris``), beside
plain ``kedro run`` refusing the same mistake on a Kedro project generated from the
same file (``bench_iris.write_kedro_project``: same nodes, catalog and parameters).
``kedro run`` does not refuse a ``--params`` key the project lacks (it runs the
pipeline) nor has the file kmlc reads: those rows have no Kedro column. ``kmlc
validate`` on the same file is the floor. Commands interleaved within each round;
medians with min-max. Target: every refusal <= 0.5 s on an idle machine.

Run: ``python tests/benchmarks/bench_refusal.py [--repeats N] [--quick]``.
"""

from __future__ import annotations

import argparse
import compileall
import resource
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
from bench_iris import IRIS, write_kedro_project

import kmlc

TARGET = 0.5  # seconds, every kmlc refusal

# kind -> (kmlc run arguments, kedro run arguments or None, what kmlc's refusal says)
KINDS: dict[str, tuple[list[str], list[str] | None, str]] = {
    "unknown pipeline": (["trainig"], ["--pipeline", "trainig"], "does not exist"),
    "--nodes": (["training", "--nodes", "fit"], ["--pipeline", "training", "--nodes", "fit"],
                "is not in pipeline"),
    "--from-nodes": (["training", "--from-nodes", "evalute"],
                     ["--pipeline", "training", "--from-nodes", "evalute"],
                     "is not in pipeline"),
    "--to-nodes": (["training", "--to-nodes", "predict"],
                   ["--pipeline", "training", "--to-nodes", "predict"], "is not in pipeline"),
    "--tags": (["training", "--tags", "trainig"],
               ["--pipeline", "training", "--tags", "trainig"], "has tag"),
    "--namespace": (["training", "--namespace", "candidates"],
                    ["--pipeline", "training", "--namespaces", "candidates"], "namespace"),
    "--from-inputs": (["training", "--from-inputs", "instance"],
                      ["--pipeline", "training", "--from-inputs", "instance"],
                      "is not used by pipeline"),
    "--params typo": (["training", "--params", "split.tst_size=0.2"], None, "is not defined"),
    "--env typo": (["training", "--env", "prod"], ["--pipeline", "training", "--env", "prod"],
                   "is not defined"),
    "invalid file": (["training", "-f", "broken.yml"], None, "unknown key"),
}
QUICK = ("unknown pipeline", "--nodes", "--params typo")


def _kedro() -> list[str]:
    """``kedro`` beside this interpreter, else the kedro module of this interpreter."""
    beside = Path(sys.executable).with_name("kedro")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "kedro"]


CPU: dict[str, list[float]] = {}  # name -> CPU seconds (user + system) of each process


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _refusal(name: str, cmd: list[str], cwd: Path, says: str | None) -> float:
    before = _children_cpu()
    seconds, done = c.timed_subprocess(cmd, cwd=cwd, check=False)
    CPU.setdefault(name, []).append(_children_cpu() - before)
    output = done.stdout + done.stderr
    if done.returncode == 0 or (says is not None and says not in output):
        raise RuntimeError(f"{' '.join(cmd)} did not refuse as expected "
                           f"(exit {done.returncode}):\n{output[-3000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=c.MIN_RUNS)
    parser.add_argument("--quick", action="store_true",
                        help=f"only {', '.join(QUICK)} (smoke: not for the README)")
    args = parser.parse_args()
    kmlc, kedro = c.kmlc_executable(), _kedro()
    print(c.machine())
    print(_bytecode())
    c.quiet_logging()
    kinds = {k: v for k, v in KINDS.items() if not args.quick or k in QUICK}
    with tempfile.TemporaryDirectory(prefix="kmlc-bench-refusal-") as tmp:
        root = Path(tmp)
        project = root / "kmlc-iris"
        shutil.copytree(IRIS, project, ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts"))
        text = (project / "mlproject.yml").read_text()
        (project / "broken.yml").write_text(text.replace("datasets:", "datasests:"))
        plain = write_kedro_project(root / "kedro-iris")
        fns = {"kmlc validate": lambda: _refusal_free([kmlc, "validate"], project)}
        for kind, (kmlc_args, kedro_args, says) in kinds.items():
            fns[f"kmlc {kind}"] = (lambda k=kind, a=kmlc_args, s=says:
                                   _refusal(f"kmlc {k}", [kmlc, "run", *a], project, s))
            if kedro_args is not None:
                fns[f"kedro {kind}"] = (lambda k=kind, a=kedro_args:
                                        _refusal(f"kedro {k}", [*kedro, "run", *a], plain,
                                                 None))
        # a warm-up round first, but not under --quick (a smoke run: nobody reads its figures)
        times = c.interleave(fns, args.repeats, warmup=not args.quick)
    rows = []
    for kind in kinds:
        mine = times[f"kmlc {kind}"]
        theirs = times.get(f"kedro {kind}")
        verdict = "ok" if statistics.median(mine) <= TARGET else "OVER"
        cpu = CPU[f"kmlc {kind}"][-len(mine):]  # without the warm-up round
        rows.append((kind, c.spread(mine), c.fmt_time(statistics.median(cpu)),
                     c.spread(theirs) if theirs else
                     "runs the pipeline" if kind == "--params typo" else "-", verdict))
    c.table("kmlc run refusing a mistake vs kedro run refusing the same (whole processes, "
            f"interleaved; wall time, kmlc's CPU time; target <= {TARGET} s)",
            ("mistake", "kmlc run", "kmlc CPU", "kedro run", f"<= {TARGET} s"), rows)
    print(f"kmlc validate on the same file: {c.spread(times['kmlc validate'])}")
    return 0


def _bytecode() -> str:
    """Compile kmlc's modules to bytecode first, as ``pip install`` does for an install
    from a wheel. An editable install under ``PYTHONDONTWRITEBYTECODE=1`` (this sandbox
    sets it) never writes any, and every process would compile kmlc's source again:
    ~0.15 s that no user's installed kmlc pays."""
    package = Path(kmlc.__file__).parent
    compileall.compile_dir(package, quiet=1)
    return f"bytecode: kmlc's modules compiled ({package})"


def _refusal_free(cmd: list[str], cwd: Path) -> float:
    return c.timed_subprocess(cmd, cwd=cwd)[0]


if __name__ == "__main__":
    raise SystemExit(main())
