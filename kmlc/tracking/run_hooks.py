"""The Kedro hooks kmlc adds to every run: parameter tracking, failure capture, progress.

(The project's own hooks, ``hooks:`` in the file, are instantiated by ``compiler/project.py``.)

``TrackingHook`` hands every parameter the pipeline reads to the tracker (logged in
a few ``log_batch`` calls, in the tracking worker) before the first node runs, and
does nothing per node: that is what keeps tracking nearly free. Metrics, artifacts
and models are logged by the datasets themselves, with an explicit run id, so every
Kedro runner lands them in the one run.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node

from kmlc.config.params import ALL_PARAMS, PARAMS_PREFIX, param_inputs
from kmlc.config.spec import ProjectSpec
from kmlc.tracking.batch import param_pairs

__all__ = ["FailureHook", "FullNodeNames", "ProgressHook", "TrackingHook", "params_read"]



def params_read(pipeline: Pipeline, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters the pipeline's nodes read, keyed by their dotted path."""
    inputs = pipeline.inputs() | {i for n in pipeline.nodes for i in n.inputs}
    read = param_inputs(sorted(inputs), parameters)
    out: dict[str, Any] = dict(read.pop(ALL_PARAMS, {}))
    out.update((name[len(PARAMS_PREFIX):], value) for name, value in read.items())
    return out


class TrackingHook:
    """Hands the parameters the pipeline reads to the tracker before the first node runs.

    With the tracking worker, the hook does not wait: the parameters are logged in the
    worker process while the nodes run.
    """

    def __init__(self, spec: ProjectSpec, tracker: Any, uri: str, run_id: str,
                 pipeline: Pipeline | None = None):
        self.spec = spec
        self.tracker = tracker
        self.uri = uri
        self.run_id = run_id
        self.pipeline = pipeline  # whose parameters to log (default: the one that runs)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline,
                            catalog: Any) -> None:

        options = self.spec.tracking.params
        logged = self.pipeline if self.pipeline is not None else pipeline
        pairs, tags = param_pairs(params_read(logged, self.spec.parameters),
                                  flatten=options.flatten, sep=options.sep,
                                  long_values=options.long_values, secrets=self.spec.secrets)
        self.tracker.log_params(self.uri, self.run_id, pairs, tags)


class FailureHook:
    """Remembers which node failed, for the error message and the run's tags."""

    def __init__(self) -> None:
        self.node: str | None = None

    @hook_impl
    def on_node_error(self, error: Exception, node: Node, catalog: Any, inputs: Any,
                      is_async: bool, run_id: str | None = None) -> None:
        self.node = self.node or node.name


class FullNodeNames(logging.Filter):
    """Kedro's "Node %s failed with error" names a namespaced node without its namespace
    ("Node train: train(...) -> [tree.model]"); kmlc's error, ``--nodes`` and the progress
    lines use the full name ("tree.train"). Installed on Kedro's node logger for a run,
    this filter gives Kedro's line the full name too, so one node has one name."""

    LOGGER = "kedro.pipeline.node"

    def __init__(self, nodes: Any) -> None:
        super().__init__()
        self.full = {str(n): f"{n.name}: {str(n).split(': ', 1)[-1]}" for n in nodes
                     if n.namespace and str(n).split(": ", 1)[0] != n.name}

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (isinstance(args, tuple) and args and str(record.msg).startswith("Node %s failed")
                and args[0] in self.full):
            record.args = (self.full[args[0]], *args[1:])
        return True


class ProgressHook:
    """Node progress: a rich bar on a terminal, one plain line per node otherwise, each with
    the node's own duration, and the total at the end.

    Runners whose nodes run in other processes (Kedro's ``ParallelRunner``) call no hook in
    this process: they report through ``node_done`` instead.
    """

    def __init__(self, total: int, *, interactive: bool | None = None):
        self.total = total
        self.done = 0
        self.started = time.perf_counter()
        self.interactive = sys.stderr.isatty() if interactive is None else bool(interactive)
        self._progress: Any = None
        self._task: Any = None
        self._node_started: dict[str, float] = {}

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline,
                            catalog: Any) -> None:
        self.started = time.perf_counter()
        if self.interactive:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      TextColumn("{task.completed}/{task.total}"),
                                      TimeElapsedColumn(), transient=True)
            self._task = self._progress.add_task("running", total=self.total)
            self._progress.start()

    @hook_impl
    def before_node_run(self, node: Node, catalog: Any, inputs: Any, is_async: bool,
                        run_id: str | None = None) -> None:
        self._node_started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Node, catalog: Any, inputs: Any, outputs: Any,
                       is_async: bool, run_id: str | None = None) -> None:
        started = self._node_started.pop(node.name, self.started)
        self.node_done(node.name, time.perf_counter() - started)

    def node_done(self, name: str, seconds: float) -> None:
        """One more node finished, after ``seconds`` of its own."""
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=name)
        else:
            print(f"[{self.done}/{self.total}] {name} ({seconds:.1f}s)", file=sys.stderr)

    def close(self) -> None:
        """Stop the bar and print the total (also after a failure: what did run, and how long)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self.done:
            elapsed = time.perf_counter() - self.started
            print(f"{self.done}/{self.total} nodes in {elapsed:.1f}s", file=sys.stderr)
