"""Benchmark: tracking overhead of ``kmlc run`` on a 200-node chain, vs Kedro and kedro-mlflow.

The chain: node i reads x(i-1) and 5 distinct parameters (1,000 parameters in all),
returns a small int; every dataset is a MemoryDataset. Reported:

(a) in process: the compiled pipeline under ``kmlc.run_pipeline`` (sqlite store already
    created, MLflow already imported) / the same Pipeline under plain Kedro (runner +
    DataCatalog with the parameters, no tracking); target <= 1.10x. kmlc runs three
    ways: with its tracking worker already running (warm: a second run in one
    process), with a cold worker (stopped before the run, so the run starts one and
    waits for it to import MLflow: what one ``run_pipeline`` call in a fresh program
    pays), and with ``KMLC_TRACKING_WORKER=0`` (every MLflow call in this process).
    CPU ratios count the worker's CPU time too;
(b) where the tracked run's time goes in the main process;
(c) the same chain as a Kedro project under kedro-mlflow 2.0.3 (KedroSession, one per
    fresh process, imports done before timing) / the same project without the plugin;
(d) wall time of the ``kmlc run`` CLI vs ``kedro run``: plain (kmlc's own venv, which
    has Kedro and MLflow but not kedro-mlflow; target: kmlc within 1.5x), and with
    kedro-mlflow (target: kmlc at least 2.5x faster); and a timeline of ``kmlc run``.

Every figure is a median with its min-max over the runs (default 5), the contenders
interleaved within each run (plain, kmlc, kedro-mlflow, then again), never in blocks.

Run: ``python tests/benchmarks/bench_run.py [--quick] [--kmf-python PATH]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

WORKER = Path(__file__).resolve().parent / "_kmf_worker.py"

# A timeline of `kmlc run` in a fresh process (one line of JSON): seconds since start at
# which each step of the main process ends; the tracking worker runs beside it.
CLI_TIMELINE = """\
import json, sys, time
start = time.perf_counter()
marks = {}
def mark(name):
    marks[name] = time.perf_counter() - start
import kmlc.cli, kmlc.run, kmlc.model.job, kmlc.tracking.session as tr
mark("kmlc + Kedro imported")
def wrap(owner, attr, before, after):
    original = getattr(owner, attr)
    def wrapper(*args, **kwargs):
        if before:
            mark(before)
        try:
            return original(*args, **kwargs)
        finally:
            mark(after)
    setattr(owner, attr, wrapper)
wrap(tr.RunSession, "__enter__", None, "file loaded + compiled, run requested")
wrap(tr.RunSession, "wait_open", "catalog built, waiting for the run", "run open (worker)")
wrap(kmlc.run, "_execute", None, "nodes done")
wrap(kmlc.model.job.ModelJob, "finish", None, "model logged")
wrap(tr.RunSession, "__exit__", None, "run closed")
sys.argv = ["kmlc", "run", "-f", sys.argv[1]]
try:
    kmlc.cli.main()
except SystemExit as exc:
    assert not exc.code, exc.code
mark("command returns")
print(json.dumps(marks))
"""


def worker_cpu() -> float:
    """CPU seconds used so far by this process's tracking worker (0 without one)."""
    from kmlc.tracking.worker import current

    remote = current()
    if remote is None:
        return 0.0
    try:
        fields = Path(f"/proc/{remote.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def kmlc_run(spec: Any, compiled: Any, runner: str, worker: bool = True
             ) -> Callable[[], None]:
    from dataclasses import replace

    from kmlc import RunOptions, run_pipeline
    from kmlc.config.runner import resolve_runner

    spec = replace(spec, runner=resolve_runner(spec.runner, runner))
    options = RunOptions(progress=False, command="bench_run")

    def run() -> None:
        saved = os.environ.get("KMLC_TRACKING_WORKER")
        os.environ["KMLC_TRACKING_WORKER"] = "1" if worker else "0"
        try:
            result = run_pipeline(spec, "__default__", options, compiled=compiled)
        finally:
            if saved is None:
                os.environ.pop("KMLC_TRACKING_WORKER", None)
            else:
                os.environ["KMLC_TRACKING_WORKER"] = saved
        assert result.status == "FINISHED", result

    return run


def close_worker() -> None:
    """Stop this process's tracking worker: the next tracked run starts a cold one."""
    from kmlc.tracking.worker import current

    remote = current()
    if remote is not None:
        remote.close()


def interleaved(fns: dict[str, Callable[[], None]], repeats: int,
                prepare: dict[str, Callable[[], None]] | None = None,
                warmup: bool = True) -> dict[str, list[float]]:
    """Wall and CPU seconds of each fn per repeat; the fns alternate within each repeat.

    Alternating spreads drift and other processes' load over all of them. The CPU time
    (this process, all threads, plus the tracking worker's) suffers less from load.
    ``prepare[name]`` runs untimed before that fn (``close_worker`` for a cold worker).
    ``warmup=False`` (``--quick``, a smoke run whose figures nobody reads): no untimed
    round first.
    """
    prepare = prepare or {}
    for name, fn in (fns.items() if warmup else ()):
        prepare.get(name, lambda: None)()
        fn()  # warm-up: imports, store creation, caches, the tracking worker
    out: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        for name, fn in fns.items():
            prepare.get(name, lambda: None)()
            start, start_cpu = time.perf_counter(), time.process_time() + worker_cpu()
            fn()
            out[name].append(time.perf_counter() - start)
            out[f"{name} cpu"].append(time.process_time() + worker_cpu() - start_cpu)
    return dict(out)


def med(values: list[float]) -> float:
    return statistics.median(values)


# ---------------------------------------------------------------- where kmlc's time goes


# (owner module or class, attribute, label); indented labels are inside the one above.
PHASES = [
    ("kmlc.tracking.session:RunSession", "__enter__", "request the run (RunSession.__enter__)"),
    ("kmlc.tracking.session", "run_tags", "  run tags"),
    ("kmlc.tracking.session", "_git", "    git commit/dirty (subprocesses)"),
    ("kmlc.compiler.project:CompiledProject", "catalog", "build catalog"),
    ("kmlc.tracking.session:RunSession", "wait_open", "wait for the run to open (worker)"),
    ("kmlc.run", "_execute", "hooks + runner (_execute)"),
    ("kmlc.tracking.run_hooks:TrackingHook", "before_pipeline_run", "  hand the params over"),
    ("kmlc.model.job:ModelJob", "finish", "log the model (wait for the worker's job, finish it)"),
    ("kmlc.tracking.session:RunSession", "__exit__", "close the run (params landed, terminated)"),
]


def phase_timers() -> AbstractContextManager[dict[str, list[float]]]:
    """Timers around kmlc's run phases (a phase this version of kmlc lacks is left out)."""
    import importlib

    targets = []
    for target, attr, label in PHASES:
        module_name, _, class_name = target.partition(":")
        owner: Any = importlib.import_module(module_name)
        if class_name:
            owner = getattr(owner, class_name)
        targets.append((owner, attr, label))
    return c.timed_attributes(targets)


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
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, no untimed warm-ups (~1 minute)")
    parser.add_argument("--nodes", type=int, default=200, help="chain length (default 200)")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"in-process runs (default {c.MIN_RUNS}, quick 3)")
    parser.add_argument("--cli-repeats", type=int, default=None,
                        help=f"subprocess runs for (c) and (d) (default {c.MIN_RUNS}, quick 1)")
    parser.add_argument("--runners", default="sequential,thread",
                        help="runners for (a), comma-separated; 'parallel' is slow on "
                             "Kedro itself (a 200-node chain takes ~30 s), so it runs on "
                             "--parallel-nodes nodes")
    parser.add_argument("--parallel-nodes", type=int, default=20)
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of one tracked run")
    c.add_kmf_option(parser)
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else c.MIN_RUNS)
    cli_repeats = args.cli_repeats or (1 if args.quick else c.MIN_RUNS)
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]

    c.quiet_logging()
    print(c.machine())
    kmf_python = c.check_kmf_python(args.kmf_python)
    import mlflow  # noqa: F401  (MLflow already imported: its import is not tracking cost)

    from kmlc import compile_project, load_project

    with tempfile.TemporaryDirectory(prefix="kmlc-bench-run-") as tmp:
        root = Path(tmp)
        results: dict[str, dict[str, list[float]]] = {}
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
                   "kmlc": kmlc_run(spec, compiled, runner),
                   "kmlc cold worker": kmlc_run(spec, compiled, runner),
                   "kmlc in process": kmlc_run(spec, compiled, runner, worker=False)}
            runs = max(2, repeats // 2) if runner == "parallel" else repeats
            results[runner] = interleaved(fns, runs, {"kmlc cold worker": close_worker},
                                          warmup=not args.quick)
            results[runner] |= {"nodes": [nodes], "runs": [runs]}

        rows = []
        for runner, res in results.items():
            nodes = int(res["nodes"][0])
            for label, key in (("worker (warm)", "kmlc"), ("cold worker", "kmlc cold worker"),
                               ("in process", "kmlc in process")):
                ratio = med(res[key]) / med(res["plain"])
                overhead = med(res[key]) - med(res["plain"])
                rows.append([runner, label, nodes, int(res["runs"][0]),
                             c.ratio_spread(res[key], res["plain"]),
                             "yes" if ratio <= 1.10 else "NO",
                             c.fmt_ratio(med(res[f"{key} cpu"]) / med(res["plain cpu"])),
                             c.spread(res["plain"]), c.spread(res["kmlc untracked"]),
                             c.spread(res[key]), f"{overhead * 1e3:.0f} ms",
                             f"{overhead / nodes * 1e3:.2f} ms"])
        c.table("(a) in-process run, chain of N nodes x 5 params: medians (min-max) over "
                "interleaved runs (kmlc: run_pipeline on sqlite, progress off; tracking in "
                "the worker process, warm or started by the run, or in process with "
                "KMLC_TRACKING_WORKER=0; CPU ratio: CPU time of this process and the worker)",
                ["runner", "tracking", "N", "runs", "kmlc/plain", "<=1.10x", "CPU ratio",
                 "plain Kedro", "kmlc untracked", "kmlc tracked", "tracking overhead",
                 "per node"], rows)

        if "sequential" in results:
            spec, compiled = specs[args.nodes]
            tracked = kmlc_run(spec, compiled, "sequential")
            breakdown(tracked, 1 if args.quick else max(3, repeats // 2), args.nodes,
                      med(results["sequential"]["plain"]))
            if args.profile:
                profile_top(tracked)

        # (c) kedro-mlflow per node, (d) CLI wall times
        kmlc_project = root / f"chain{args.nodes}" / "mlproject.yml"
        # the store kmlc's runs created (same MLflow): no schema migration is timed
        project = c.write_kmf_chain_project(
            root / "kmfchain", args.nodes,
            tracking_uri=f"sqlite:///{kmlc_project.parent / 'mlflow.db'}")
        kmlc_cmd = [c.kmlc_executable(), "run", "-f", str(kmlc_project)]
        # plain Kedro: this venv's kedro (Kedro and MLflow installed, kedro-mlflow not)
        plain_cmd = [str(Path(sys.executable).with_name("kedro")), "run"]
        plain_env = c.kmf_env(project, mlflow_on=False)
        has_kmf = importlib.util.find_spec("kedro_mlflow") is not None
        plain_label = ("kedro run, plain (this venv: no kedro-mlflow)" if not has_kmf else
                       "kedro run, this venv (kedro-mlflow installed here: hooks off, but "
                       "it imports MLflow)")

        def command(cmd: list[str], **kwargs: Any) -> Callable[[], float]:
            return lambda: c.timed_subprocess(cmd, **kwargs)[0]

        commands = {"kmlc run (sqlite)": command(kmlc_cmd),
                    plain_label: command(plain_cmd, cwd=project, env=plain_env)}
        if kmf_python is None:
            print("(c) and the kedro-mlflow rows of (d) skipped: no kedro-mlflow python")
        else:
            kmf_session(kmf_python, project, True)  # warm-up: creates the experiment
            sessions: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(cli_repeats):
                for on in (False, True):
                    sessions[on].append(kmf_session(kmf_python, project, on))
            kmf_over = [on - off for on, off in zip(sessions[True], sessions[False],
                                                    strict=True)]
            rows = [["kedro-mlflow (KedroSession.run)", c.spread(sessions[False]),
                     c.spread(sessions[True]), c.fmt_time(med(kmf_over)),
                     f"{med(kmf_over) / args.nodes * 1e3:.2f} ms",
                     c.ratio_spread(sessions[True], sessions[False])]]
            if "sequential" in results:
                seq = results["sequential"]
                kmlc_over = med(seq["kmlc"]) - med(seq["plain"])
                rows.append(["kmlc (run_pipeline, warm worker, from (a))",
                             c.spread(seq["plain"]), c.spread(seq["kmlc"]),
                             c.fmt_time(kmlc_over), f"{kmlc_over / args.nodes * 1e3:.2f} ms",
                             c.ratio_spread(seq["kmlc"], seq["plain"])])
            c.table(f"(c) kedro-mlflow 2.0.3 vs kmlc, {args.nodes}-node chain, sequential, "
                    "tracking overhead over plain Kedro: medians (min-max) over "
                    f"{cli_repeats} interleaved runs", ["", "plain Kedro", "tracked",
                                                         "overhead", "per node", "ratio"],
                    rows)
            kedro = kedro_executable(kmf_python)
            commands["kedro run (kedro-mlflow, sqlite)"] = command(
                [kedro, "run"], cwd=project, env=c.kmf_env(project, mlflow_on=True))
            commands["kedro run (kedro-mlflow venv, plugin hooks off)"] = command(
                [kedro, "run"], cwd=project, env=c.kmf_env(project, mlflow_on=False))
        # one warm-up each (the store exists already; none under --quick), then every
        # command once per run
        walls = c.interleave(commands, cli_repeats, warmup=not args.quick)
        timeline: dict[str, list[float]] = defaultdict(list)
        for _ in range(cli_repeats):
            _, done = c.timed_subprocess([sys.executable, "-c", CLI_TIMELINE,
                                          str(kmlc_project)], cwd=kmlc_project.parent)
            for name, value in json.loads(done.stdout.strip().splitlines()[-1]).items():
                timeline[name].append(value)
        c.table(f"(d) timeline of `kmlc run` in a fresh process, main process (median of "
                f"{cli_repeats}; the tracking worker imports MLflow and opens the store "
                "beside it, from the start)", ["step ends at", "time"],
                [[name, c.fmt_time(statistics.median(v))] for name, v in timeline.items()])
        kmlc_walls = walls["kmlc run (sqlite)"]
        rows = [[label, c.spread(values), c.ratio_spread(values, kmlc_walls)]
                for label, values in walls.items()]
        c.table(f"(d) CLI wall time end to end, {args.nodes}-node chain: medians (min-max) "
                f"over {cli_repeats} interleaved runs; ratio to kmlc run (targets: kmlc <= "
                "1.5x plain, kedro-mlflow >= 2.5x kmlc)", ["command", "wall", "vs kmlc run"],
                rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
