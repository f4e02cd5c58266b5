"""Run stage: a compiled pipeline + Kedro runner + hooks -> one MLflow run.

``run_pipeline`` plays the part of a Kedro session: it builds the catalog, calls the
pipeline hooks around the runner, opens the MLflow run before any node runs (a dead
tracking server fails fast, before any output is written), and closes the run as
FINISHED, FAILED (a node raised; everything logged so far is kept) or KILLED.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from kmlc.compiler.project import CompiledProject, compile_project
from kmlc.config.spec import ProjectSpec, mask_secrets
from kmlc.errors import KmlcError, RunError
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


def _git(root: Any) -> dict[str, str]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True,
                               text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"mlflow.source.git.commit": commit.stdout.strip(),
            "kmlc.git.dirty": str(bool(dirty.stdout.strip())).lower()}


def _run_tags(spec: ProjectSpec, pipeline: str, options: RunOptions) -> dict[str, str]:
    from importlib.metadata import version

    import kedro

    import kmlc

    command = mask_secrets(options.command or shlex.join(["kmlc", *sys.argv[1:]]),
                           spec.secrets)
    tags = {
        "kmlc.pipeline": pipeline,
        "kmlc.version": kmlc.__version__,
        "kedro.version": kedro.__version__,
        "kedro_datasets.version": version("kedro-datasets"),
        "mlflow.version": version("mlflow"),
        "kmlc.command": command,
        "kmlc.file_hash": spec.rendered_hash,
        "kmlc.runner": options.runner,
        "mlflow.source.name": str(spec.path),
        "mlflow.source.type": "LOCAL",
    }
    if spec.env:
        tags["kmlc.env"] = spec.env
    tags.update(_git(spec.root))
    tags.update(spec.tracking.tags)
    return tags


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
    if pipeline in spec.tracking.disable_for:
        catalog = compiled.catalog(shared_memory=options.runner == "parallel")
        _execute(compiled, selected, catalog, runner, pipeline, options, extra_hooks=())
        return RunResult(None, "FINISHED", pipeline, None)
    from kmlc.tracking.session import TrackedRun

    tracked = TrackedRun(spec, pipeline, options, _run_tags)
    try:
        with tracked:  # the run opens in the tracking worker while the catalog is built
            catalog = compiled.catalog(shared_memory=options.runner == "parallel")
            hook = TrackingHook(spec, tracked.tracker, tracked.uri, tracked.wait_open())
            _execute(compiled, selected, catalog, runner, pipeline, options,
                     extra_hooks=(hook,), failure=tracked.failure)
            tracked.finish_model(selected, catalog)
    except (KmlcError, KeyboardInterrupt) as exc:
        exc.run_id = tracked.run_id or None  # type: ignore[union-attr]
        exc.notes_ = tuple(tracked.notes)  # type: ignore[union-attr]
        raise
    return tracked.result()


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
