"""A real Dask cluster for the tests: ``dask scheduler`` and two ``dask worker`` processes
(1 thread each, no nanny) in a folder without the project and with no PYTHONPATH, so the
project's code reaches the workers only through the dask runner's upload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DaskCluster"]


class DaskCluster:
    """``dask scheduler`` and ``dask worker`` processes in a folder without the project."""

    def __init__(self, folder: Path, env: Mapping[str, str] | None = None, workers: int = 2):
        self.folder = folder
        self.scheduler_file = folder / "scheduler.json"
        clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.env = {**clean, "DASK_DISTRIBUTED__WORKER__DAEMON": "False", **(env or {})}
        self.procs: list[subprocess.Popen[bytes]] = []
        self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(self.scheduler_file))
        deadline = time.monotonic() + 60
        while not self.scheduler_file.exists():
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        self.workers = [self.add_worker() for _ in range(workers)]
        if workers:
            self.client().wait_for_workers(workers, timeout=120)

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        # this interpreter's dask: the cluster runs the kmlc under test (a `dask` found
        # on PATH may belong to another environment, with another kmlc)
        log = (self.folder / f"{args[0]}-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=self.folder,
                                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def add_worker(self) -> subprocess.Popen[bytes]:
        return self._start("worker", "--scheduler-file", str(self.scheduler_file),
                           "--nthreads", "1", "--no-nanny", "--no-dashboard",
                           "--local-directory", str(self.folder / "work"))

    def client(self) -> object:
        from distributed import Client

        if not hasattr(self, "_client"):
            self._client = Client(self.address, timeout="30s")
        return self._client

    def stop(self) -> None:
        if hasattr(self, "_client"):
            self._client.close()
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait(timeout=30)
