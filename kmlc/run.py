"""Run stage: a compiled pipeline + Kedro runner + hooks -> one MLflow run.

``run_pipeline`` plays the part of a Kedro session: it builds the catalog, calls the
pipeline hooks around the runner, opens the MLflow run before any node runs (a dead
tracking server fails fast, before any output is written), and closes the run as
FINISHED, FAILED (a node raised; everything logged so far is kept) or KILLED.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from kmlc.compiler.project import CompiledProject, compile_project
from kmlc.config.spec import ProjectSpec
from kmlc.errors import KmlcError, RunError, TrackingError
from kmlc.tracking.hooks import FailureHook, ProgressHook, TrackingHook

__all__ = ["RUNNERS", "RunResult", "run_pipeline"]

RUNNERS = ("sequential", "thread", "parallel")
_QUIET_LOGGERS = ("kedro", "mlflow", "alembic", "kedro_datasets", "py.warnings")


@dataclass(frozen=True)
class RunResult:
    run_id: str | None
    status: str
    pipeline: str
    tracking_uri: str | None
    model_uri: str | None = None
    notes: tuple[str, ...] = ()
    registered_version: str | None = None


@dataclass(frozen=True)
class RunOptions:
    runner: str = "sequential"
    tags: Sequence[str] = ()
    nodes: Sequence[str] = ()
    from_nodes: Sequence[str] = ()
    to_nodes: Sequence[str] = ()
    run_name: str | None = None
    tracking_uri: str | None = None
    verbose: bool = False
    progress: bool | None = None  # None: a bar on a terminal, lines otherwise; False: none
    command: str | None = None


def _make_runner(name: str) -> Any:
    from kedro.runner import ParallelRunner, SequentialRunner, ThreadRunner

    if name not in RUNNERS:
        raise RunError(f"unknown runner '{name}'", hint=f"one of: {', '.join(RUNNERS)}")
    return {"sequential": SequentialRunner, "thread": ThreadRunner,
            "parallel": ParallelRunner}[name]()


def _quiet(verbose: bool) -> None:
    if not verbose and "kedro.framework.project" not in sys.modules:
        from importlib import resources

        quiet = resources.files("kmlc").joinpath("logging.yml")
        os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(quiet))
    level = logging.INFO if verbose else logging.WARNING
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(level)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_pipeline(spec: ProjectSpec, pipeline: str = "__default__",
                 options: RunOptions | None = None,
                 compiled: CompiledProject | None = None) -> RunResult:
    """Run ``pipeline`` of ``spec`` with MLflow tracking (unless disabled for it)."""
    options = options or RunOptions()
    _quiet(options.verbose)
    compiled = compiled or compile_project(spec)
    selected = compiled.pipeline(pipeline, tags=options.tags, nodes=options.nodes,
                                 from_nodes=options.from_nodes, to_nodes=options.to_nodes)
    runner = _make_runner(options.runner)
    with _code_on_pythonpath(spec):
        return _run(spec, pipeline, options, compiled, selected, runner)


@contextmanager
def _code_on_pythonpath(spec: ProjectSpec) -> Iterator[None]:
    """The project's code folders on PYTHONPATH for the run (runner worker processes)."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*map(str, spec.code), *filter(None, [saved])])
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _run(spec: ProjectSpec, pipeline: str, options: RunOptions, compiled: CompiledProject,
         selected: Any, runner: Any) -> RunResult:
    shared = options.runner == "parallel"
    if pipeline in spec.tracking.disable_for:
        catalog = compiled.catalog(shared_memory=shared)
        _execute(compiled, selected, catalog, runner, pipeline, options, extra_hooks=())
        return RunResult(None, "FINISHED", pipeline, None)
    from kmlc.tracking.active import ActiveRunNode
    from kmlc.tracking.session import RunSession

    session = RunSession(spec, pipeline, runner=options.runner,
                         tracking_uri=options.tracking_uri, run_name=options.run_name,
                         command=options.command)
    failure = FailureHook()
    logged: Any = None
    try:
        with session:  # the run opens in the tracking worker while the catalog is built
            catalog = compiled.catalog(shared_memory=shared, tracking_uri=session.uri)
            hook = TrackingHook(spec, session.tracker, session.uri, session.wait_open())
            # node code calling MLflow's fluent API lands in this run, in any runner
            active = selected.__class__([n._copy(func=ActiveRunNode(n.func))
                                         for n in selected.nodes])
            try:
                _execute(compiled, active, catalog, runner, pipeline, options,
                         extra_hooks=(hook,), failure=failure)
            finally:
                session.failed_node = failure.node
            logged = _log_model(session, selected, catalog, options)
    except (KmlcError, KeyboardInterrupt) as exc:
        exc.run_id = session.run_id or None  # type: ignore[union-attr]
        exc.notes_ = tuple(session.notes)  # type: ignore[union-attr]
        raise
    return RunResult(session.run_id, session.status, pipeline, session.uri,
                     getattr(logged, "model_uri", None), tuple(session.notes),
                     getattr(logged, "registered_version", None))


def _log_model(session: Any, selected: Any, catalog: Any, options: RunOptions) -> Any:
    """Log the bound inference model at the end of a training run (None if there is none)."""
    spec = session.spec
    model = spec.model
    if model is None or session.pipeline != "training":
        return None
    from kmlc.compiler.plan import plan_from_spec

    plan = plan_from_spec(spec)
    produced = selected.all_outputs()
    missing = sorted(a.name for a in plan.artifacts if a.name not in produced)
    if missing:
        session.notes.append("no model logged: this filtered run does not produce "
                             + ", ".join(missing))
        return None
    from kmlc.model.build import log_pipeline_model

    input_data = catalog.load(model.input)
    try:
        return log_pipeline_model(spec, run_id=session.run_id, tracking_uri=session.uri,
                                  registry_uri=session.registry_uri, input_data=input_data)
    except KmlcError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:500]
        raise TrackingError(
            f"the pipeline ran, but its model could not be logged to run {session.run_id} "
            f"on {session.uri}: {type(exc).__name__}: {first}",
            hint="the local outputs are intact; `kmlc export-model --from-local` builds "
                 "the model from them") from exc


def _execute(compiled: CompiledProject, selected: Any, catalog: Any, runner: Any,
             pipeline_name: str, options: RunOptions, extra_hooks: tuple[Any, ...],
             failure: FailureHook | None = None) -> None:
    from kedro.framework.hooks.manager import _create_hook_manager

    manager = _create_hook_manager()
    failure = failure or FailureHook()
    progress = ProgressHook(len(selected.nodes), interactive=options.progress)
    shown = (progress,) if options.progress is not False or options.verbose else ()
    for hook in (*extra_hooks, failure, *shown, *compiled.hooks):
        manager.register(hook)
    run_params = {"pipeline_name": pipeline_name, "runner": options.runner,
                  "tags": list(options.tags), "node_names": list(options.nodes),
                  "from_nodes": list(options.from_nodes), "to_nodes": list(options.to_nodes),
                  "env": compiled.spec.env, "project_path": str(compiled.spec.root)}
    manager.hook.before_pipeline_run(run_params=run_params, pipeline=selected, catalog=catalog)
    try:
        with _terminate_as_interrupt():
            runner.run(selected, catalog, manager)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        manager.hook.on_pipeline_error(error=exc, run_params=run_params, pipeline=selected,
                                       catalog=catalog)
        failed = failure.node or _node_from_message(str(exc), selected)
        raise NodeFailure(failed, exc) from exc
    finally:
        progress.close()
    manager.hook.after_pipeline_run(run_params=run_params, run_result={}, pipeline=selected,
                                    catalog=catalog)


def _node_from_message(message: str, pipeline: Any) -> str | None:
    for node in pipeline.nodes:
        if node.name in message:
            return str(node.name)
    return None


class NodeFailure(RunError):
    """A node raised; carries the node's name and the user's exception."""

    code = "KMLC610"

    def __init__(self, node: str | None, error: BaseException):
        where = f"node '{node}' failed" if node else "the pipeline failed"
        super().__init__(f"{where}: {type(error).__name__}: {error}")
        self.node = node
        self.error = error
