"""Benchmark: tracking overhead of ``kmlc run`` on a 200-node chain, vs Kedro and kedro-mlflow.

The chain: node i reads x(i-1) and 5 distinct parameters (1,000 parameters in all),
returns a small int; every dataset is a MemoryDataset. Reported:

(a) in process: the compiled pipeline under ``kmlc.run_pipeline`` (sqlite store already
    created, MLflow already imported) / the same Pipeline under plain Kedro (runner +
    DataCatalog with the parameters, no tracking); target <= 1.10x; thread and parallel
    runner variants;
(b) kmlc's tracking cost per node, and where the tracking time goes;
(c) the same chain as a Kedro project under kedro-mlflow 2.0.3 (KedroSession, one per
    fresh process, imports done before timing) / the same project without the plugin;
(d) wall time of the ``kmlc run`` CLI vs ``kedro run`` (kedro-mlflow on and off).

Run: ``python tests/benchmarks/bench_run.py [--quick] [--kmf-python PATH]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

WORKER = Path(__file__).resolve().parent / "_kmf_worker.py"

# What `kmlc run` does, phase by phase, in a fresh process (one line of JSON).
CLI_PHASES = """\
import json, sys, time
t = [time.perf_counter()]
marks = {}
def mark(name):
    t.append(time.perf_counter()); marks[name] = t[-1] - t[-2]
import kmlc.cli, kmlc.run
mark("import kmlc.cli + kmlc.run (kedro)")
from kmlc import load_project, compile_project, run_pipeline, RunOptions
spec = load_project(sys.argv[1])
mark("load_project (read, render, validate)")
compiled = compile_project(spec)
mark("compile_project")
import mlflow
mark("import mlflow")
from mlflow.tracking import MlflowClient
MlflowClient(sys.argv[2]).search_experiments(max_results=1)
mark("first MlflowClient call (store engine, schema check)")
result = run_pipeline(spec, "__default__", RunOptions(progress=False), compiled=compiled)
assert result.status == "FINISHED"
mark("run_pipeline (tracked run)")
print(json.dumps(marks))
"""


# ---------------------------------------------------------------- plain Kedro


def feed_dict(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """What a Kedro session adds to its catalog: ``parameters`` and every ``params:`` path."""
    out: dict[str, Any] = {"parameters": dict(parameters)}

    def walk(prefix: str, value: Any) -> None:
        out[f"params:{prefix}"] = value
        if isinstance(value, Mapping):
            for key, sub in value.items():
                walk(f"{prefix}.{key}", sub)

    for key, value in parameters.items():
        walk(str(key), value)
    return out


def plain_kedro(pipeline: Any, parameters: Mapping[str, Any], runner: str) -> Callable[[], None]:
    """Kedro alone: a fresh DataCatalog with the parameters, a runner, an empty hook manager."""
    from kedro.framework.hooks.manager import _create_hook_manager
    from kedro.io import DataCatalog, SharedMemoryDataCatalog
    from kedro.runner import ParallelRunner, SequentialRunner, ThreadRunner

    runner_cls = {"sequential": SequentialRunner, "thread": ThreadRunner,
                  "parallel": ParallelRunner}[runner]
    catalog_cls = SharedMemoryDataCatalog if runner == "parallel" else DataCatalog
    feed = feed_dict(parameters)

    def run() -> None:
        catalog = catalog_cls()
        for key, value in feed.items():
            catalog[key] = value
        runner_cls().run(pipeline, catalog, _create_hook_manager())

    return run


def kmlc_run(spec: Any, compiled: Any, runner: str) -> Callable[[], None]:
    from kmlc import RunOptions, run_pipeline

    options = RunOptions(runner=runner, progress=False, command="bench_run")

    def run() -> None:
        result = run_pipeline(spec, "__default__", options, compiled=compiled)
        assert result.status == "FINISHED", result

    return run


def interleaved(fns: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median wall and CPU seconds of each fn; the fns alternate within each repeat.

    Alternating spreads drift and other processes' load over all of them; the CPU time
    (this process, all threads) is the figure to trust on a busy machine.
    """
    for fn in fns.values():
        fn()  # warm-up: imports, store creation, caches
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    out = {name: statistics.median(values) for name, values in wall.items()}
    out |= {f"{name} cpu": statistics.median(values) for name, values in cpu.items()}
    return out


# ---------------------------------------------------------------- where kmlc's time goes


# (owner module or class, attribute, label); indented labels are inside the one above.
PHASES = [
    ("kmlc.tracked_run:TrackedRun", "__enter__", "open run (TrackedRun.__enter__)"),
    ("kmlc.tracking", "open_client", "  open client + store check"),
    ("mlflow.tracking:MlflowClient", "get_experiment_by_name", "  client.get_experiment_by_name"),
    ("kmlc.run", "_run_tags", "  run tags"),
    ("kmlc.run", "_git", "    git commit/dirty (subprocesses)"),
    ("mlflow.tracking:MlflowClient", "create_run", "  client.create_run"),
    ("mlflow.tracking:MlflowClient", "log_text", "  client.log_text (mlproject.yml)"),
    ("kmlc.compiler:CompiledProject", "catalog", "build catalog"),
    ("kmlc.run", "_execute", "hooks + runner (_execute)"),
    ("kmlc.hooks:TrackingHook", "before_pipeline_run", "  log params (TrackingHook)"),
    ("mlflow.tracking:MlflowClient", "log_batch", "    client.log_batch"),
    ("kmlc.tracked_run:TrackedRun", "finish_model", "finish_model"),
    ("kmlc.tracked_run:TrackedRun", "__exit__", "close run (TrackedRun.__exit__)"),
    ("mlflow.tracking:MlflowClient", "set_terminated", "  client.set_terminated"),
]


@contextmanager
def phase_timers() -> Iterator[dict[str, list[float]]]:
    """Wrap kmlc's run phases and MLflow client calls with timers, in this process only.

    ``functools.wraps`` keeps pluggy's hook marker, so wrapped hooks still run. A phase
    that this version of kmlc does not have is left out.
    """
    import functools
    import importlib

    spent: dict[str, list[float]] = {label: [] for _, _, label in PHASES}
    saved = []
    for target, attr, label in PHASES:
        module_name, _, class_name = target.partition(":")
        owner: Any = importlib.import_module(module_name)
        if class_name:
            owner = getattr(owner, class_name)
        original = (owner.__dict__.get(attr) if isinstance(owner, type)
                    else getattr(owner, attr, None))
        if original is None:
            spent.pop(label)
            continue
        saved.append((owner, attr, original))

        @functools.wraps(original)
        def wrapper(*args: Any, __original: Any = original, __label: str = label,
                    **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                spent[__label].append(time.perf_counter() - start)

        setattr(owner, attr, wrapper)
    try:
        yield spent
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)


def breakdown(run: Callable[[], None], repeats: int, nodes: int, plain: float) -> None:
    with phase_timers() as spent:
        totals = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            totals.append(time.perf_counter() - start)
    total = statistics.median(totals)
    rows = []
    for label, values in spent.items():
        rows.append([label, f"{len(values) / repeats:g}",
                     c.fmt_time(sum(values) / repeats) if values else "-"])
    rows.append(["total kmlc run (instrumented, median)", "", c.fmt_time(total)])
    rows.append(["plain Kedro run (from (a))", "", c.fmt_time(plain)])
    c.table(f"(b) where kmlc's time goes, {nodes}-node chain, sequential runner "
            f"(per run, mean of {repeats} instrumented runs; indented = inside the row above)",
            ["phase", "calls/run", "time/run"], rows)


def profile_top(run: Callable[[], None], limit: int = 12) -> None:
    """cProfile of one tracked run: top functions by cumulative time outside Kedro's runner."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    for (file, line, func), (_cc, ncalls, _tt, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if ("/kmlc/" in file or "mlflow/store" in file or "mlflow/tracking" in file
                or "sqlalchemy/orm/session.py" in file):
            rows.append((cum, ncalls, f"{Path(file).parent.name}/{Path(file).name}:{line}"
                                      f"({func})"))
    rows.sort(reverse=True)
    c.table("cProfile of one tracked run (kmlc + MLflow store functions, cumulative, "
            "profiler overhead included)", ["function", "calls", "cumulative"],
            [[name, str(n), c.fmt_time(cum)] for cum, n, name in rows[:limit]])


# ---------------------------------------------------------------- kedro-mlflow side


def kmf_session(kmf_python: str, project: Path, mlflow_on: bool) -> float:
    _, done = c.timed_subprocess(
        [kmf_python, str(WORKER), "session", json.dumps({"project": str(project)})],
        cwd=project, env=c.kmf_env(project, mlflow_on=mlflow_on))
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def kedro_executable(kmf_python: str) -> str:
    return str(Path(kmf_python).with_name("kedro"))


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (~1 minute)")
    parser.add_argument("--nodes", type=int, default=200, help="chain length (default 200)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="in-process repeats (default 5, quick 3)")
    parser.add_argument("--cli-repeats", type=int, default=None,
                        help="subprocess repeats for (c) and (d) (default 3, quick 1)")
    parser.add_argument("--runners", default="sequential,thread",
                        help="runners for (a), comma-separated; 'parallel' is slow on "
                             "Kedro itself (a 200-node chain takes ~30 s), so it runs on "
                             "--parallel-nodes nodes")
    parser.add_argument("--parallel-nodes", type=int, default=20)
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of one tracked run")
    c.add_kmf_option(parser)
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    cli_repeats = args.cli_repeats or (1 if args.quick else 3)
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]

    c.quiet_logging()
    print(c.machine())
    kmf_python = c.check_kmf_python(args.kmf_python)
    import mlflow  # noqa: F401  (MLflow already imported: its import is not tracking cost)

    from kmlc import compile_project, load_project

    with tempfile.TemporaryDirectory(prefix="kmlc-bench-run-") as tmp:
        root = Path(tmp)
        results: dict[str, dict[str, float]] = {}
        specs: dict[int, tuple[Any, Any]] = {}
        for runner in runners:
            nodes = args.parallel_nodes if runner == "parallel" else args.nodes
            if nodes not in specs:
                path = c.write_chain_project(root / f"chain{nodes}", nodes)
                spec = load_project(path)
                specs[nodes] = (spec, compile_project(spec))
            spec, compiled = specs[nodes]
            untracked = dataclasses.replace(spec, tracking=dataclasses.replace(
                spec.tracking, disable_for=("__default__",)))
            pipeline = compiled.pipelines["__default__"]
            fns = {"plain": plain_kedro(pipeline, spec.parameters, runner),
                   "kmlc untracked": kmlc_run(untracked, compiled, runner),
                   "kmlc": kmlc_run(spec, compiled, runner)}
            runs = max(2, repeats // 2) if runner == "parallel" else repeats
            results[runner] = interleaved(fns, runs) | {"nodes": nodes, "runs": runs}

        rows = []
        for runner, res in results.items():
            nodes = int(res["nodes"])
            overhead = res["kmlc"] - res["plain"]
            rows.append([runner, nodes, int(res["runs"]), c.fmt_time(res["plain"]),
                         c.fmt_time(res["kmlc untracked"]), c.fmt_time(res["kmlc"]),
                         c.fmt_ratio(res["kmlc"] / res["plain"]),
                         "yes" if res["kmlc"] / res["plain"] <= 1.10 else "NO",
                         c.fmt_ratio(res["kmlc cpu"] / res["plain cpu"]),
                         f"{overhead * 1e3:.0f} ms", f"{overhead / nodes * 1e3:.2f} ms"])
        c.table("(a)+(b) in-process run, chain of N nodes x 5 params, wall medians "
                "(kmlc: run_pipeline on sqlite, progress off; CPU ratio: process CPU time)",
                ["runner", "N", "runs", "plain Kedro", "kmlc untracked", "kmlc tracked",
                 "kmlc/plain", "<=1.10x", "CPU ratio", "tracking overhead", "per node"],
                rows)

        if "sequential" in results:
            spec, compiled = specs[args.nodes]
            tracked = kmlc_run(spec, compiled, "sequential")
            breakdown(tracked, max(3, repeats // 2), args.nodes,
                      results["sequential"]["plain"])
            if args.profile:
                profile_top(tracked)

        # (c) kedro-mlflow per node, (d) CLI wall times
        kmlc_project = root / f"chain{args.nodes}" / "mlproject.yml"
        kmlc_cmd = [c.kmlc_executable(), "run", "-f", str(kmlc_project)]
        c.timed_subprocess(kmlc_cmd)  # warm-up (the store exists already)
        cli_rows = [("kmlc run (sqlite)", c.median_subprocess(kmlc_cmd, cli_repeats))]
        if kmf_python is None:
            print("(c) and the kedro rows of (d) skipped: no kedro-mlflow python")
        else:
            # the store kmlc's runs created (same MLflow): no schema migration is timed
            project = c.write_kmf_chain_project(
                root / "kmfchain", args.nodes,
                tracking_uri=f"sqlite:///{kmlc_project.parent / 'mlflow.db'}")
            kmf_session(kmf_python, project, True)  # warm-up: creates the experiment
            sessions: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(cli_repeats):
                for on in (False, True):
                    sessions[on].append(kmf_session(kmf_python, project, on))
            plain_s = statistics.median(sessions[False])
            kmf_s = statistics.median(sessions[True])
            kmlc_over = results.get("sequential", {}).get("kmlc", 0.0) - results.get(
                "sequential", {}).get("plain", 0.0)
            c.table(f"(c) kedro-mlflow 2.0.3 vs kmlc, {args.nodes}-node chain, sequential, "
                    f"tracking overhead over plain Kedro (median of {cli_repeats})",
                    ["", "plain Kedro", "tracked", "overhead", "per node", "ratio"],
                    [["kedro-mlflow (KedroSession.run)", c.fmt_time(plain_s),
                      c.fmt_time(kmf_s), c.fmt_time(kmf_s - plain_s),
                      f"{(kmf_s - plain_s) / args.nodes * 1e3:.2f} ms",
                      c.fmt_ratio(kmf_s / plain_s)]]
                    + ([["kmlc (run_pipeline, from (a))",
                         c.fmt_time(results["sequential"]["plain"]),
                         c.fmt_time(results["sequential"]["kmlc"]), c.fmt_time(kmlc_over),
                         f"{kmlc_over / args.nodes * 1e3:.2f} ms",
                         c.fmt_ratio(results["sequential"]["kmlc"]
                                     / results["sequential"]["plain"])]]
                       if "sequential" in results else []))
            kedro = kedro_executable(kmf_python)
            for label, on in (("kedro run (kedro-mlflow, sqlite)", True),
                              ("kedro run (plugin hooks off)", False)):
                wall = c.median_subprocess([kedro, "run"], cli_repeats, cwd=project,
                                           env=c.kmf_env(project, mlflow_on=on))
                cli_rows.append((label, wall))
        phases: dict[str, list[float]] = defaultdict(list)
        db = f"sqlite:///{kmlc_project.parent / 'mlflow.db'}"
        for _ in range(cli_repeats):
            _, done = c.timed_subprocess([sys.executable, "-c", CLI_PHASES, str(kmlc_project),
                                          db], cwd=kmlc_project.parent)
            for name, value in json.loads(done.stdout.strip().splitlines()[-1]).items():
                phases[name].append(value)
        c.table(f"(d) where `kmlc run` wall time goes: its phases in a fresh process "
                f"(median of {cli_repeats})", ["phase", "time"],
                [[name, c.fmt_time(statistics.median(v))] for name, v in phases.items()]
                + [["sum", c.fmt_time(sum(statistics.median(v) for v in phases.values()))]])
        kmlc_wall = cli_rows[0][1]
        rows = [[label, c.fmt_time(wall), c.fmt_ratio(wall / kmlc_wall)]
                for label, wall in cli_rows]
        c.table(f"(d) CLI wall time end to end, {args.nodes}-node chain "
                f"(median of {cli_repeats}; ratio to kmlc run)",
                ["command", "wall", "vs kmlc run"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
