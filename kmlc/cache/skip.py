"""Run stage, cache side: which nodes of a run can be skipped, and what they leave.

``RunCache.decide`` walks the pipeline in Kedro's order before anything runs (no Kedro
hook can skip a node) and skips a node when a record with its key exists, every persisted
output it recorded is still there with the recorded content hash, and it is not forced.
A node's key is the node's static fingerprint (``kmlc.compiler.fingerprint``) plus the
content of what it reads: the bytes of each persisted input (the load version for a
versioned dataset), the producer's key for a memory input, the recorded value for a
metric input. A node whose producer runs, runs; a skipped node whose memory output a
running node needs runs too. Skipped nodes keep the run complete: their metrics are
saved again into the new run from the record, their tracked files logged again.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from kmlc.cache.index import CACHE_VERSION, INDEX_FILE, CacheIndex
from kmlc.compiler.catalog import local_path
from kmlc.compiler.fingerprint import node_fingerprint
from kmlc.config.params import is_param_input
from kmlc.config.spec import ProjectSpec
from kmlc.errors import RunError, did_you_mean

__all__ = ["RunCache", "Skip", "cache_state"]

_METRICS = ("mlflow.metric", "mlflow.metric_history", "mlflow.metrics")


@dataclass(frozen=True)
class Skip:
    """A node the run skips: its key and the run that computed its outputs."""

    key: str
    from_run: str | None


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON (numpy numbers and arrays as Python ones); TypeError if not."""
    def plain(obj: Any) -> Any:
        for attr in ("tolist", "item"):
            if hasattr(obj, attr):
                return getattr(obj, attr)()
        raise TypeError(f"{type(obj).__name__} is not JSON")

    return json.loads(json.dumps(value, default=plain))


class RunCache:
    """The cache of one ``kmlc run``; see the module docstring."""

    def __init__(self, spec: ProjectSpec, pipeline: Any, *, force: Sequence[str] = (),
                 pipeline_name: str = "", catalog: Any = None):
        self.spec = spec
        self.pipeline = pipeline
        self.index = CacheIndex.load(spec.root / INDEX_FILE)
        self.warnings = [self.index.warning] if self.index.warning else []
        self.producer = {out: n for n in pipeline.nodes for out in n.outputs}
        self.consumers: dict[str, list[Any]] = {}
        for n in pipeline.nodes:
            for name in n.inputs:
                self.consumers.setdefault(name, []).append(n)
        known = [n.name for n in pipeline.nodes]
        for name in force:
            if name not in known:
                raise RunError(f"--force-nodes: node '{name}' is not in pipeline "
                               f"'{pipeline_name}'", hint=did_you_mean(name, known),
                               code="KMLC603")
        self.force = set(force)
        self.catalog = catalog
        self.keys: dict[str, str | None] = {}
        self.outputs: dict[str, dict[str, str]] = {}  # node -> output -> content hash
        self.metrics: dict[str, dict[str, Any]] = {}  # node -> metric output -> value
        self.skipped: dict[str, Skip] = {}
        self.run: list[str] = []
        self._content: dict[str, str | None] = {}
        self._static: dict[str, str] = {}
        self._pending: dict[str, set[str]] = {}
        self._completed: list[str] = []
        self._lock = threading.Lock()

    # -- what a dataset is and holds ------------------------------------------------------

    def _kind(self, name: str) -> str:
        if is_param_input(name):
            return "param"
        ds = self.spec.datasets.get(name)
        if ds is None or ds.type.split(".")[-1] in ("MemoryDataset", "SharedMemoryDataset"):
            return "memory"
        if ds.type in _METRICS:
            return "metric"
        if ds.is_mlflow:
            return "unrestorable"  # an MLflow flavor model lives in the run that logged it
        if local_path(ds, self.spec.root) is None:
            return "opaque"  # remote or not a file: its content cannot be hashed here
        return "versioned" if ds.config.get("versioned") else "file"

    def _content_of(self, name: str) -> str | None:
        if name not in self._content:
            self._content[name] = self._read_content(name)
        return self._content[name]

    def _read_content(self, name: str) -> str | None:
        kind = self._kind(name)
        if kind == "file":
            path = local_path(self.spec.datasets[name], self.spec.root)
            assert path is not None  # a "file" has one
            return self.index.content_hash(path)
        if kind == "versioned" and self.catalog is not None:
            dataset = self.catalog.get(name)
            dataset = getattr(dataset, "_inner", dataset)  # track: wraps it
            try:
                return f"version:{dataset.resolve_load_version()}"
            except Exception:  # no version saved yet
                return None
        return None

    # -- keys -------------------------------------------------------------------------------

    def _static_hash(self, node: Any) -> str:
        if node.name not in self._static:
            # keyed: a changed secret parameter still changes the key
            self._static[node.name] = node_fingerprint(node, self.spec, keyed=True)
        return self._static[node.name]

    def key(self, node: Any) -> str | None:
        """The node's key, or None when one of its inputs cannot be told apart."""
        inputs: dict[str, Any] = {}
        for name in node.inputs:
            kind = self._kind(name)
            if kind == "param":
                continue  # the values are in the static hash
            producer = self.producer.get(name)
            if kind == "memory":
                if producer is None or self.keys.get(producer.name) is None:
                    return None
                inputs[name] = self.keys[producer.name]
            elif kind == "metric":
                if producer is None or name not in self.metrics.get(producer.name, {}):
                    return None
                inputs[name] = _digest(self.metrics[producer.name][name])
            else:
                content = self._content_of(name)
                if content is None:
                    return None
                inputs[name] = content
        return _digest({"cache_version": CACHE_VERSION, "node": self._static_hash(node),
                        "inputs": inputs})

    def _cacheable(self, node: Any) -> bool:
        """A node without outputs runs for its side effects: it is never skipped."""
        return bool(node.outputs) and all(
            self._kind(o) in ("memory", "metric", "file", "versioned") for o in node.outputs)

    # -- the decision --------------------------------------------------------------------

    def decide(self) -> list[str]:
        """The names of the nodes that run, in order; ``skipped`` holds the others."""
        running: set[str] = set()
        for node in self.pipeline.nodes:
            if (node.name not in self.force and not self._fed_by(node, running)
                    and self._cacheable(node)):
                key = self.key(node)
                record = self.index.records.get(key) if key is not None else None
                if record is not None and self._still_there(node, record):
                    assert key is not None
                    self.keys[node.name] = key
                    self.outputs[node.name] = dict(record.get("outputs", {}))
                    self.metrics[node.name] = dict(record.get("metrics", {}))
                    self.skipped[node.name] = Skip(key, record.get("run_id"))
                    continue
            running.add(node.name)
        changed = True
        while changed:  # to a fixed point: a memory output a running node needs is remade
            changed = False
            for node in self.pipeline.nodes:
                if node.name in running:
                    continue
                needed = any(c.name in running for o in node.outputs
                             if self._kind(o) == "memory" for c in self.consumers.get(o, ()))
                if self._fed_by(node, running) or needed:
                    running.add(node.name)
                    self.skipped.pop(node.name, None)
                    changed = True
        self.run = [n.name for n in self.pipeline.nodes if n.name in running]
        for name in self.run:
            self.keys.pop(name, None)
            self.outputs.pop(name, None)
            self.metrics.pop(name, None)
        return self.run

    def _fed_by(self, node: Any, running: set[str]) -> bool:
        """Whether a node that runs produces one of ``node``'s inputs."""
        return any(self.producer[i].name in running for i in node.inputs
                   if i in self.producer)

    def _still_there(self, node: Any, record: Any) -> bool:
        if not isinstance(record, Mapping):
            return False  # a hand-edited index: the node runs and is recorded again
        outputs, metrics = record.get("outputs"), record.get("metrics")
        if not isinstance(outputs, Mapping) or not isinstance(metrics, Mapping):
            return False
        for name in node.outputs:
            kind = self._kind(name)
            if kind in ("file", "versioned"):
                if outputs.get(name) is None or self._content_of(name) != outputs[name]:
                    return False
            elif kind == "metric" and name not in metrics:
                return False
        return True

    # -- keeping the run complete ---------------------------------------------------------

    def restore(self, catalog: Any) -> None:
        """Save the skipped nodes' metrics into this run and log their tracked files."""
        for name in self.skipped:
            node = next(n for n in self.pipeline.nodes if n.name == name)
            for out in node.outputs:
                if out in self.metrics[name]:
                    catalog.save(out, self.metrics[name][out])
                elif self.spec.datasets.get(out) is not None and \
                        self.spec.datasets[out].track_artifact:
                    catalog.get(out).log_existing()

    def runnable(self, catalog: Any, session: Any = None, model: Any = None) -> Any:
        """The part of the pipeline that runs. A tracked run (``session``) gets the skipped
        nodes' metrics and tracked files, and tags and an artifact saying what was skipped;
        the ``model`` job learns that the artifacts of skipped nodes are on disk already."""
        self.catalog = catalog
        running = self.decide()
        if session is not None:
            self.restore(catalog)
            session.tracker.log_params(session.uri, session.run_id, [],
                                       sorted(self.tags().items()))
            with tempfile.TemporaryDirectory(prefix="kmlc-cache-") as folder:
                path = Path(folder) / "cache.json"
                path.write_text(json.dumps(self.summary(), indent=1, sort_keys=True), "utf-8")
                session.tracker.log_artifact(session.uri, session.run_id, str(path), "kmlc",
                                             False)
        if model is not None:
            for node in self.pipeline.nodes:
                if node.name in self.skipped:
                    for name in node.outputs:
                        model.after_dataset_saved(name, None)
        if not running:
            return self.pipeline.__class__([])
        return self.pipeline.only_nodes(*running)

    def finish(self, run_id: str | None, succeeded: bool, notes: list[str]) -> None:
        """``record``; an index that cannot be written is a note, not a failed run."""
        try:
            self.record(run_id, succeeded)
        except OSError as exc:
            notes.append(f"the cache index could not be written: {exc}")

    def summary(self) -> dict[str, Any]:
        """What this run skipped: node -> {key, from_run}, for the run's artifact."""
        return {"nodes": {name: {"key": s.key, "from_run": s.from_run}
                          for name, s in self.skipped.items()},
                "ran": list(self.run), "cache_version": CACHE_VERSION}

    def tags(self) -> dict[str, str]:
        runs = sorted({s.from_run for s in self.skipped.values() if s.from_run})
        return {"kmlc.cache": "on", "kmlc.cache.skipped": str(len(self.skipped)),
                "kmlc.cache.skipped_nodes": ",".join(self.skipped)[:5000],
                "kmlc.cache.from_runs": ",".join(runs)[:5000]}

    def line(self) -> str:
        """One line for the terminal."""
        total = len(self.pipeline.nodes)
        if not self.skipped:
            return f"cache: no node skipped ({total} ran)"
        runs = sorted({s.from_run for s in self.skipped.values() if s.from_run})
        source = (f" (cached from run {runs[0]})" if len(runs) == 1 else
                  f" (cached from runs {', '.join(runs)})" if runs else "")
        return f"cache: skipped {len(self.skipped)} of {total} nodes{source}"

    # -- recording what ran -------------------------------------------------------------------

    @hook_impl
    def after_node_run(self, node: Any, catalog: Any, inputs: Any, outputs: Any,
                       is_async: bool, run_id: str | None = None) -> None:
        values: dict[str, Any] = {}
        for name in node.outputs:
            if self._kind(name) == "metric" and name in (outputs or {}):
                try:
                    values[name] = _jsonable(outputs[name])
                except (TypeError, ValueError):
                    values = {"": None}  # not restorable: the node is not recorded
                    break
        with self._lock:
            self.metrics[node.name] = values
            self._pending[node.name] = set(node.outputs)
            self._settle(node.name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any = None) -> None:
        if node is None:
            return
        with self._lock:
            self._pending.get(node.name, set()).discard(dataset_name)
            self._settle(node.name)

    def _settle(self, name: str) -> None:
        if name in self._pending and not self._pending[name]:
            del self._pending[name]
            self._completed.append(name)

    def record(self, run_id: str | None, succeeded: bool) -> None:
        """Record every node that completed (all of them when the run succeeded)."""
        done = set(self.run) if succeeded else set(self._completed)
        for node in self.pipeline.nodes:
            if node.name not in done or node.name not in self.run:
                continue
            expected = {o for o in node.outputs if self._kind(o) == "metric"}
            # no hook saw a node run in another process: only nodes without metrics are known
            metrics = self.metrics.get(node.name, None if expected else {})
            if not self._cacheable(node) or metrics is None or set(metrics) != expected:
                continue  # e.g. metrics of a node run in another process: not known here
            for out in node.outputs:
                self._content.pop(out, None)
            key = self.key(node)
            outputs = {o: self._content_of(o) for o in node.outputs
                       if self._kind(o) in ("file", "versioned")}
            if key is None or any(v is None for v in outputs.values()):
                continue
            self.keys[node.name] = key
            self.outputs[node.name] = {k: str(v) for k, v in outputs.items()}
            self.index.record(key, {"node": node.name, "run_id": run_id,
                                    "outputs": self.outputs[node.name], "metrics": metrics,
                                    "time": int(time.time())})
        self.index.save()


def cache_state(spec: ProjectSpec, pipeline: Any) -> dict[str, str]:
    """node -> ``skip (run …)`` or ``runs``: what ``kmlc run --cache`` would do now, for
    ``kmlc plan`` (no catalog: a versioned dataset counts as changed). Empty without an
    index."""
    if not (spec.root / INDEX_FILE).is_file():
        return {}
    cache = RunCache(spec, pipeline)
    running = set(cache.decide())
    return {n.name: "runs" if n.name in running else
            f"skip, from run {cache.skipped[n.name].from_run or '-'}" for n in pipeline.nodes}
