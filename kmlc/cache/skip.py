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
from kmlc.cache.objects import DEFAULT_LIMIT, OBJECTS_DIR, ObjectStore
from kmlc.cache.records import record_problem
from kmlc.compiler.fingerprint import node_fingerprint
from kmlc.config.localpath import local_path
from kmlc.config.params import is_param_input
from kmlc.config.shorthands import is_memory, shorthand
from kmlc.config.spec import ProjectSpec
from kmlc.errors import RunError, did_you_mean

__all__ = ["RunCache", "Skip", "cache_state"]

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
                 pipeline_name: str = "", catalog: Any = None, limit: int = DEFAULT_LIMIT):
        self.spec = spec
        self.pipeline = pipeline
        self.index = CacheIndex.load(spec.root / INDEX_FILE)
        self.objects = ObjectStore(spec.root / OBJECTS_DIR, limit)
        self.warnings = [self.index.warning] if self.index.warning else []
        self._warned = 0
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
        self.memory: dict[str, dict[str, str]] = {}  # node -> memory output -> object
        self.skipped: dict[str, Skip] = {}
        self.run: list[str] = []
        self.not_kept: dict[str, str] = {}  # memory output -> why the cache did not keep it
        self.restored: dict[str, Any] = {}  # memory output -> the value a skipped node left
        self._content: dict[str, str | None] = {}
        self._static: dict[str, str] = {}
        # node -> output -> what this process saw it save: the content hash of a file (its
        # version), the object of a memory value; None: saved, nothing to record of it
        self._saved: dict[str, dict[str, str | None]] = {}
        self._ran: set[str] = set()
        self._lock = threading.Lock()

    # -- what a dataset is and holds ------------------------------------------------------

    def _kind(self, name: str) -> str:
        if is_param_input(name):
            return "param"
        ds = self.spec.datasets.get(name)
        if ds is None or is_memory(ds.type):
            return "memory"
        kind = shorthand(ds.type)
        if kind is not None:  # "metric", or "unrestorable": a flavor model lives in its run
            return kind.cached
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
                content = self._input_content(name, producer)
                if content is None:
                    return None
                inputs[name] = content
        return _digest({"cache_version": CACHE_VERSION, "node": self._static_hash(node),
                        "inputs": inputs})

    def _input_content(self, name: str, producer: Any) -> str | None:
        """The content of a persisted input: as its producer saved it, when the producer
        ran in this run (another run may have rewritten the file since), else as found."""
        if producer is not None and producer.name in self._ran:
            return self._saved.get(producer.name, {}).get(name)
        return self._content_of(name)

    def _cacheable(self, node: Any) -> bool:
        """A node without outputs runs for its side effects: it is never skipped."""
        return bool(node.outputs) and all(
            self._kind(o) in ("memory", "metric", "file", "versioned") for o in node.outputs)

    # -- the decision --------------------------------------------------------------------

    def decide(self) -> list[str]:
        """The names of the nodes that run, in order; ``skipped`` holds the others.

        A skipped node whose memory output a running node reads hands it on from the
        value it kept; when it kept none (or it cannot be read back), it runs too.
        """
        running: set[str] = set()
        for node in self.pipeline.nodes:
            if (node.name not in self.force and not self._fed_by(node, running)
                    and self._cacheable(node)):
                key = self.key(node)
                record = self._usable(node, self.index.records.get(key)) if key else None
                if record is not None and self._still_there(node, record):
                    assert key is not None
                    self.keys[node.name] = key
                    self.outputs[node.name] = dict(record["outputs"])
                    self.metrics[node.name] = dict(record["metrics"])
                    self.memory[node.name] = dict(record.get("memory", {}))
                    self.skipped[node.name] = Skip(key, record.get("run_id"))
                    continue
            running.add(node.name)
        changed = True
        while changed:  # to a fixed point: a memory value that cannot be handed on is remade
            changed = False
            for node in self.pipeline.nodes:
                if node.name in running:
                    continue
                if self._fed_by(node, running) or not self._hand_on(node, running):
                    running.add(node.name)
                    self.skipped.pop(node.name, None)
                    changed = True
        self.run = [n.name for n in self.pipeline.nodes if n.name in running]
        self._ran = set(self.run)
        for name in self.run:
            self.keys.pop(name, None)
            self.outputs.pop(name, None)
            self.metrics.pop(name, None)
            self.memory.pop(name, None)
        self.restored = {name: value for name, value in self.restored.items()
                         if self.producer[name].name not in running}
        return self.run

    def _usable(self, node: Any, record: Any) -> Any:
        """``record`` if it holds what skipping ``node`` needs; else None, with a warning
        (a damaged index must cost a rerun, never the run)."""
        if record is None:
            return None
        kinds = {o: self._kind(o) for o in node.outputs}
        types = {o: self.spec.datasets[o].type for o, k in kinds.items() if k == "metric"}
        problem = record_problem(record, kinds, types)
        if problem is None:
            return record
        self.warnings.append(f"the cache record of node '{node.name}' in {self.index.path} "
                             f"is not valid ({problem}): it is ignored, the node runs")
        return None

    def _hand_on(self, node: Any, running: set[str]) -> bool:
        """Whether every memory output of skipped ``node`` that a running node reads can be
        handed on from the value the node kept (read back here when the run has a
        catalog; only checked for ``kmlc plan``)."""
        for name in node.outputs:
            if self._kind(name) != "memory" or name in self.restored or not any(
                    c.name in running for c in self.consumers.get(name, ())):
                continue
            ref = self.memory.get(node.name, {}).get(name)
            if ref is None:
                return False  # not kept: the node runs to make it
            if self.catalog is None:
                problem = self.objects.check(ref)
                value = None
            else:
                value, problem = self.objects.get(ref)
            if problem is not None:
                run = self.skipped[node.name].from_run or "-"
                self.warnings.append(f"the cache record of node '{node.name}' (run {run}) "
                                     f"cannot hand on '{name}': {problem}; the node runs")
                return False
            self.restored[name] = value
        return True

    def _fed_by(self, node: Any, running: set[str]) -> bool:
        """Whether a node that runs produces one of ``node``'s inputs."""
        return any(self.producer[i].name in running for i in node.inputs
                   if i in self.producer)

    def _still_there(self, node: Any, record: Mapping[str, Any]) -> bool:
        """Whether the bytes of each persisted output are still those the record names."""
        outputs = record["outputs"]
        for name in node.outputs:
            if self._kind(name) in ("file", "versioned") and (
                    self._content_of(name) != outputs[name]):
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
        the ``model`` job learns that the artifacts of skipped nodes are on disk already;
        the memory values skipped nodes kept go into the catalog for the nodes that run."""
        self.catalog = catalog
        running = self.decide()
        for name, value in self.restored.items():
            if name in catalog:  # declared (e.g. a MemoryDataset with its copy_mode)
                catalog.save(name, value)
            else:
                catalog[name] = value
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

    def new_warnings(self) -> list[str]:
        """The warnings not yet returned (the run prints them as they come)."""
        fresh = self.warnings[self._warned:]
        self._warned = len(self.warnings)
        return fresh

    def finish(self, run_id: str | None, succeeded: bool, notes: list[str]) -> None:
        """``record``; an index that cannot be written is a note, not a failed run.

        (``succeeded`` or not, a node is recorded once this process saw it save every
        output.)"""
        try:
            self.record(run_id)
        except OSError as exc:
            notes.append(f"the cache index could not be written: {exc}")

    def summary(self) -> dict[str, Any]:
        """What this run skipped: node -> {key, from_run}, for the run's artifact."""
        return {"nodes": {name: {"key": s.key, "from_run": s.from_run}
                          for name, s in self.skipped.items()},
                "ran": list(self.run), "handed_on": sorted(self.restored),
                "cache_version": CACHE_VERSION}

    def tags(self) -> dict[str, str]:
        runs = sorted({s.from_run for s in self.skipped.values() if s.from_run})
        return {"kmlc.cache": "on", "kmlc.cache.skipped": str(len(self.skipped)),
                "kmlc.cache.skipped_nodes": ",".join(self.skipped)[:5000],
                "kmlc.cache.from_runs": ",".join(runs)[:5000]}

    def line(self) -> str:
        """One line for the terminal."""
        total = len(self.pipeline.nodes)
        runs = sorted({s.from_run for s in self.skipped.values() if s.from_run})
        source = (f" (cached from run {runs[0]})" if len(runs) == 1 else
                  f" (cached from runs {', '.join(runs)})" if runs else "")
        line = (f"cache: skipped {len(self.skipped)} of {total} nodes{source}" if self.skipped
                else f"cache: no node skipped ({total} ran)")
        if self.not_kept:
            line += "; memory outputs not kept (their consumers rerun with their producer): " \
                + "; ".join(f"{name} ({why})" for name, why in sorted(self.not_kept.items()))
        return line

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

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        """What ``node`` saved, taken now: the bytes of a file as this node wrote them
        (read at the end of the run, they may be another run's), its memory values kept.

        ``node`` has no default: pluggy before 1.7 (Kedro takes any pluggy >= 1.0) hands a
        hook implementation none of the arguments that have one, and the cache recorded
        nothing."""
        if node is None:
            return
        kind = self._kind(dataset_name)
        value: str | None = None
        if kind in ("file", "versioned"):
            value = self._saved_content(dataset_name)
        elif (kind == "memory" and data is not None and self._cacheable(node)
              and self.consumers.get(dataset_name)):
            value, why = self.objects.put(data)
            if why is not None:
                with self._lock:
                    self.not_kept[dataset_name] = why
        with self._lock:
            self._saved.setdefault(node.name, {})[dataset_name] = value

    def saved_elsewhere(self, node: Any) -> None:
        """``node`` ran in a worker process (no hook here) and its result is back: its
        files are taken as they are now, its memory values are not kept."""
        for name in node.outputs:
            if name not in self._saved.get(node.name, {}):
                self.after_dataset_saved(name, None, node)

    def _saved_content(self, name: str) -> str | None:
        if self._kind(name) == "file":
            path = local_path(self.spec.datasets[name], self.spec.root)
            assert path is not None  # a "file" has one
            return self.index.content_hash(path)
        if self.catalog is None:
            return None
        dataset = self.catalog.get(name)
        dataset = getattr(dataset, "_inner", dataset)  # track: wraps it
        try:
            return f"version:{dataset.resolve_save_version()}"
        except Exception:
            return None

    def record(self, run_id: str | None) -> None:
        """Record every node of this run that this process saw save all its outputs."""
        for node in self.pipeline.nodes:
            saved = self._saved.get(node.name, {})
            if (node.name not in self._ran or not self._cacheable(node)
                    or not set(node.outputs) <= set(saved)):
                continue
            expected = {o for o in node.outputs if self._kind(o) == "metric"}
            # no hook saw a node run in another process: only nodes without metrics are known
            metrics = self.metrics.get(node.name, None if expected else {})
            if metrics is None or set(metrics) != expected:
                continue
            key = self.key(node)
            outputs = {o: saved[o] for o in node.outputs
                       if self._kind(o) in ("file", "versioned")}
            if key is None or any(v is None for v in outputs.values()):
                continue
            memory = {o: str(saved[o]) for o in node.outputs
                      if self._kind(o) == "memory" and saved[o] is not None}
            self.keys[node.name] = key
            self.outputs[node.name] = {k: str(v) for k, v in outputs.items()}
            self.memory[node.name] = memory
            self.index.record(key, {"node": node.name, "run_id": run_id,
                                    "outputs": self.outputs[node.name], "metrics": metrics,
                                    "memory": memory, "time": int(time.time())})
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
