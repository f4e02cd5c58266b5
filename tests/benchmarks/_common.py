"""Shared helpers of the kmlc benchmarks: timing, tables, generated projects.

Not a test module (no ``test_`` prefix): pytest never collects the benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "examples" / "iris"
QUIET_ENV = {"DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
             "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
             "PYTHONWARNINGS": "ignore", "GIT_PYTHON_REFRESH": "quiet"}
os.environ.update(QUIET_ENV)

PARAM_KEYS = ("a", "b", "c", "d", "e")
# every figure the README quotes is a median with min-max over at least this many runs,
# the contenders interleaved within each run (--quick modes may use fewer: smoke only)
MIN_RUNS = 5


# ---------------------------------------------------------------- timing


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls, after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def median_calls(fn: Callable[[], Any], seconds: float = 2.0, max_calls: int = 500,
                 min_calls: int = 5) -> float:
    """Median seconds per call of ``fn()``, over as many calls as fit in about ``seconds``."""
    fn()
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    calls = int(min(max_calls, max(min_calls, seconds / max(once, 1e-6))))
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_subprocess(cmd: Sequence[str], *, cwd: Path | str | None = None,
                     env: dict[str, str] | None = None, check: bool = True,
                     timeout: float = 600) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``cmd``; return (wall seconds, completed process)."""
    full_env = {**os.environ, **QUIET_ENV, **(env or {})}
    start = time.perf_counter()
    done = subprocess.run(list(cmd), cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    elapsed = time.perf_counter() - start
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {done.returncode}:\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed, done


def median_subprocess(cmd: Sequence[str], repeats: int, **kwargs: Any) -> float:
    return statistics.median(timed_subprocess(cmd, **kwargs)[0] for _ in range(repeats))


def interleave(fns: dict[str, Callable[[], float | None]], runs: int, *,
               prepare: dict[str, Callable[[], None]] | None = None,
               warmup: bool = True) -> dict[str, list[float]]:
    """Seconds of each fn per run; within each run every fn once, in turn (never in blocks).

    Interleaving spreads the drift and the bursts of other processes' load over all the
    contenders instead of one. A fn that returns a number reports its own seconds (a
    subprocess that timed itself); else its wall time is taken. ``prepare[name]`` runs
    before that fn, untimed (e.g. stopping a worker so that the fn starts a cold one).
    """
    prepare = prepare or {}
    if warmup:
        for name, fn in fns.items():
            prepare.get(name, lambda: None)()
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            prepare.get(name, lambda: None)()
            start = time.perf_counter()
            reported = fn()
            elapsed = time.perf_counter() - start
            times[name].append(float(reported) if reported is not None else elapsed)
    return times


def spread(values: Sequence[float]) -> str:
    """``median (min-max, n=N)``: the form of every figure the README quotes."""
    if not values:
        return "-"
    return (f"{fmt_time(statistics.median(values))} ({fmt_time(min(values))}-"
            f"{fmt_time(max(values))}, n={len(values)})")


def ratio_spread(values: Sequence[float], base: Sequence[float]) -> str:
    """The ratio of the medians, with the min-max of the per-run ratios."""
    per_run = [v / b for v, b in zip(values, base, strict=True)]
    return (f"{statistics.median(values) / statistics.median(base):.2f}x "
            f"({min(per_run):.2f}-{max(per_run):.2f})")


@contextlib.contextmanager
def timed_attributes(targets: Sequence[tuple[Any, str, str]]
                     ) -> Iterator[dict[str, list[float]]]:
    """Time every call of ``owner.attr`` for each ``(owner, attr, label)``, in this process.

    Yields ``{label: [seconds per call]}``; an attribute the owner (a module or a class)
    does not have is left out. ``functools.wraps`` keeps markers such as pluggy's hook
    marker, so wrapped hooks still run. The originals are put back on exit.
    """
    import functools

    spent: dict[str, list[float]] = {}
    saved = []
    for owner, attr, label in targets:
        original = (owner.__dict__.get(attr) if isinstance(owner, type)
                    else getattr(owner, attr, None))
        if original is None:
            continue
        spent[label] = []
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


# ---------------------------------------------------------------- output


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table (also valid Markdown)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [f"\n{title}"]
    for index, row in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                     + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def machine() -> str:
    import importlib.metadata as md

    versions = []
    for dist in ("kedro", "mlflow", "kedro-datasets", "pandas", "scikit-learn"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions.append(f"{dist} {md.version(dist)}")
    cpu = platform.processor() or platform.machine()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"machine: {os.cpu_count()} cores, {cpu}, {platform.system()} "
            f"{platform.release()}; load average {load} at start; Python "
            f"{platform.python_version()}; " + ", ".join(versions))


def quiet_logging() -> None:
    """Kedro, MLflow and kmlc at WARNING, as ``kmlc run`` sets them (fair to plain Kedro)."""
    import logging
    import tempfile

    config = Path(tempfile.gettempdir()) / "kmlc-bench-logging.yml"
    config.write_text(QUIET_LOGGING_YML, encoding="utf-8")
    os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(config))
    for name in ("kedro", "kedro_datasets", "mlflow", "alembic", "py.warnings"):
        logging.getLogger(name).setLevel(logging.WARNING)


# ---------------------------------------------------------------- kedro-mlflow python


def add_kmf_option(parser: Any) -> None:
    parser.add_argument(
        "--kmf-python", default=os.environ.get("KMLC_KMF_PYTHON"),
        help="python of a venv with kedro-mlflow==2.0.3 (default: env KMLC_KMF_PYTHON; "
             "unset: the kedro-mlflow column is skipped)")


def check_kmf_python(path: str | None) -> str | None:
    """The kedro-mlflow python, or None with a printed reason."""
    if not path:
        print("kedro-mlflow column skipped: no --kmf-python and KMLC_KMF_PYTHON is unset "
              "(see tests/benchmarks/README.md)")
        return None
    if not Path(path).exists():
        print(f"kedro-mlflow column skipped: {path} does not exist")
        return None
    done = subprocess.run([path, "-c", "import kedro_mlflow, importlib.metadata as m;"
                           "print(m.version('kedro-mlflow'))"],
                          capture_output=True, text=True, env={**os.environ, **QUIET_ENV})
    if done.returncode != 0:
        print(f"kedro-mlflow column skipped: {path} cannot import kedro_mlflow")
        return None
    print(f"kedro-mlflow {done.stdout.strip()} from {path}")
    return path


def kmlc_executable() -> str:
    """The ``kmlc`` console script beside this interpreter."""
    candidate = Path(sys.executable).with_name("kmlc")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("kmlc")
    if found is None:
        raise RuntimeError("the kmlc command is not installed beside this python")
    return found


# ---------------------------------------------------------------- generated chain project

CHAIN_NODES = '''\
"""Node functions of the generated benchmark chain: trivial bodies."""


def first(a, b, c, d, e):
    return a + b + c + d + e


def step(x, a, b, c, d, e):
    return x + a
'''


def chain_parameters(n_nodes: int) -> dict[str, dict[str, int]]:
    """One group per node, 5 leaf parameters each: ``n000.a`` ... ``n199.e``."""
    return {f"n{i:03d}": {k: j + 1 for j, k in enumerate(PARAM_KEYS)} for i in range(n_nodes)}


def chain_node_inputs(i: int) -> list[str]:
    params = [f"params:n{i:03d}.{k}" for k in PARAM_KEYS]
    return params if i == 0 else [f"x{i - 1:03d}", *params]


def write_chain_project(folder: Path, n_nodes: int = 200, *, name: str = "chain") -> Path:
    """A kmlc project of ``n_nodes`` chained nodes; returns the mlproject.yml path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chain_nodes.py").write_text(CHAIN_NODES, encoding="utf-8")
    lines = ["version: 1", f"name: {name}", "tracking:", "  uri: sqlite:///mlflow.db",
             "parameters:"]
    for group, values in chain_parameters(n_nodes).items():
        inner = ", ".join(f"{k}: {v}" for k, v in values.items())
        lines.append(f"  {group}: {{{inner}}}")
    lines.append("nodes:")
    for i in range(n_nodes):
        func = "first" if i == 0 else "step"
        lines += [f"  - name: node_{i:03d}",
                  f"    func: chain_nodes.{func}",
                  f"    inputs: [{', '.join(chain_node_inputs(i))}]",
                  f"    outputs: x{i:03d}"]
    path = folder / "mlproject.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


KMF_SETTINGS = '''\
"""kedro-mlflow registers MlflowHook through its kedro.hooks entry point (the plugin).

KMF_BENCH_MLFLOW=0 disables that plugin hook: the same project as plain Kedro.
"""
import os

DISABLE_HOOKS_FOR_PLUGINS = ("kedro-telemetry",) if os.environ.get(
    "KMF_BENCH_MLFLOW", "1") == "1" else ("kedro-telemetry", "kedro_mlflow", "kedro-mlflow")
'''

QUIET_LOGGING_YML = """\
version: 1
disable_existing_loggers: false
handlers:
  console: {class: logging.StreamHandler, level: WARNING, stream: ext://sys.stderr}
loggers:
  kedro: {level: WARNING}
  kedro_mlflow: {level: WARNING}
  mlflow: {level: WARNING}
root: {level: WARNING, handlers: [console]}
"""


def write_kmf_chain_project(folder: Path, n_nodes: int = 200, *, tracking_uri: str) -> Path:
    """The same chain as a minimal Kedro project using kedro-mlflow's MlflowHook.

    Laid out by hand (no ``kedro new``): pyproject.toml, conf/base/{parameters,catalog,
    mlflow}.yml, src/kmfchain/{settings,pipeline_registry,nodes}.py.
    """
    import json

    pkg = folder / "src" / "kmfchain"
    conf = folder / "conf" / "base"
    (folder / "conf" / "local").mkdir(parents=True, exist_ok=True)
    pkg.mkdir(parents=True, exist_ok=True)
    conf.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(
        '[tool.kedro]\npackage_name = "kmfchain"\nproject_name = "kmfchain"\n'
        'kedro_init_version = "1.0.0"\nsource_dir = "src"\n', encoding="utf-8")
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "nodes.py").write_text(CHAIN_NODES, encoding="utf-8")
    (pkg / "settings.py").write_text(KMF_SETTINGS, encoding="utf-8")
    node_lines = []
    for i in range(n_nodes):
        func = "first" if i == 0 else "step"
        node_lines.append(f"        node({func}, {json.dumps(chain_node_inputs(i))}, "
                          f"'x{i:03d}', name='node_{i:03d}'),")
    (pkg / "pipeline_registry.py").write_text(
        "from kedro.pipeline import Pipeline, node\n\n"
        "from kmfchain.nodes import first, step\n\n\n"
        "def register_pipelines():\n"
        "    chain = Pipeline([\n" + "\n".join(node_lines) + "\n    ])\n"
        "    return {'__default__': chain}\n", encoding="utf-8")
    params = "\n".join(f"{g}: {{{', '.join(f'{k}: {v}' for k, v in vals.items())}}}"
                       for g, vals in chain_parameters(n_nodes).items())
    (conf / "parameters.yml").write_text(params + "\n", encoding="utf-8")
    (conf / "catalog.yml").write_text("{}\n", encoding="utf-8")
    write_kmf_mlflow_yml(conf, tracking_uri, experiment="chain-kedro-mlflow")
    (folder / "conf" / "logging.yml").write_text(QUIET_LOGGING_YML, encoding="utf-8")
    return folder


def kmf_env(project: Path, *, mlflow_on: bool = True) -> dict[str, str]:
    """Environment of a kedro-mlflow subprocess: quiet logs, plugin hook on or off."""
    return {**QUIET_ENV, "KMF_BENCH_MLFLOW": "1" if mlflow_on else "0",
            "KEDRO_LOGGING_CONFIG": str(project / "conf" / "logging.yml")}


def write_kmf_mlflow_yml(conf: Path, tracking_uri: str, *, experiment: str) -> None:
    """kedro-mlflow's config; a sqlite store (MLflow 3 refuses the ./mlruns file store)."""
    (conf / "mlflow.yml").write_text(
        "server:\n"
        f"  mlflow_tracking_uri: {tracking_uri}\n"
        "tracking:\n"
        "  experiment:\n"
        f"    name: {experiment}\n"
        "  params:\n"
        "    dict_params:\n"
        "      flatten: false\n"
        "  disable_tracking:\n"
        "    pipelines: []\n"
        "ui:\n  host: 127.0.0.1\n  port: '5000'\n", encoding="utf-8")
