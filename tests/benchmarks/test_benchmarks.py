"""The benchmark scripts still run, and report figures as the README quotes them.

Smoke only (``--quick``, the fewest runs): the figures themselves are not checked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common as c  # noqa: E402

SPREAD = re.compile(r"\d[\d.]* (?:s|ms|us) \(\d[\d.]* (?:s|ms|us)-\d[\d.]* (?:s|ms|us), n=\d+\)")


def test_interleave_alternates_the_contenders_within_each_run() -> None:
    order: list[str] = []
    prepared: list[str] = []
    fns = {name: (lambda n=name: order.append(n)) for name in ("plain", "kmlc", "kmf")}
    times = c.interleave(fns, 3, prepare={"kmlc": lambda: prepared.append("kmlc")})
    assert order == ["plain", "kmlc", "kmf"] * 4  # one warm-up round, then 3 runs
    assert prepared == ["kmlc"] * 4
    assert {name: len(values) for name, values in times.items()} == {
        "plain": 3, "kmlc": 3, "kmf": 3}
    reported = c.interleave({"self-timed": lambda: 2.5}, 5, warmup=False)
    assert reported == {"self-timed": [2.5] * 5}


def test_spread_is_median_with_min_max() -> None:
    assert c.spread([0.3, 0.1, 0.2, 0.5, 0.4]) == "300.0 ms (100.0 ms-500.0 ms, n=5)"
    assert c.ratio_spread([2.0, 3.0, 4.0], [1.0, 2.0, 2.0]) == "1.50x (1.50-2.00)"


@pytest.mark.slow
@pytest.mark.timeout(600)  # 25-40 s on 2 cores; several times that when others load them
@pytest.mark.parametrize("argv", [
    ["bench_validate.py", "--quick", "--repeats", "1", "--cli-repeats", "1", "--nodes", "20"],
    ["bench_run.py", "--quick", "--nodes", "5", "--repeats", "1", "--cli-repeats", "1",
     "--runners", "sequential"],
    ["bench_sweep.py", "--quick"],
], ids=["validate", "run", "sweep"])
def test_a_benchmark_runs_quick(argv: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KMLC_KMF_PYTHON"}
    done = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]], cwd=tmp_path,
                          env={**env, **c.QUIET_ENV}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "machine: " in done.stdout
    assert SPREAD.search(done.stdout), done.stdout[-3000:]
    if argv[0] == "bench_sweep.py":
        assert "| kmlc sweep " in done.stdout and "2 x kmlc run --params" in done.stdout
        assert re.search(r"plain tasks on the same cluster: \d+\.\d\dx", done.stdout), \
            done.stdout[-3000:]
    if argv[0] == "bench_run.py":
        assert re.search(r"\| sequential \| cold worker +\|", done.stdout), done.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_refusal_benchmark_runs_quick(tmp_path: Path) -> None:
    """bench_refusal.py: each kmlc refusal really refused (the script checks its message)
    and timed beside kedro run's refusal of the same mistake."""
    env = {k: v for k, v in os.environ.items() if k != "KMLC_KMF_PYTHON"}
    done = subprocess.run([sys.executable, str(HERE / "bench_refusal.py"), "--quick",
                           "--repeats", "1"], cwd=tmp_path, env={**env, **c.QUIET_ENV},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines()
            if line.startswith("| ") and "mistake" not in line}
    assert set(rows) == {"unknown pipeline", "--nodes", "--params typo"}, done.stdout
    assert SPREAD.search(rows["unknown pipeline"].split("|")[4]), rows  # kedro run's column
    assert "runs the pipeline" in rows["--params typo"]
