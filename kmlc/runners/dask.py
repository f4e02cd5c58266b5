"""The dask runner: ``DaskRunner``, a Kedro runner over ``dask.distributed``.

Each node becomes one task on a worker, submitted up front with the futures of the
nodes it reads from as dependencies, so Dask's scheduler starts it as soon as its
inputs exist. Memory datasets travel between tasks as Dask futures; persisted
datasets are saved and loaded by the workers through their own storage. The
project's ``code:`` folders are shipped to the workers (a zip per folder, through
Dask's ``UploadFile`` worker plugin, so workers that join later get them too).

Hooks: the project's own hooks (``hooks:`` in the file) run on the worker, around
the node, where its inputs and outputs are (as Kedro's Dask deployment guide does);
kmlc's hooks (progress, failure capture, the bound model's build) get
``after_dataset_saved``/``after_node_run``/``on_node_error`` on the client as each task
ends, without the data (it stays on the workers: ``data=None``, empty mappings).

Tracking: the client holds the one MLflow run; each task carries the run id and the
store URI (the ``KMLC_RUN_ID``/``MLFLOW_*`` environment of the client) and sets them
around the node call on the worker, so datasets log into that run.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import threading
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

from kedro.io import MemoryDataset
from kedro.pipeline import Pipeline

from kmlc.config.spec import ProjectSpec
from kmlc.errors import RunError
from kmlc.tracking.session import RUN_ENV

__all__ = ["make", "require_distributed", "runner_class"]  # and DaskRunner (__getattr__)

INSTALL_HINT = 'install it with: pip install "kmlc[dask]"'
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "mlruns"}


def require_distributed() -> Any:
    """``distributed``, or a ``RunError`` saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise RunError("the dask runner needs dask.distributed, which is not installed",
                       hint=INSTALL_HINT, code="KMLC620") from exc
    return distributed


class _Upstream:
    """Placeholder for a memory input: its value comes from a producer task's result."""

    def __init__(self, copy_mode: Any):
        self.copy_mode = copy_mode


def make(spec: ProjectSpec, hooks: Sequence[Any] = ()) -> Any:
    """The runner of ``spec.runner`` (its scheduler ``address``, else a local cluster of
    ``workers``), shipping the project's code; ``hooks`` run on the workers."""
    return runner_class()(address=spec.runner.address, workers=spec.runner.workers,
                          code=spec.code, project_hooks=hooks)


_CLASS: list[type] = []


def runner_class() -> type:
    """``DaskRunner``: the body below on Kedro's ``AbstractRunner``, made on first use
    (importing ``kedro.runner`` sets up Kedro's logging: not before the run has)."""
    if not _CLASS:
        from kedro.runner import AbstractRunner

        _CLASS.append(type("DaskRunner", (_DaskRunner, AbstractRunner),
                           {"__module__": __name__, "__doc__": _DaskRunner.__doc__}))
    return _CLASS[0]


def __getattr__(name: str) -> Any:
    if name == "DaskRunner":  # ``from kmlc.runners.dask import DaskRunner``
        return runner_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _DaskRunner:
    """Runs each node as a task on a Dask cluster; see the module docstring.

    Args:
        address: the scheduler to connect to; ``None`` starts a ``LocalCluster`` of
            worker processes for the run.
        workers: workers of that local cluster (default: the cores).
        code: folders whose Python files the workers need (the project's ``code:``).
        project_hooks: hook objects that run on the workers, around each node.
        echo: where to print lost-worker reports (default: stderr).
    """

    _is_async: bool  # AbstractRunner's

    def __init__(self, address: str | None = None, workers: int | None = None,
                 code: Sequence[Path] = (), project_hooks: Sequence[Any] = (),
                 echo: Any = None, is_async: bool = False):
        super().__init__(is_async=is_async)  # type: ignore[call-arg]  # AbstractRunner's
        require_distributed()
        self.address = address
        self.workers = workers
        self.code = tuple(code)
        self.project_hooks = tuple(project_hooks)
        self.notes: list[str] = []
        self._echo = echo
        self._client: Any = None
        self._cluster: Any = None
        self._keys: dict[str, str] = {}  # task key -> node name, for lost-worker reports
        self._workers: set[str] | None = None  # the scheduler's workers, once connected
        self._watched: set[str] = set()  # the workers whose events reach ``_on_worker_event``
        self._stop_watching = threading.Event()

    # -- the cluster's lifetime -------------------------------------------------------
    def __enter__(self) -> Any:
        """Connect (or start a local cluster) and ship the code, before the run opens."""
        from distributed import Client, LocalCluster

        try:
            if self.address:
                self._client = Client(self.address, timeout="10s")
            else:
                workers = self.workers or os.cpu_count() or 1
                self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                             processes=True, dashboard_address=":0",
                                             silence_logs=40)
                self._client = Client(self._cluster)
        except (OSError, TimeoutError) as exc:
            self.close()
            where = self.address or "a local cluster"
            raise RunError(f"cannot reach the Dask scheduler at {where}: {exc}",
                           hint="start it with `dask scheduler` (and workers with "
                                "`dask worker ADDRESS`), or leave out the address to "
                                "run on a local cluster", code="KMLC621") from exc
        self._ship_code()
        with suppress(Exception):  # a scheduler gone meanwhile fails the run further on
            # the workers as of now; their events, and a look every second for new ones,
            # keep the set up to date from here on
            self._workers = set(self._client.nthreads())
            for address in self._workers:
                self._watch(address)
        self._stop_watching = threading.Event()  # one per connection: set when it closes
        threading.Thread(target=self._look_for_workers,
                         args=(self._client, self._stop_watching), daemon=True,
                         name="kmlc-dask-workers").start()
        if self.address and self._workers == set():
            # Dask waits for a worker without a word: say why nothing moves
            self._warn(f"the Dask scheduler at {self.address} has no worker: the tasks wait "
                       f"until one connects (start one with `dask worker {self.address}`)")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` while connected (inside ``with``): a sweep submits
        its trials through it, the project's code shipped to the workers."""
        return self._client

    def close(self) -> None:
        import logging

        self._stop_watching.set()
        if self._client is not None:
            for address in self._watched:
                with suppress(Exception):
                    self._client.unsubscribe_topic(address)
            self._watched = set()
            self._client.close()
            self._client = None
        if self._cluster is not None:
            # the workers of a cluster we started are ours to stop; Dask's complaints
            # about a worker that takes its time to exit are not the user's concern
            logging.getLogger("distributed").setLevel(logging.ERROR)
            self._cluster.close()
            self._cluster = None

    def _ship_code(self) -> None:
        from distributed.diagnostics.plugin import UploadFile

        for index, folder in enumerate(self.code):
            data = _zip_python_files(folder)
            if data is None:
                continue
            digest = hashlib.sha256(data).hexdigest()[:12]
            # a new name per content: zipimport caches archives by path on the workers
            path = Path(_scratch()) / f"kmlc_code_{digest}.zip"
            if not path.exists():
                path.write_bytes(data)
            self._client.register_plugin(UploadFile(str(path), load=True),
                                         name=f"kmlc-code-{index}-{folder.name}")

    # Workers are followed through their own topics, never the scheduler's "all": Dask
    # logs events there that it cannot send (``Client.replicate``'s, which a broadcast
    # ``scatter`` calls, hold its WorkerState objects), and closes the connection of
    # every client subscribed to it, this run's included, whoever replicated.
    def _watch(self, address: str) -> None:
        """Follow the events of worker ``address`` (its removal, above all)."""
        if address in self._watched or self._client is None:
            return
        self._watched.add(address)
        self._client.subscribe_topic(
            address, lambda event: self._on_worker_event(address, event))

    def _look_for_workers(self, client: Any, stop: threading.Event) -> None:
        """Every second until ``stop`` is set: follow the workers that joined since."""
        while not stop.wait(1.0):
            try:
                current = set(client.nthreads())
            except Exception:
                continue  # a scheduler gone: the run reports it
            for address in current - self._watched:
                if self._workers is not None:
                    self._workers.add(address)
                with suppress(Exception):
                    self._watch(address)

    def _on_worker_event(self, worker: str, event: tuple[float, dict[str, Any]]) -> None:
        _, msg = event
        action = msg.get("action") if isinstance(msg, dict) else None
        if action == "add-worker" and self._workers is not None:
            self._workers.add(worker)  # one that left came back at its address
        if action != "remove-worker":
            return
        keys = [*msg.get("processing-tasks", ()), *msg.get("lost-computed-tasks", ())]
        nodes = sorted({self._keys[k] for k in map(str, keys) if k in self._keys})
        if nodes and not msg.get("expected"):
            self._warn(f"Dask worker {worker} was lost while it held node(s) "
                       f"{', '.join(nodes)}; Dask runs them again on another worker")
        if self._workers:
            self._workers.discard(worker)
            if not self._workers:  # Dask waits for one without a word
                where = f" of the scheduler at {self.address}" if self.address else ""
                self._warn(f"no Dask worker{where} is left: the tasks wait until one "
                           "connects")

    def _warn(self, note: str) -> None:
        """A note of the run, printed as a warning as it happens."""
        self.notes.append(note)
        print(f"warning: {note}", file=self._echo or sys.stderr, flush=True)

    # -- the Kedro runner ---------------------------------------------------------------
    def _get_executor(self, max_workers: int) -> None:
        return None

    def _run(self, pipeline: Pipeline, catalog: Any, hook_manager: Any = None,
             run_id: str | None = None) -> None:
        if self._client is None:  # used as a plain Kedro runner: own the cluster here
            with self:
                self._run(pipeline, catalog, hook_manager, run_id)
            return
        import cloudpickle
        from distributed import as_completed

        client = self._client
        env = {key: os.environ[key] for key in RUN_ENV if key in os.environ}
        env.update({k: v for k, v in os.environ.items() if k.startswith("MLFLOW_HTTP")})
        memory = {name for name in pipeline.datasets()
                  if isinstance(catalog.get(name), MemoryDataset)}
        produced = pipeline.all_outputs()
        dependencies = pipeline.node_dependencies
        token = uuid.uuid4().hex[:8]
        futures: dict[Any, Any] = {}
        by_future: dict[Any, Any] = {}
        for node in pipeline.nodes:  # topological order: producers are submitted first
            entries = {name: (_Upstream(getattr(catalog.get(name), "_copy_mode", None))
                              if name in memory and name in produced else catalog.get(name))
                       for name in (*node.inputs, *node.outputs)}
            upstream = [futures[parent] for parent in dependencies[node]]
            key = f"{node.name}-{token}"
            self._keys[key] = node.name
            # pickled here, so that the scheduler (which unpickles task graphs) needs
            # none of the project's code: only the workers get it
            payload = cloudpickle.dumps((node, entries, self.project_hooks, env,
                                         self._is_async, run_id))
            future = client.submit(_node_task, payload, upstream, key=key, pure=False)
            futures[node] = future
            by_future[future] = node
        # memory outputs of the whole pipeline come back to the client catalog
        wanted = {node: [o for o in node.outputs if o in memory and o in pipeline.outputs()]
                  for node in pipeline.nodes}
        relay = {name: hook_manager.subset_hook_caller(name, remove_plugins=self.project_hooks)
                 for name in ("after_dataset_saved", "after_node_run", "on_node_error")}
        pending = as_completed(list(futures.values()))
        futures.clear()  # the scheduler keeps a result while a dependent still needs it
        try:
            for future in pending:
                node = by_future.pop(future)
                if future.status != "finished":
                    self._fail(future, node, pipeline, list(by_future), catalog, relay, run_id)
                if wanted[node]:
                    values = future.result()
                    for name in wanted[node]:
                        catalog.save(name, values[name])
                for name in node.outputs:  # e.g. the bound model starts once its artifacts exist
                    relay["after_dataset_saved"](dataset_name=name, data=None, node=node)
                relay["after_node_run"](node=node, catalog=catalog, inputs={}, outputs={},
                                        is_async=self._is_async, run_id=run_id)
        except BaseException:
            client.cancel(list(by_future), force=True)
            raise

    def _fail(self, future: Any, node: Any, pipeline: Pipeline, others: list[Any],
              catalog: Any, relay: dict[str, Any], run_id: str | None) -> None:
        self._client.cancel(others, force=True)
        error = future.exception()
        if error is None:  # cancelled from elsewhere (another client, the scheduler)
            error = RunError(f"the task of node '{node.name}' was cancelled")
        # the dependents of a failed node fail with its error: blame the node that raised
        blamed = getattr(error, "kmlc_node", None) or self._keys.get(
            str(getattr(error, "task", "")))  # distributed.KilledWorker names its task
        node = next((n for n in pipeline.nodes if n.name == blamed), node)
        worker = getattr(error, "kmlc_worker", None) or _last_worker(error)
        if worker:
            _mark(error, worker)
        relay["on_node_error"](error=error, node=node, catalog=catalog, inputs={},
                               is_async=self._is_async, run_id=run_id)
        raise error.with_traceback(future.traceback())


def _last_worker(error: BaseException) -> str | None:
    last = getattr(error, "last_worker", None)  # distributed.KilledWorker
    return getattr(last, "address", None) if last is not None else None


def _mark(error: BaseException, worker: str, node: str | None = None) -> None:
    """Where ``error`` happened, carried back to the client with it."""
    with suppress(AttributeError, TypeError):  # exceptions with __slots__
        error.kmlc_worker = worker  # type: ignore[attr-defined]
        if node:
            error.kmlc_node = node  # type: ignore[attr-defined]


def _scratch() -> str:
    import tempfile

    folder = Path(tempfile.gettempdir()) / "kmlc-dask"
    folder.mkdir(exist_ok=True)
    return str(folder)


def _zip_python_files(folder: Path) -> bytes | None:
    """The ``.py`` files under ``folder`` as a zip (no data, caches or environments)."""
    buffer = io.BytesIO()
    count = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(folder):
            here = Path(root)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS
                             and not (here / d / "pyvenv.cfg").exists())
            for name in sorted(files):
                if name.endswith(".py"):
                    path = here / name
                    info = zipfile.ZipInfo(path.relative_to(folder).as_posix(),
                                           date_time=(1980, 1, 1, 0, 0, 0))
                    archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
                    count += 1
    return buffer.getvalue() if count else None


# -- on the worker ------------------------------------------------------------------------
_env_state = threading.Condition()
_env_users = 0
_env_active: dict[str, str] | None = None
_env_saved: dict[str, str | None] = {}


@contextmanager
def _tracking_env(env: dict[str, str]) -> Iterator[None]:
    """The client's run id and store in this worker's environment around a node call.

    Tasks of the same run share it; a task of another run waits until it is released.
    """
    global _env_users, _env_active, _env_saved
    with _env_state:
        while _env_users and _env_active != env:
            _env_state.wait()
        if not _env_users:
            _env_saved = {key: os.environ.get(key) for key in env}
            os.environ.update(env)
            _env_active = env
        _env_users += 1
    try:
        yield
    finally:
        with _env_state:
            _env_users -= 1
            if not _env_users:
                for key, value in _env_saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
                _env_active = None
                _env_state.notify_all()


def _node_task(payload: bytes, upstream: list[dict[str, Any]]) -> dict[str, Any]:
    """Run one node on a worker; return its memory outputs (for the tasks that read them)."""
    import cloudpickle
    from kedro.framework.hooks.manager import _create_hook_manager
    from kedro.io import DataCatalog
    from kedro.runner.task import Task

    node, entries, hooks, env, is_async, run_id = cloudpickle.loads(payload)

    values: dict[str, Any] = {}
    for result in upstream:
        values.update(result)
    datasets: dict[str, Any] = {}
    for name, entry in entries.items():
        if isinstance(entry, _Upstream):
            datasets[name] = (MemoryDataset(values[name], copy_mode=entry.copy_mode)
                              if name in node.inputs else MemoryDataset(copy_mode=entry.copy_mode))
        else:
            datasets[name] = entry
    catalog = DataCatalog(datasets=datasets)
    manager = _create_hook_manager()
    for hook in hooks:
        manager.register(hook)
    try:
        with _tracking_env(env):
            Task(node=node, catalog=catalog, is_async=is_async, hook_manager=manager,
                 run_id=run_id).execute()
    except Exception as exc:
        from distributed import get_worker

        _mark(exc, get_worker().address, node.name)
        raise
    return {name: catalog.load(name) for name, entry in entries.items()
            if isinstance(entry, _Upstream) and name in node.outputs}
