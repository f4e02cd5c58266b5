"""Run stage: a compiled pipeline + Kedro runner + hooks -> one MLflow run.

``run_pipeline`` plays the part of a Kedro session: it builds the catalog, calls the
pipeline hooks around the runner, opens the MLflow run before any node runs (a dead
tracking server fails fast, before any output is written), and closes the run as
FINISHED, FAILED (a node raised; everything logged so far is kept) or KILLED.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from kmlc.compiler.project import CompiledProject, compile_project
from kmlc.config.functions import code_path
from kmlc.config.localpath import local_path
from kmlc.config.params import is_param_input
from kmlc.config.selection import Selection
from kmlc.config.spec import ProjectSpec
from kmlc.errors import KmlcError, RunError, RunInterrupted
from kmlc.model.job import model_job, warm_up
from kmlc.runners import make_runner, runner_kind
from kmlc.tracking.active import ActiveRunNode
from kmlc.tracking.lineage import LineageHook, log_run_inputs
from kmlc.tracking.run_hooks import FailureHook, FullNodeNames, ProgressHook, TrackingHook
from kmlc.tracking.session import RunSession

__all__ = ["RunOptions", "RunResult", "run_pipeline"]

_QUIET_LOGGERS = ("kedro", "kedro_datasets", "py.warnings")  # INFO with -v
_INTERNAL_LOGGERS = ("mlflow", "alembic")  # quiet at every level


@dataclass(frozen=True)
class RunResult:
    run_id: str | None
    status: str
    pipeline: str
    tracking_uri: str | None
    model_uri: str | None = None
    notes: tuple[str, ...] = ()
    registered_version: str | None = None
    promotion: Any = None  # model.promote's decision (kmlc.model.promote.Promotion)
    cache_line: str | None = None  # what the run cache skipped, for the terminal
    skipped: tuple[str, ...] = ()  # the nodes the run cache skipped
    outputs: Mapping[str, Any] = field(default_factory=dict)  # the values asked for by `keep`
    target: Any = None  # where the run went and why (kmlc.config.target.TrackingTarget)


@dataclass(frozen=True)
class RunOptions:
    """How one run goes; the runner is the project's (``load_project(runner=...)``).

    ``kmlc run`` hands each of its options (but the project's and the runner's) to the
    field of its name: a new option of the command is one field here.
    """

    selection: Selection = field(default_factory=Selection)  # the nodes to run, as kedro run
    quiet: bool = False  # node loggers at WARNING, as `-q`
    run_name: str | None = None
    verbose: bool = False
    progress: bool | None = None  # None: a bar on a terminal, lines otherwise; False: none
    command: str | None = None
    cache: bool | None = None  # None: the file's `cache:`
    force_nodes: Sequence[str] = ()  # with the cache: run these nodes anyway
    # a sweep's trial: the run is nested under this one, with these extra tags
    parent_run_id: str | None = None
    run_tags: Mapping[str, str] = field(default_factory=dict)
    model: bool = True  # False: a training run logs no bound model (a sweep logs the best)
    base_tags: Mapping[str, str] | None = None  # the run's tags, computed once by a sweep
    logging: bool = True  # False: logging is set up already (a sweep's trials)


def _quiet(verbose: bool, spec: ProjectSpec | None = None, quiet: bool = False) -> None:
    """Logging as ``kedro run`` sets it up: node loggers shown, Kedro's dataset lines not.

    The config is ``logging:`` of the file, else the file named by KEDRO_LOGGING_CONFIG,
    else kmlc/logging.yml with each node package's logger at INFO. It goes through Kedro's
    ``configure_logging`` (the parallel runner's workers get it too); ``-v`` shows Kedro's
    INFO lines, ``-q`` hides the node loggers' INFO lines.
    """
    from importlib import resources

    import yaml

    own = str(resources.files("kmlc").joinpath("logging.yml"))
    user_file = os.environ.get("KEDRO_LOGGING_CONFIG")
    if user_file == own:
        user_file = None
    if "kedro.framework.project" not in sys.modules:
        os.environ.setdefault("KEDRO_LOGGING_CONFIG", own)  # read when Kedro is imported
    from kedro.framework.project import configure_logging

    packages = sorted({n.module_name.split(".")[0] for n in spec.nodes} if spec else set())
    node_level = "WARNING" if quiet else "INFO"
    if spec is not None and spec.logging is not None:
        config = (dict(spec.logging) if not isinstance(spec.logging, str) else
                  yaml.safe_load((spec.root / spec.logging).read_text("utf-8")))
    elif user_file:
        config = yaml.safe_load(Path(user_file).read_text("utf-8"))
    else:
        config = yaml.safe_load(Path(own).read_text("utf-8"))
        config["loggers"].update({name: {"level": node_level} for name in packages})
    try:
        configure_logging(config)
    except (ValueError, TypeError, AttributeError, ImportError) as exc:
        where = "`logging:`" if spec is not None and spec.logging is not None else (
            f"KEDRO_LOGGING_CONFIG ({user_file})" if user_file else "kmlc/logging.yml")
        raise RunError(f"the logging config of {where} is not valid: {exc}",
                       hint="a logging.config.dictConfig mapping with `version: 1`",
                       code="KMLC605") from exc
    if verbose:
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
    if quiet:
        for name in packages:
            logging.getLogger(name).setLevel(logging.WARNING)
    for name in _INTERNAL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGINT raise ``KeyboardInterrupt`` while the pipeline runs, whatever
    disposition the process inherited (one started in the background inherits SIGINT
    ignored)."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def run_pipeline(spec: ProjectSpec, pipeline: str = "__default__",
                 options: RunOptions | None = None,
                 compiled: CompiledProject | None = None, *,
                 values: Mapping[str, Any] | None = None, keep: Sequence[str] = (),
                 session: Any = None) -> RunResult:
    """Run ``pipeline`` of ``spec`` with MLflow tracking (unless disabled for it).

    The seams of a sweep (``kmlc.sweep``): ``values`` are datasets' values put in the
    catalog before the run (what ran once, for every trial); ``keep`` names the datasets
    whose values the result hands back (``RunResult.outputs``); ``session`` is a run
    already open (the sweep's parent) to run in, left open.
    """
    options = options or RunOptions()
    if options.logging:
        _quiet(options.verbose, spec, options.quiet)
    owned = session is None
    session = _session(spec, pipeline, options) if owned else session
    compiled = compiled or compile_project(spec)
    selected = compiled.pipeline(pipeline, options.selection)
    cache: Any = None
    if options.force_nodes or (spec.cache if options.cache is None else options.cache):
        from kmlc.cache import RunCache  # lazy by design: only a run that uses it

        cache = RunCache(spec, selected, force=options.force_nodes, pipeline_name=pipeline,
                         limit=spec.cache_memory_limit)
        _cache_warnings(cache)  # e.g. an unreadable index: rebuilt, never fatal
        if not (spec.cache if options.cache is None else options.cache):
            cache = None  # --force-nodes without the cache: every node runs anyway
            print("warning: --force-nodes has no effect without the cache (--cache or "
                  "`cache: true`): every node runs", file=sys.stderr)
    runner = make_runner(spec, compiled.hooks)
    if cache is not None and hasattr(runner, "cache"):
        runner.cache = cache  # the parallel runner tells it when a node's result is back
    _check_inputs_exist(compiled, selected, pipeline, set(values or ()))
    # a Dask runner connects to its cluster (and ships the code) before the run opens
    # SIGTERM is an interrupt for the whole run, as Ctrl-C: the run closes as KILLED
    with _code_on_pythonpath(spec), _terminate_as_interrupt(), \
            (runner if hasattr(runner, "__enter__") else nullcontext()):
        return _run(spec, pipeline, options, compiled, selected, runner, session, cache,
                    _Seams(dict(values or {}), tuple(keep), owned))


@dataclass(frozen=True)
class _Seams:
    values: dict[str, Any]
    keep: tuple[str, ...]
    owned: bool  # the run is this call's to open and close


def _preload(catalog: Any, seams: _Seams) -> Any:
    for name, value in seams.values.items():
        catalog[name] = value
    return catalog


def _kept(catalog: Any, seams: _Seams) -> dict[str, Any]:
    return {name: catalog.load(name) for name in seams.keep}


def _cache_warnings(cache: Any) -> None:
    """Print what the run cache found wrong and worked around (a damaged index or record:
    the nodes concerned run)."""
    for warning in cache.new_warnings() if cache is not None else ():
        print(f"warning: {warning}", file=sys.stderr)


def _session(spec: ProjectSpec, pipeline: str, options: RunOptions) -> Any:
    """The run's session (None when tracking is disabled for ``pipeline``), warming up.

    Before anything is compiled the tracking worker is asked to open the store and, for
    a training run with a model, to import what building the model will need: both
    overlap the compilation and the nodes instead of following them.
    """
    if pipeline in spec.tracking.disable_for:
        return None

    extra = dict(options.run_tags)
    if options.parent_run_id:
        extra["mlflow.parentRunId"] = options.parent_run_id  # as mlflow.start_run(nested=True)
    session = RunSession(spec, pipeline, runner=spec.runner.type,
                         run_name=options.run_name,
                         command=options.command, extra_tags=extra,
                         base_tags=options.base_tags)
    model = spec.model is not None and pipeline == spec.model.pipeline and options.model
    session.warm(warm_up() if model else None)
    return session


def _check_inputs_exist(compiled: CompiledProject, selected: Any, pipeline: str,
                        given: set[str] | None = None) -> None:
    """What the pipeline reads but no selected node writes must be there before the run
    opens: local files that exist, and no in-memory value (a name the file declares no
    dataset for, which only a node of another pipeline produces; Kedro refuses such a run
    as it starts). ``kmlc run inference`` before any training, or a pipeline cut from the
    nodes that feed it, names them and what produces them."""
    from kedro.io import AbstractDataset


    spec = compiled.spec
    inputs = sorted(set(selected.inputs()) - (given or set()))
    memory = [name for name in inputs if name not in spec.datasets and not is_param_input(name)]
    if memory:
        selected_nodes = set(selected.nodes)
        # a pipeline that runs the selection with its feeders: the same one unfiltered
        # (the selection cut them off), else all nodes, else another by name
        wider = sorted((other for other, p in compiled.pipelines.items()
                        if selected_nodes <= set(p.nodes) and set(memory) <= p.all_outputs()),
                       key=lambda other: (other != pipeline, other != "__default__", other))
        command = ("`kmlc run`" if wider and wider[0] == "__default__"
                   else f"`kmlc run {wider[0]}`" if wider else "")
        if wider and wider[0] == pipeline:
            command += " with no node filter"
        them = "them" if len(memory) > 1 else "it"
        run = f"{command} runs {them} with the nodes that produce {them}, or " if wider else ""
        raise RunError(f"pipeline '{pipeline}' needs values that other nodes produce in "
                       f"memory: {', '.join(memory)}",
                       hint=f"{run}declare {them} under `datasets:` (for example "
                            f"pickle.PickleDataset) to keep {them} between runs",
                       code="KMLC604")
    missing: list[str] = []
    for name in inputs:
        ds = spec.datasets.get(name)
        local = local_path(ds, spec.root) if ds is not None and not ds.is_mlflow else None
        if ds is None or local is None:
            continue  # memory, MLflow or remote: Kedro reports those when it loads them
        config = {**{k: v for k, v in ds.config.items() if k != "run_id"},
                  "filepath" if "filepath" in ds.config else "path": str(local)}
        try:
            exists = AbstractDataset.from_config(name, config).exists()
        except Exception:  # the run reports a dataset that cannot be built
            continue
        if not exists:
            missing.append(f"{name} ({ds.filepath})")
    if missing:
        _missing_inputs(compiled, pipeline, missing, "files that do not exist yet")


def _missing_inputs(compiled: CompiledProject, pipeline: str, missing: list[str],
                    what: str) -> None:
    """Refuse the run: ``missing`` (names, each maybe followed by its path) are not there."""
    names = {item.split(" ")[0] for item in missing}
    producers = [other for other, p in compiled.pipelines.items()
                 if other not in ("__default__", pipeline) and names <= p.all_outputs()]
    producers.sort(key=lambda other: (other != "training", other))
    them = "them" if len(missing) > 1 else "it"
    nodes = sorted(n.name for n in compiled.pipelines["__default__"].nodes
                   if names & set(n.outputs))
    if producers:
        hint = f"`kmlc run {producers[0]}` produces {them}"
    elif nodes:
        hint = f"run the nodes that produce {them} first: {', '.join(nodes)}"
    else:
        hint = f"no node produces {them}: create {them} first"
    raise RunError(f"pipeline '{pipeline}' needs {what}: {', '.join(missing)}",
                   hint=hint, code="KMLC604")


@contextmanager
def _code_on_pythonpath(spec: ProjectSpec) -> Iterator[None]:
    """The project's code folders on ``sys.path`` and PYTHONPATH for the whole run, as
    ``kedro run`` has its ``src``: a node that starts a Python process copying ``sys.path``
    (MLflow's requirement inference in ``log_model``) or imports a project module late
    finds them, and so do runner worker processes."""

    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*map(str, spec.code), *filter(None, [saved])])
    try:
        with code_path(spec.code):
            yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _run(spec: ProjectSpec, pipeline: str, options: RunOptions, compiled: CompiledProject,
         selected: Any, runner: Any, session: Any, cache: Any = None,
         seams: _Seams = _Seams({}, (), True)) -> RunResult:
    shared = runner_kind(spec.runner.type).shared_memory
    load_versions = options.selection.load_versions
    if session is None:
        catalog = _preload(compiled.catalog(shared_memory=shared,
                                            load_versions=load_versions), seams)
        runnable = cache.runnable(catalog) if cache is not None else selected
        _cache_warnings(cache)
        succeeded, notes = False, list[str]()
        try:
            _execute(compiled, runnable, catalog, runner, pipeline, options,
                     extra_hooks=(cache,) if cache is not None else ())
            succeeded = True
        finally:
            if cache is not None:
                cache.finish(None, succeeded, notes)
        return RunResult(None, "FINISHED", pipeline, None, notes=tuple(notes),
                         cache_line=cache.line() if cache is not None else None,
                         skipped=tuple(cache.skipped) if cache is not None else (),
                         outputs=_kept(catalog, seams))

    failure = FailureHook()
    logged: Any = None
    kept: dict[str, Any] = {}
    try:
        # the run opens in the tracking worker while the catalog is built
        with session if seams.owned else nullcontext():
            catalog = _preload(compiled.catalog(shared_memory=shared, target=session.target,
                                                load_versions=load_versions), seams)
            hook = TrackingHook(spec, session.tracker, session.uri, session.wait_open(),
                                selected if cache is not None else None)
            lineage = LineageHook(spec, selected, pipeline)
            model = model_job(session, selected, lineage) if options.model else None
            runnable = selected if cache is None else cache.runnable(catalog, session, model)
            _cache_warnings(cache)
            # node code calling MLflow's fluent API lands in this run, in any runner
            active = runnable.__class__([n._copy(func=ActiveRunNode(n.func))
                                         for n in runnable.nodes])
            succeeded = False
            interrupted = False
            # the model job discards its model when the run does not finish
            with model if model is not None else nullcontext():
                try:
                    # the model is made READY by its after_pipeline_run hook
                    _execute(compiled, active, catalog, runner, pipeline, options,
                             extra_hooks=(hook, lineage, *filter(None, [model, cache])),
                             failure=failure)
                    succeeded = True
                except BaseException as exc:
                    interrupted = isinstance(exc, KeyboardInterrupt)
                    raise
                finally:
                    session.failed_node = failure.node
                    session.notes.extend(getattr(runner, "notes", ()))  # lost Dask workers
                    if cache is not None:  # the nodes that completed, even in a failed run
                        cache.finish(session.run_id, succeeded, session.notes)
                    if not interrupted:  # what a failed run read is lineage too (once)
                        log_run_inputs(session, lineage)
                if model is not None:
                    model.result()  # the model's error, if it could not be made READY
            kept = _kept(catalog, seams)
        if model is not None:
            logged = model.close(session.status)  # registered only if FINISHED
    except KmlcError as exc:
        exc.add_run(session.run_id, session.status, session.notes)
        raise
    except KeyboardInterrupt as exc:
        raise RunInterrupted(*exc.args, run_id=session.run_id, status=session.status,
                             notes=session.notes) from exc
    return RunResult(session.run_id, session.status, pipeline, session.uri,
                     getattr(logged, "model_uri", None), tuple(session.notes),
                     getattr(logged, "registered_version", None),
                     getattr(logged, "promotion", None),
                     cache.line() if cache is not None else None,
                     tuple(cache.skipped) if cache is not None else (), kept,
                     session.target)


def _execute(compiled: CompiledProject, selected: Any, catalog: Any, runner: Any,
             pipeline_name: str, options: RunOptions, extra_hooks: tuple[Any, ...],
             failure: FailureHook | None = None) -> None:
    from kedro.framework.hooks.manager import _create_hook_manager

    manager = _create_hook_manager()
    failure = failure or FailureHook()
    progress = ProgressHook(len(selected.nodes), interactive=options.progress)
    shown = (progress,) if options.progress is not False or options.verbose else ()
    if shown and hasattr(runner, "progress"):
        runner.progress = progress  # the parallel runner reports from this process
    for hook in (*extra_hooks, failure, *shown, *compiled.hooks):
        manager.register(hook)
    spec = compiled.spec
    run_params = {"pipeline_name": pipeline_name, "runner": spec.runner.type,
                  **options.selection.run_params(), "env": spec.env,
                  "project_path": str(spec.root)}
    manager.hook.before_pipeline_run(run_params=run_params, pipeline=selected, catalog=catalog)
    names = FullNodeNames(selected.nodes)
    logging.getLogger(FullNodeNames.LOGGER).addFilter(names)
    try:
        with _terminate_as_interrupt():
            if selected.nodes:  # the run cache may leave nothing to run
                runner.run(selected, catalog, manager)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        interrupt = _interrupt_in(exc)
        if interrupt is not None:  # a library wrapped the Ctrl-C / SIGTERM in its own error
            raise interrupt from exc
        manager.hook.on_pipeline_error(error=exc, run_params=run_params, pipeline=selected,
                                       catalog=catalog)
        failed = failure.node or _node_from_message(str(exc), selected)
        raise NodeFailure(failed, exc) from exc
    finally:
        logging.getLogger(FullNodeNames.LOGGER).removeFilter(names)
        progress.close()
    manager.hook.after_pipeline_run(run_params=run_params, run_result={}, pipeline=selected,
                                    catalog=catalog)


def _interrupt_in(exc: BaseException) -> KeyboardInterrupt | None:
    """The interrupt behind ``exc``, when one is in its chain of causes.

    A signal can land inside code that turns whatever it catches into an error of its
    own (Python 3.11 wraps an error raised in ``__set_name__``, as a SIGINT inside
    matplotlib's save is, in a ``RuntimeError``): the run was interrupted, it did not fail.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return KeyboardInterrupt(*current.args)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _node_from_message(message: str, pipeline: Any) -> str | None:
    """The node a runner's error names (Kedro: "… of node fit: …"), if it names one."""
    for node in pipeline.nodes:
        if re.search(rf"\bnode:? '?{re.escape(node.name)}(?:'|:|\s|$)", message):
            return str(node.name)
    return None


class NodeFailure(RunError):
    """A node raised; carries the node's name and the user's exception."""

    code = "KMLC610"

    def __init__(self, node: str | None, error: BaseException):
        where = f"node '{node}' failed" if node else "the pipeline failed"
        worker = getattr(error, "kmlc_worker", None)  # set by the Dask runner
        where += f" on Dask worker {worker}" if worker else ""
        super().__init__(f"{where}: {type(error).__name__}: {error}")
        self.node = node
        self.error = error
