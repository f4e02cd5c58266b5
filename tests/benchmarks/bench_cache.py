"""Benchmark: content-hash caching of ``kmlc run`` on a 20-node chain.

The chain: node 0 reads a JSON file (not a CSV: pandas' import would add ~1 s to every
run, cached or not, and blur what the cache saves), node i reads node i-1's pickle and
its own parameter ``n<i>.k``, burns ~0.5 s of CPU (a calibrated loop) and writes a
pickle. Reported, as wall times of the ``kmlc run`` CLI in fresh processes (median,
min-max):

- kmlc's fixed start-up: ``kmlc run`` of a project with one trivial node;
- the full run (no cache), and the full run with ``--cache`` and an empty index (the
  hashing overhead);
- the rerun with ``--cache`` after changing the parameter read by the last node (a new
  value each time, so the last node always runs and the 19 others never do);
- the rerun with ``--cache`` when nothing changed, checked to run no node.

Target: the rerun <= 15% of the full run's wall time + the fixed start-up.

Then examples/iris (issue 24, item 5): after a first ``kmlc run training --cache``, the
rerun with a new ``model.c`` (a new value each time), before and after the cache kept
memory outputs. "Before" is the same project with ``cache: {memory_limit_mb: 0}`` (no
memory value kept: what every run did until then): the split hands its outputs on in
memory, so all 5 nodes rerun; "after", only fit_classifier (it reads ``model.c``) and
evaluate. Reported: nodes rerun and wall time (median, min-max), interleaved.

Run: ``python tests/benchmarks/bench_cache.py [--quick] [--iris-only]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

N_NODES = 20

NODES = '''\
"""Node functions of the cached chain: ~0.5 s of CPU each."""

WORK = {work}


def _burn(seed):
    total = seed
    for i in range(WORK):
        total = (total * 31 + i) % 1_000_003
    return total


def first(raw, k):
    return [_burn(int(sum(raw["x"])) + k)]


def step(x, k):
    return x + [_burn(x[-1] + k)]
'''


def calibrate(seconds: float = 0.5) -> int:
    """Loop iterations of ``_burn`` that take about ``seconds`` of CPU here (CPU time, so
    that other processes' load does not shrink the work)."""
    namespace: dict[str, object] = {}
    exec(NODES.format(work=200_000), namespace)  # our own benchmark code
    start = time.process_time()
    namespace["_burn"](1)  # type: ignore[operator]
    once = time.process_time() - start
    return max(1000, int(200_000 * seconds / once))


def write_project(folder: Path, work: int) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "raw.json").write_text('{"x": [1, 2, 3]}', encoding="utf-8")
    (folder / "cache_chain.py").write_text(NODES.format(work=work), encoding="utf-8")
    lines = ["version: 1", "name: cache-chain", "tracking:", "  uri: sqlite:///mlflow.db",
             "parameters:"]
    lines += [f"  n{i:02d}: {{k: {i}}}" for i in range(N_NODES)]
    lines += ["datasets:", "  raw: {type: json.JSONDataset, filepath: data/raw.json}"]
    lines += [f"  x{i:02d}: {{type: pickle.PickleDataset, filepath: data/x{i:02d}.pkl}}"
              for i in range(N_NODES)]
    lines.append("nodes:")
    for i in range(N_NODES):
        source = "raw" if i == 0 else f"x{i - 1:02d}"
        lines.append(f"  - {{name: node_{i:02d}, func: cache_chain.{'first' if i == 0 else 'step'}"
                     f", inputs: [{source}, params:n{i:02d}.k], outputs: x{i:02d}}}")
    path = folder / "mlproject.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_trivial(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trivial.py").write_text("def one():\n    return 1\n", encoding="utf-8")
    path = folder / "mlproject.yml"
    path.write_text("version: 1\nname: trivial\ntracking: {uri: sqlite:///mlflow.db}\n"
                    "nodes:\n  - {name: one, func: trivial.one, outputs: x}\n",
                    encoding="utf-8")
    return path


def timed(kmlc: str, path: Path, *args: str) -> tuple[float, str]:
    seconds, done = c.timed_subprocess([kmlc, "run", "-f", str(path), *args], cwd=path.parent)
    return seconds, done.stdout + done.stderr


def summary(times: list[float]) -> str:
    return (f"{c.fmt_time(statistics.median(times))} "
            f"({c.fmt_time(min(times))}-{c.fmt_time(max(times))}, n={len(times)})")


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


IRIS = Path(__file__).resolve().parents[2] / "examples" / "iris"


def write_iris(folder: Path, keep_memory: bool) -> Path:
    (folder / "data").mkdir(parents=True)
    shutil.copytree(IRIS / "data" / "01_raw", folder / "data" / "01_raw")
    for name in ("mlproject.yml", "iris_nodes.py"):
        shutil.copy(IRIS / name, folder / name)
    path = folder / "mlproject.yml"
    if not keep_memory:
        path.write_text(path.read_text(encoding="utf-8") + "cache: {memory_limit_mb: 0}\n",
                        encoding="utf-8")
    return path


def iris(kmlc: str, repeats: int) -> bool:
    """The iris rerun after a new model.c, before/after; True when after reran 2 of 5."""
    root = Path(tempfile.mkdtemp(prefix="kmlc-bench-cache-iris-"))
    variants = {"before: memory outputs not kept": False, "after: memory outputs kept": True}
    try:
        paths = {label: write_iris(root / str(i), keep)
                 for i, (label, keep) in enumerate(variants.items())}
        for path in paths.values():  # the first run, which records every node
            timed(kmlc, path, "training", "--cache")
        times: dict[str, list[float]] = {label: [] for label in variants}
        reran: dict[str, set[int]] = {label: set() for label in variants}
        for r in range(repeats):
            for label, path in paths.items():
                seconds, out = timed(kmlc, path, "training", "--cache", "--params",
                                     f"model.c={2 + r}")
                line = next(x for x in out.splitlines() if x.startswith("cache:"))
                skipped = int(line.split()[2]) if line.startswith("cache: skipped") else 0
                times[label].append(seconds)
                reran[label].add(5 - skipped)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    before, after = (statistics.median(times[label]) for label in variants)
    c.table(f"examples/iris, `kmlc run training --cache --params model.c=<new>` after a "
            f"first cached run (load average at the end: {load()})",
            ["cache", "nodes rerun", "wall: median (min-max)", "/ before"],
            [[label, "/".join(map(str, sorted(reran[label]))) + " of 5", summary(times[label]),
              c.fmt_ratio(statistics.median(times[label]) / before)] for label in variants])
    ok = reran["after: memory outputs kept"] == {2}
    print(f"after: only fit_classifier and evaluate rerun: {'yes' if ok else 'NO'}; "
          f"median wall time after - before: {after - before:+.2f} s")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 5")
    parser.add_argument("--iris-only", action="store_true",
                        help="only the iris before/after (memory outputs kept)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 5
    print(c.machine())
    kmlc = c.kmlc_executable()
    if args.iris_only:
        return 0 if iris(kmlc, repeats) else 1
    work = calibrate()
    print(f"calibrated: {work} loop iterations ~ 0.5 s of CPU per node")
    root = Path(tempfile.mkdtemp(prefix="kmlc-bench-cache-"))
    try:
        trivial = write_trivial(root / "trivial")
        timed(kmlc, trivial)  # the sqlite stores are created once, outside the clock
        path = write_project(root / "chain", work)
        timed(kmlc, path)
        index = path.parent / ".kmlc" / "cache.json"
        text = path.read_text(encoding="utf-8")
        last = f"n{N_NODES - 1:02d}: {{k: {N_NODES - 1}}}"
        startup: list[float] = []
        full: list[float] = []
        cold: list[float] = []
        rerun: list[float] = []
        same: list[float] = []
        ran: list[str] = []
        lines: list[str] = []
        for r in range(repeats):  # interleaved: load from other processes hits every column
            startup.append(timed(kmlc, trivial)[0])
            path.write_text(text, encoding="utf-8")
            full.append(timed(kmlc, path)[0])
            shutil.rmtree(index.parent, ignore_errors=True)
            cold.append(timed(kmlc, path, "--cache")[0])  # every node runs and is recorded
            # a new value of the last node's parameter: it runs, the 19 others do not
            path.write_text(text.replace(last, last.replace(f"k: {N_NODES - 1}",
                                                            f"k: {100 + r}")), "utf-8")
            seconds, out = timed(kmlc, path, "--cache")
            rerun.append(seconds)
            ran.append(next(line for line in out.splitlines() if line.startswith("cache:")))
            seconds, out = timed(kmlc, path, "--cache")  # nothing changed since
            same.append(seconds)
            lines.append(next(line for line in out.splitlines() if line.startswith("cache:")))
        records = len(json.loads(index.read_text(encoding="utf-8"))["records"])
    finally:
        shutil.rmtree(root, ignore_errors=True)

    full_m, start_m, rerun_m = (statistics.median(x) for x in (full, startup, rerun))
    target = 0.15 * full_m + start_m
    c.table(f"kmlc run, {N_NODES} nodes x ~0.5 s CPU, pickles between nodes "
            f"(load average at the end: {load()})",
            ["run", "wall: median (min-max)", "/ full run"],
            [["start-up: 1 trivial node", summary(startup), c.fmt_ratio(start_m / full_m)],
             ["full run, no cache", summary(full), "1.00x"],
             ["full run, --cache, empty index", summary(cold),
              c.fmt_ratio(statistics.median(cold) / full_m)],
             ["last node's parameter changed, --cache", summary(rerun),
              c.fmt_ratio(rerun_m / full_m)],
             ["nothing changed, --cache", summary(same),
              c.fmt_ratio(statistics.median(same) / full_m)]])
    print(f"\nrerun after a change: {ran[0]}")
    print(f"rerun with nothing changed: {lines[0]}")
    print(f"records in the index at the end: {records}")
    ok_target = rerun_m <= target
    ok_nothing = all(f"skipped {N_NODES} of {N_NODES} nodes" in line for line in lines)
    ok_one = all(f"skipped {N_NODES - 1} of {N_NODES} nodes" in line for line in ran)
    print(f"target: rerun {c.fmt_time(rerun_m)} <= 15% of the full run + start-up = "
          f"{c.fmt_time(target)}: {'met' if ok_target else 'NOT met'}")
    print(f"every change rerun ran exactly 1 node: {'yes' if ok_one else 'NO'}; "
          f"every unchanged rerun ran no node: {'yes' if ok_nothing else 'NO'}")
    ok_iris = iris(kmlc, repeats)
    return 0 if ok_target and ok_nothing and ok_one and ok_iris else 1


if __name__ == "__main__":
    sys.exit(main())
