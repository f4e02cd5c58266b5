"""Benchmark: ``kmlc validate`` on examples/iris and on a generated 300-node file.

Reported per file: ``kmlc.check_project`` in process (warm: modules imported, median),
its first call in a fresh process (imports included), the ``kmlc validate`` CLI wall
time in a subprocess (the figure the README quotes: median with min-max over at least
5 runs, the two files and both fresh-process measurements interleaved in each run),
which heavy modules the CLI imported (MLflow must not be), and
where the in-process time goes (phase timers around the loader's stages).

Run: ``python tests/benchmarks/bench_validate.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

HEAVY = ("mlflow", "kedro.runner", "kedro.io", "pandas", "sklearn", "sqlalchemy")

PROBE = """\
import json, sys, time
start = time.perf_counter()
from kmlc.cli import main
try:
    main(["validate", "-f", sys.argv[1]], standalone_mode=True)
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "seconds": time.perf_counter() - start,
                  "imported": sorted(m for m in sys.argv[2].split(",") if m in sys.modules)}))
"""

FIRST_CALL = """\
import json, sys, time
start = time.perf_counter()
from kmlc import check_project
result = check_project(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - start, "errors": len(result.errors)}))
"""

# the loader's stages, as kmlc.config.loader names them
PHASES = ("read_document", "apply_overlays", "render_document", "schema_errors", "run_checks",
          "build_spec")


def loader_phases() -> AbstractContextManager[dict[str, list[float]]]:
    """Time each stage ``kmlc.config.loader.check_project`` calls (missing ones are skipped)."""
    import kmlc.config.loader as loader

    return c.timed_attributes([(loader, name, name) for name in PHASES])


def yaml_parsers(path: Path, repeats: int) -> list[list[str]]:
    """The YAML parse alone: ruamel round-trip (what kmlc uses) vs PyYAML's C composer.

    Both give nodes with line and column marks; this tells how much of validate is the
    pure-Python round-trip parser.
    """
    rows = []
    text = path.read_text(encoding="utf-8")

    def ruamel_rt() -> None:
        from ruamel.yaml import YAML

        YAML(typ="rt", pure=True).compose(text)

    def kmlc_parse() -> None:
        from kmlc.config.source import parse_text

        parse_text(text, path.name)

    rows.append(["kmlc.config.source.parse_text (PyYAML events, positions kept)",
                 c.fmt_time(c.median_time(kmlc_parse, repeats)[0])])
    rows.append(["ruamel.yaml rt compose (kmlc's parser until now)",
                 c.fmt_time(c.median_time(ruamel_rt, repeats)[0])])
    try:
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        def pyyaml_c() -> None:
            node = yaml.compose(text, Loader=loader)
            assert node.start_mark.line == 0

        rows.append([f"PyYAML compose ({loader.__name__}, marks kept)",
                     c.fmt_time(c.median_time(pyyaml_c, repeats)[0])])
    except ImportError:
        rows.append(["PyYAML not installed", "-"])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--nodes", type=int, default=300, help="generated file size")
    parser.add_argument("--repeats", type=int, default=None,
                        help="in-process repeats (default 15, quick 5)")
    parser.add_argument("--cli-repeats", type=int, default=None,
                        help="subprocess runs (default 7, quick 3)")
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 15)
    cli_repeats = args.cli_repeats or (3 if args.quick else 7)
    print(c.machine())

    from kmlc import check_project

    kmlc_cli = c.kmlc_executable()
    with tempfile.TemporaryDirectory(prefix="kmlc-bench-validate-") as tmp:
        root = Path(tmp)
        iris = root / "iris"
        shutil.copytree(c.IRIS, iris, ignore=shutil.ignore_patterns(
            "mlruns", "mlartifacts", "mlflow.db", "__pycache__"))
        files = {"examples/iris": iris / "mlproject.yml",
                 f"generated {args.nodes} nodes": c.write_chain_project(
                     root / "chain", args.nodes)}
        rows, import_rows, phase_rows = [], [], []

        def first_call(path: Path) -> float:
            _, done = c.timed_subprocess([sys.executable, "-c", FIRST_CALL, str(path)],
                                         cwd=path.parent)
            return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])

        def cli_wall(path: Path) -> float:
            return c.timed_subprocess([kmlc_cli, "validate", "-f", str(path)],
                                      cwd=path.parent)[0]

        fresh = c.interleave({f"{kind} {label}": (lambda f=fn, p=path: f(p))
                              for label, path in files.items()
                              for kind, fn in (("first", first_call), ("cli", cli_wall))},
                             cli_repeats)
        for label, path in files.items():
            result = check_project(path)
            assert not result.errors, result.errors
            size = f"{path.stat().st_size / 1024:.1f} KiB"
            warm, _ = c.median_time(lambda p=path: check_project(p), repeats)
            firsts, walls = fresh[f"first {label}"], fresh[f"cli {label}"]
            wall = statistics.median(walls)
            _, done = c.timed_subprocess([sys.executable, "-c", PROBE, str(path),
                                          ",".join(HEAVY)], cwd=path.parent, check=False)
            probe = json.loads(done.stdout.strip().splitlines()[-1])
            assert probe["code"] == 0, done.stderr
            assert "mlflow" not in probe["imported"], "kmlc validate imported mlflow"
            rows.append([label, size, c.fmt_time(warm), c.spread(firsts), c.spread(walls),
                         c.fmt_ratio(wall / warm)])
            import_rows.append([label, "no" if "mlflow" not in probe["imported"] else "YES",
                                ", ".join(probe["imported"]) or "none of them"])
            with loader_phases() as spent:
                for _ in range(repeats):
                    check_project(path)
            total = sum(sum(v) for v in spent.values()) / repeats
            for name, values in spent.items():
                mean = sum(values) / repeats
                phase_rows.append([label, name, c.fmt_time(mean),
                                   f"{mean / total * 100:.0f}%" if total else "-"])
            phase_rows.append([label, "(sum of stages)", c.fmt_time(total), ""])

        c.table(f"kmlc validate (in process: median of {repeats}; subprocess: median "
                f"(min-max) of {cli_repeats} interleaved runs)",
                ["file", "size", "check_project warm", "first call, fresh process",
                 "kmlc validate CLI wall", "CLI / warm"], rows)
        c.table("modules imported by `kmlc validate` (checked: " + ", ".join(HEAVY) + ")",
                ["file", "mlflow imported", "heavy modules imported"], import_rows)
        c.table("where check_project's time goes (mean per call; share of the sum of stages)",
                ["file", "stage", "time", "share"], phase_rows)
        c.table(f"YAML parse alone, {args.nodes}-node file (median of {repeats})",
                ["parser", "time"], yaml_parsers(files[f"generated {args.nodes} nodes"],
                                                 repeats))
        importtime(kmlc_cli, files["examples/iris"])
    return 0


def importtime(kmlc_cli: str, path: Path, top: int = 8) -> None:
    """Top-level imports of ``kmlc validate`` by cumulative time (python -X importtime)."""
    cmd = [sys.executable, "-X", "importtime", kmlc_cli, "validate", "-f", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=path.parent,
                          env={**os.environ, **c.QUIET_ENV})
    entries = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3:
            continue
        if not parts[1].strip().isdigit():
            continue  # the header line
        name = parts[2].rstrip()
        if len(name) - len(name.lstrip()) == 1:  # one space: imported at top level
            entries.append((int(parts[1]), name.strip()))
    entries.sort(reverse=True)
    total = sum(us for us, _ in entries)
    c.table(f"`kmlc validate` on examples/iris: top-level imports by cumulative time "
            f"(python -X importtime, one run; all top-level imports: {total / 1e6:.2f} s)",
            ["module", "cumulative"], [[n, c.fmt_time(us / 1e6)] for us, n in entries[:top]])


if __name__ == "__main__":
    raise SystemExit(main())
