"""Run stage: a compiled pipeline + Kedro runner + hooks -> one MLflow run.

``run_pipeline`` plays the part of a Kedro session: it builds the catalog, calls the
pipeline hooks around the runner, opens the MLflow run before any node runs (a dead
tracking server fails fast, before any output is written), and closes the run as
FINISHED, FAILED (a node raised; everything logged so far is kept) or KILLED.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from kedro.framework.hooks import hook_impl

from kmlc.compiler.project import CompiledProject, compile_project
from kmlc.config.secrets import redact_uri
from kmlc.config.spec import RUNNERS, ProjectSpec
from kmlc.errors import KmlcError, RunError, TrackingError
from kmlc.tracking.lineage import LineageHook
from kmlc.tracking.run_hooks import FailureHook, ProgressHook, TrackingHook

__all__ = ["RUNNERS", "RunResult", "run_pipeline"]

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
    runner: str | None = None  # None: the file's `runner:` (sequential by default)
    address: str | None = None  # the Dask scheduler, for runner "dask"
    tags: Sequence[str] = ()
    nodes: Sequence[str] = ()
    from_nodes: Sequence[str] = ()
    to_nodes: Sequence[str] = ()
    from_inputs: Sequence[str] = ()
    to_outputs: Sequence[str] = ()
    namespaces: Sequence[str] = ()
    load_versions: Mapping[str, str] = field(default_factory=dict)
    quiet: bool = False  # node loggers at WARNING, as `-q`
    run_name: str | None = None
    tracking_uri: str | None = None
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


def _make_runner(name: str, options: RunOptions | None = None,
                 compiled: CompiledProject | None = None) -> Any:
    from kedro.runner import SequentialRunner, ThreadRunner

    if name not in RUNNERS:
        raise RunError(f"unknown runner '{name}'", hint=f"one of: {', '.join(RUNNERS)}")
    if name == "dask":
        from kmlc.dask_runner import DaskRunner

        spec = compiled.spec if compiled is not None else None
        address = (options.address if options else None) or (
            spec.runner.address if spec is not None else None)
        return DaskRunner(address=address,
                          workers=spec.runner.workers if spec is not None else None,
                          code=spec.code if spec is not None else (),
                          project_hooks=compiled.hooks if compiled is not None else ())
    factories: dict[str, Callable[[], Any]] = {
        "sequential": SequentialRunner, "thread": ThreadRunner, "parallel": _parallel_runner}
    return factories[name]()


def _parallel_runner() -> Any:
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
    options = replace(options, runner=options.runner or spec.runner.type)
    if options.logging:
        _quiet(options.verbose, spec, options.quiet)
    owned = session is None
    session = _session(spec, pipeline, options) if owned else session
    compiled = compiled or compile_project(spec)
    selected = compiled.pipeline(pipeline, tags=options.tags, nodes=options.nodes,
                                 from_nodes=options.from_nodes, to_nodes=options.to_nodes,
                                 from_inputs=options.from_inputs, to_outputs=options.to_outputs,
                                 namespaces=options.namespaces)
    cache: Any = None
    if options.force_nodes or (spec.cache if options.cache is None else options.cache):
        from kmlc.cache import RunCache  # nothing is hashed or imported without the cache

        cache = RunCache(spec, selected, force=options.force_nodes, pipeline_name=pipeline,
                         limit=spec.cache_memory_limit)
        _cache_warnings(cache)  # e.g. an unreadable index: rebuilt, never fatal
        if not (spec.cache if options.cache is None else options.cache):
            cache = None  # --force-nodes without the cache: every node runs anyway
            print("warning: --force-nodes has no effect without the cache (--cache or "
                  "`cache: true`): every node runs", file=sys.stderr)
    runner = _make_runner(str(options.runner), options, compiled)
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
    from kmlc.tracking.session import RunSession

    extra = dict(options.run_tags)
    if options.parent_run_id:
        extra["mlflow.parentRunId"] = options.parent_run_id  # as mlflow.start_run(nested=True)
    session = RunSession(spec, pipeline, runner=str(options.runner),
                         tracking_uri=options.tracking_uri, run_name=options.run_name,
                         command=options.command, extra_tags=extra,
                         base_tags=options.base_tags)
    model = spec.model is not None and pipeline == spec.model.pipeline and options.model
    session.warm((ModelJob.WARM, {}) if model else None)
    return session


def _check_inputs_exist(compiled: CompiledProject, selected: Any, pipeline: str,
                        given: set[str] | None = None) -> None:
    """What the pipeline reads but no selected node writes must be there before the run
    opens: local files that exist, and no in-memory value (a name the file declares no
    dataset for, which only a node of another pipeline produces; Kedro refuses such a run
    as it starts). ``kmlc run inference`` before any training, or a pipeline cut from the
    nodes that feed it, names them and what produces them."""
    from kedro.io import AbstractDataset

    from kmlc.config.localpath import local_path
    from kmlc.config.params import is_param_input

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
    from kmlc.config.functions import code_path

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
    shared = options.runner == "parallel"
    if session is None:
        catalog = _preload(compiled.catalog(shared_memory=shared,
                                            load_versions=options.load_versions), seams)
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
    from kmlc.tracking.active import ActiveRunNode

    failure = FailureHook()
    logged: Any = None
    kept: dict[str, Any] = {}
    try:
        # the run opens in the tracking worker while the catalog is built
        with session if seams.owned else nullcontext():
            catalog = _preload(compiled.catalog(shared_memory=shared, target=session.target,
                                                load_versions=options.load_versions), seams)
            hook = TrackingHook(spec, session.tracker, session.uri, session.wait_open(),
                                selected if cache is not None else None)
            model = _model_job(session, selected) if options.model else None
            lineage = LineageHook(spec, selected, pipeline)
            if model is not None:
                model.lineage = lineage  # logged by the model's finish, before READY
            runnable = selected if cache is None else cache.runnable(catalog, session, model)
            _cache_warnings(cache)
            # node code calling MLflow's fluent API lands in this run, in any runner
            active = runnable.__class__([n._copy(func=ActiveRunNode(n.func))
                                         for n in runnable.nodes])
            succeeded = False
            interrupted = False
            try:
                interrupted = False
                try:
                    # the model is made READY by its after_pipeline_run hook
                    _execute(compiled, active, catalog, runner, pipeline, options,
                             extra_hooks=(hook, lineage, *filter(None, [model, cache])),
                             failure=failure)
                    succeeded = True
                except BaseException as exc:
                    interrupted = isinstance(exc, KeyboardInterrupt)
                    if model is not None:  # before another job: the worker keeps one result
                        model.discard()
                    raise
                finally:
                    session.failed_node = failure.node
                    session.notes.extend(getattr(runner, "notes", ()))  # lost Dask workers
                    if cache is not None:  # the nodes that completed, even in a failed run
                        cache.finish(session.run_id, succeeded, session.notes)
                    # what a failed run read is lineage too; a model logs it when it is built
                    if not interrupted and (model is None or not succeeded):
                        _log_lineage(session, lineage)
                logged = model.result() if model is not None else None
            except BaseException:
                if model is not None:  # a run that does not finish leaves no model
                    model.discard()
                raise
            kept = _kept(catalog, seams)
        if model is not None and session.status != "FINISHED":
            model.discard()  # closed as FAILED (e.g. its parameters could not be logged)
            logged = None
        if model is not None and logged is not None:
            logged = model.register()  # only now: the run is FINISHED
    except (KmlcError, KeyboardInterrupt) as exc:
        exc.run_id = session.run_id or None  # type: ignore[union-attr]
        exc.status = session.status  # type: ignore[union-attr]
        exc.notes_ = tuple(session.notes)  # type: ignore[union-attr]
        raise
    return RunResult(session.run_id, session.status, pipeline, session.uri,
                     getattr(logged, "model_uri", None), tuple(session.notes),
                     getattr(logged, "registered_version", None),
                     getattr(logged, "promotion", None),
                     cache.line() if cache is not None else None,
                     tuple(cache.skipped) if cache is not None else (), kept,
                     session.target)


def _log_lineage(session: Any, lineage: LineageHook) -> list[tuple[str, str]]:
    """The run's persisted inputs logged as its dataset inputs, in the tracking worker;
    ``(name, digest)`` of each. A store that refuses them costs a note, not the run."""
    tracker = session.tracker
    try:
        records = lineage.records()
        if not records:
            return []
        job = tracker.start_job(_LINEAGE, {
            "tracking_uri": session.uri, "run_id": session.run_id, "records": records})
        return list(tracker.wait_job(job))
    except Exception as exc:  # called while a node's error may be on its way: never masks it
        reason = exc.message if isinstance(exc, KmlcError) else f"{type(exc).__name__}: {exc}"
        session.notes.append(f"the run's dataset inputs could not be logged: {reason}")
        return []


_LINEAGE = "kmlc.tracking.lineage:log_dataset_inputs"


class ModelJob:
    """The bound model of a training run, built in the tracking worker.

    It starts as soon as training has saved every artifact the model packs (a Kedro
    ``after_dataset_saved`` hook), so that building it overlaps the last nodes, or at
    the end of the run otherwise; it is made READY (and registered) only when the run
    succeeded, and marked FAILED when it did not. The inference plan's probe on the
    first rows of ``model.input`` (as training read them: ``after_dataset_loaded``) runs
    here, where the node modules are loaded; the worker, which has MLflow loaded, builds
    and logs the model from it.
    """

    WARM = "kmlc.model.build:warm_model_build"  # started by the session's warm-up
    _PREPARE = "kmlc.model.build:prepare_bound_model"
    _FINISH = "kmlc.model.build:finish_bound_model"
    _DISCARD = "kmlc.model.build:discard_bound_model"
    _REGISTER = "kmlc.model.build:register_bound_model"

    def __init__(self, session: Any, artifacts: set[str]):
        self.session = session
        self.waiting = set(artifacts)
        self.job: int | None = None
        self.model_id: str | None = None  # once prepared and READY
        self.logged: Any = None  # the READY model (kmlc.model.build.LoggedPipelineModel)
        self._lock = threading.Lock()
        spec = session.spec
        # a declared dataset: its first rows as read (a memory input has no example)
        self._input = spec.model.input if spec.model.input in spec.datasets else None
        self._sample: Any = None
        self._probe_error: Exception | None = None
        # this run's copies of the artifacts it saved, made as each is saved
        self._folder: Path | None = None
        self.staged: dict[str, str] = {}
        self._logged: Any = None  # what finish() returned, or the error it raised
        self._error: BaseException | None = None
        self._finished = False
        self.lineage: LineageHook | None = None  # the run's dataset inputs, set by the run

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        if dataset_name == self._input and self._sample is None:
            from kmlc.model.build import first_rows

            self._sample = first_rows(data)

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self) -> None:
        """The model is logged before the project's hooks see the end of the run, as
        kedro-mlflow's MlflowHook does: a project hook that registers or loads the model
        in its ``after_pipeline_run`` finds it. Its error is raised once the hooks ran."""
        # kept in self._error: the run reports it after the hooks
        with contextlib.suppress(BaseException):
            self.result()

    def result(self) -> Any:
        """The logged model: ``finish()`` once, its result or error kept for later calls."""
        if not self._finished:
            self._finished = True
            try:
                self._logged = self.finish()
            except BaseException as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._logged

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        with self._lock:
            # None: the value is not here (a Dask worker saved it, the cache restored it)
            if dataset_name in self.waiting and data is not None:
                self._stage(dataset_name, data)
            self.waiting.discard(dataset_name)
            if not self.waiting and self.job is None:
                self._start()

    def _stage(self, name: str, data: Any) -> None:
        from kmlc.model.build import stage_artifact

        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="kmlc-artifacts-"))
        try:
            self.staged[name] = str(stage_artifact(self.session.spec, name, data,
                                                   self._folder))
        except Exception as exc:  # the model reads the catalog's file, as without a copy
            self.session.notes.append(f"the model packs '{name}' from its file: it could "
                                      f"not be copied as saved ({type(exc).__name__}: {exc})")

    def _start(self) -> None:
        s = self.session
        probe = None
        if self._probe_error is not None:
            return
        if self._sample is None and self._input is not None:
            # training did not read model.input (kedro-mlflow's input_name for data only
            # inference sees): the worker loads it from the catalog, if it is there
            from kmlc.model.build import model_input_missing

            why = model_input_missing(s.spec)
            if why is not None:
                s.notes.append(f"the model has no signature and no input example: its input "
                               f"'{self._input}' could not be read ({why})")
        if self._sample is not None:  # else the worker loads model.input itself
            from kmlc.model.build import probe_model

            try:
                probe = probe_model(s.spec, self._sample, self.staged)
            except Exception as exc:  # reported when the model is due, as the worker's
                self._probe_error = exc
                return
        self.job = s.tracker.start_job(self._PREPARE, {"spec": s.spec, "run_id": s.run_id,
                                                       "tracking_uri": s.uri, "probe": probe,
                                                       "staged": dict(self.staged)})

    def _call(self, target: str, **kwargs: Any) -> Any:
        tracker = self.session.tracker
        return tracker.wait_job(tracker.start_job(target, kwargs))

    def finish(self) -> Any:
        """Make the model READY in the run (once), with the run's params and metrics; the
        run's dataset inputs (``self.lineage``) are logged first, once the model's job is
        done (the worker forgets a finished job when another starts), and named on its
        metrics. It is registered after the run closes as FINISHED (``register``)."""
        s = self.session
        with self._lock:
            if self.logged is not None or self.job == -1:
                return self.logged
            if self.job is None and self._probe_error is None:
                self._start()
            job, self.job = self.job, -1
        try:
            if self._probe_error is not None:
                if self.lineage is not None:
                    _log_lineage(s, self.lineage)
                error = self._probe_error
                raise TrackingError(error.message if isinstance(error, KmlcError)
                                    else f"{type(error).__name__}: {error}") from error
            assert job is not None
            self.model_id = s.tracker.wait_job(job)
            datasets = _log_lineage(s, self.lineage) if self.lineage is not None else []
            self.logged = self._call(self._FINISH, spec=s.spec, run_id=s.run_id,
                                     tracking_uri=s.uri, registry_uri=s.registry_uri,
                                     model_id=self.model_id, register=False,
                                     datasets=list(datasets))
            return self.logged
        except TrackingError as exc:
            raise TrackingError(
                f"the pipeline ran, but its model could not be logged to run {s.run_id} on "
                f"{redact_uri(s.uri)}: {exc.message}",
                hint="the local outputs are intact; `kmlc export-model --from-local` builds "
                     "the model from them") from exc
        finally:
            self._clean()

    def register(self) -> Any:
        """The run closed as FINISHED: register its READY model and apply model.promote."""
        s = self.session
        if self.logged is None or s.status != "FINISHED" or not s.spec.model.registered_name:
            return self.logged
        try:
            return self._call(self._REGISTER, spec=s.spec, run_id=s.run_id, tracking_uri=s.uri,
                              registry_uri=s.registry_uri, model_id=self.model_id)
        except TrackingError as exc:
            raise TrackingError(
                f"run {s.run_id} FINISHED and its model is logged ({self.logged.model_uri}), "
                f"but it could not be registered: {exc.message}",
                hint=f"`kmlc export-model --run-id {s.run_id} --register "
                     f"{s.spec.model.registered_name}` registers it") from exc

    def discard(self) -> None:
        """The run failed or was interrupted: a model being built, or already READY, is
        marked FAILED and deleted (a run that did not finish leaves no model)."""
        with self._lock:
            job, self.job = self.job, -1
        s = self.session
        try:
            with contextlib.suppress(Exception):  # the run's own error matters more
                model_id = self.model_id
                if model_id is None and job is not None and job >= 0:
                    model_id = s.tracker.wait_job(job)
                if model_id is not None:
                    self._call(self._DISCARD, run_id=s.run_id, tracking_uri=s.uri,
                               model_id=model_id)
                self.logged = None
        finally:
            self._clean()

    def _clean(self) -> None:
        """Remove this run's copies of its artifacts (the model has what it needs)."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _model_job(session: Any, selected: Any) -> ModelJob | None:
    """The model job of a training run that produces every artifact its model packs."""
    spec = session.spec
    if spec.model is None or session.pipeline != spec.model.pipeline:
        return None
    from kmlc.compiler.plan import plan_from_spec

    # the training outputs it packs (the training inputs it packs are on disk already)
    artifacts = {a.name for a in plan_from_spec(spec).artifacts if a.produced}
    missing = sorted(artifacts - set(selected.all_outputs()))
    if missing:
        session.notes.append("no model logged: this filtered run does not produce "
                             + ", ".join(missing))
        return None
    return ModelJob(session, artifacts)


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
    run_params = {"pipeline_name": pipeline_name, "runner": options.runner,
                  "tags": list(options.tags), "node_names": list(options.nodes),
                  "from_nodes": list(options.from_nodes), "to_nodes": list(options.to_nodes),
                  "env": compiled.spec.env, "project_path": str(compiled.spec.root)}
    manager.hook.before_pipeline_run(run_params=run_params, pipeline=selected, catalog=catalog)
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
