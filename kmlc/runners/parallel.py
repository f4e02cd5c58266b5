"""The parallel runner: Kedro's ``ParallelRunner``, reporting progress from this process."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from kmlc.config.spec import ProjectSpec
from kmlc.tracking.run_hooks import ProgressHook

__all__ = ["make"]


def make(spec: ProjectSpec, hooks: Sequence[Any] = ()) -> Any:
    """Kedro's ``ParallelRunner``, reporting progress from this process.

    Its nodes run in worker processes, where no hook of this process is called; the pool
    notes when each node is handed to a worker and the runner, when its result is back.
    """
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing import get_context

    from kedro.runner import ParallelRunner

    class TimedPool(ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.submitted: dict[str, float] = {}

        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
            node = getattr(fn, "node", None)
            if node is not None:
                self.submitted[node.name] = time.perf_counter()
            return super().submit(fn, *args, **kwargs)

    class ProgressParallelRunner(ParallelRunner):
        progress: ProgressHook | None = None
        cache: Any = None  # the run cache (kmlc.cache.RunCache), which no hook reaches here
        _pool: TimedPool | None = None

        def _get_executor(self, max_workers: int) -> Any:
            context = os.environ.get("KEDRO_MP_CONTEXT")  # as Kedro's own _get_executor
            if context not in ("fork", "spawn", "forkserver"):
                context = None
            self._pool = TimedPool(max_workers=max_workers, mp_context=get_context(context))
            return self._pool

        def _release_datasets(  # type: ignore[override]  # called on the instance, after each node
                self, node: Any, *args: Any, **kwargs: Any) -> None:
            super()._release_datasets(node, *args, **kwargs)  # after each node, here
            if self.cache is not None:
                self.cache.saved_elsewhere(node)
            if self.progress is not None and self._pool is not None:
                started = self._pool.submitted.pop(node.name, self.progress.started)
                self.progress.node_done(node.name, time.perf_counter() - started)

    return ProgressParallelRunner()
