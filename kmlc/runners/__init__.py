"""Runners: how a run executes its nodes. One module per runner, and this table.

Each module has ``make(spec, hooks)``, which returns a Kedro runner for the project
(``spec.runner``: the file's ``runner:`` with the command line's ``--runner`` and
``--address`` over it, resolved once when the project loads). The table says what
else each needs from the run. Adding a runner is one module here and one row below,
plus its name where ``kmlc validate`` reads it without importing Kedro (the schema's
``runner.type``, ``config.spec.RUNNERS``; tests/run/test_runners.py fails until they agree).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kmlc.config.spec import ProjectSpec
from kmlc.errors import RunError
from kmlc.runners import dask, parallel, sequential, thread

__all__ = ["RUNNERS", "RunnerKind", "make_runner", "runner_kind"]


@dataclass(frozen=True)
class RunnerKind:
    """A runner: how to make it and what it needs.

    ``shared_memory``: its nodes run in other processes of this machine, so the catalog's
    memory datasets are shared-memory ones. ``in_process``: its nodes run in this process
    (a sweep's trials share values held here, so they need such a runner).
    """

    make: Callable[[ProjectSpec, Sequence[Any]], Any]
    shared_memory: bool = False
    in_process: bool = True


RUNNERS: dict[str, RunnerKind] = {
    "sequential": RunnerKind(sequential.make),
    "thread": RunnerKind(thread.make),
    "parallel": RunnerKind(parallel.make, shared_memory=True, in_process=False),
    "dask": RunnerKind(dask.make, in_process=False),
}


def runner_kind(name: str) -> RunnerKind:
    """The row of runner ``name``, else a ``RunError`` listing the runners."""
    if name not in RUNNERS:
        raise RunError(f"unknown runner '{name}'", hint=f"one of: {', '.join(RUNNERS)}")
    return RUNNERS[name]


def make_runner(spec: ProjectSpec, hooks: Sequence[Any] = ()) -> Any:
    """The Kedro runner of ``spec.runner``; ``hooks``: the project's own hooks (a runner
    whose nodes run elsewhere calls them there)."""
    return runner_kind(spec.runner.type).make(spec, hooks)
