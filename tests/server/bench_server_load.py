"""Load benchmark: N concurrent ``kmlc run training`` against one real ``mlflow server``.

    python tests/server/bench_server_load.py --runs 16
    python tests/server/bench_server_load.py --runs 8 --backend sqlite --json out.json

The server uses a throwaway PostgreSQL cluster (Debian's binaries, see
tracking_servers.Postgres) and falls back to sqlite when PostgreSQL is unavailable;
artifacts are proxied through the server. Each run is the mini project of tests/run in a
folder of its own, with its own ``--params model.c=...``. Prints runs/minute and the
slowest run; every run is checked on the server (params, metrics, artifacts, models).
Exit status 1 when a run is missing anything. Not collected by pytest.
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

from tracking_servers import (
    MlflowServer,
    Postgres,
    Unavailable,
    check_run,
    kmlc_argv,
    run_concurrently,
    write_mini,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=16, help="concurrent runs (default 16)")
    parser.add_argument("--backend", choices=("auto", "postgres", "sqlite"), default="auto",
                        help="auto: postgres, else sqlite (default)")
    parser.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for all runs")
    parser.add_argument("--json", type=Path, default=None,
                        help="write the figures here (default: <tmp>/bench_server_load.json)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    os.environ.update({"DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"})

    tmp = Path(tempfile.mkdtemp(prefix="kmlc-bench-"))
    postgres: Postgres | None = None
    server: MlflowServer | None = None
    try:
        backend = "sqlite"
        backend_uri = f"sqlite:///{tmp / 'server' / 'mlflow.db'}"
        if args.backend in ("auto", "postgres"):
            try:
                postgres = Postgres.start()
                backend, backend_uri = "postgres", postgres.uri
            except Unavailable as exc:
                if args.backend == "postgres":
                    print(f"PostgreSQL unavailable: {exc}", file=sys.stderr)
                    return 2
                print(f"PostgreSQL unavailable ({exc}); falling back to sqlite")
        server = MlflowServer(backend_uri, tmp / "server", workers=args.workers).start()
        print(f"{backend}-backed mlflow server on {server.uri} ({args.workers} workers), "
              f"healthy after {server.started_in:.1f} s")

        values = [str(round(0.1 * (i + 1), 1)) for i in range(args.runs)]
        jobs = [(f"run-{i:02d}", kmlc_argv(write_mini(tmp / f"user{i:02d}"), server.uri,
                                           [f"model.c={c}"], f"bench-{i:02d}"))
                for i, c in enumerate(values)]
        print(f"{args.runs} concurrent `kmlc run training` on {os.cpu_count()} CPUs ...")
        started = time.perf_counter()
        results = run_concurrently(jobs, timeout=args.timeout)
        wall = time.perf_counter() - started

        from mlflow.tracking import MlflowClient

        client = MlflowClient(server.uri)
        problems = [p for done, c in zip(results, values, strict=True)
                    for p in check_run(client, done, c)]
        slowest = max(results, key=lambda r: r.seconds)
        figures = {
            "backend": backend,
            "runs": args.runs,
            "cpus": os.cpu_count(),
            "server_workers": args.workers,
            "server_start_seconds": round(server.started_in, 2),
            "wall_seconds": round(wall, 2),
            "runs_per_minute": round(args.runs / wall * 60, 2),
            "slowest_run": {"label": slowest.label, "run_id": slowest.run_id,
                            "seconds": round(slowest.seconds, 2)},
            "median_run_seconds": round(statistics.median(r.seconds for r in results), 2),
            "fastest_run_seconds": round(min(r.seconds for r in results), 2),
            "complete_runs": args.runs - len({p.split(":")[0] for p in problems}),
        }
        target = args.json or tmp / "bench_server_load.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(figures, indent=2))
        print(f"runs/minute: {figures['runs_per_minute']} ({args.runs} runs in {wall:.1f} s)")
        print(f"slowest run: {slowest.seconds:.1f} s ({slowest.label}, run {slowest.run_id}); "
              f"median {figures['median_run_seconds']} s, fastest "
              f"{figures['fastest_run_seconds']} s")
        print(f"complete runs: {figures['complete_runs']}/{args.runs}; figures in {target}")
        for problem in problems:
            print(f"PROBLEM {problem}", file=sys.stderr)
        return 1 if problems else 0
    finally:
        if server is not None:
            server.stop()
        if postgres is not None:
            postgres.stop()
        if args.keep:
            print(f"kept {tmp}")
        elif args.json is None:
            # keep the figures, drop the rest
            for child in tmp.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
