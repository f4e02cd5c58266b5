"""Run stage, lineage: the persisted datasets a run reads, as MLflow dataset inputs.

Each persisted input of the pipeline that runs (a catalog dataset no node of it writes,
neither a parameter, a memory value nor an MLflow dataset) is logged as a dataset input
of the run: its name, its source (the file's URI, or the dataset's URL), a digest and,
where the run loaded it as a pandas DataFrame in this process, the schema MLflow infers
from its first rows. The digest is kmlc's content hash of the file (the run cache's:
``sha256:`` of the bytes, or of a folder's files), cut to the 36 characters MLflow keeps;
the whole hash is the input's ``kmlc.content_hash`` tag. A dataset kmlc cannot read here
(remote) gets the hash of its catalog config instead (tag ``kmlc.digest_of: config``).

``LineageHook`` collects the rows in the process that runs Kedro; ``log_dataset_inputs``
hashes and logs in the tracking worker, where MLflow is loaded. The logged model names
the same dataset on its metrics (``kmlc.tracking.logged_models.attach_run_to_model``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from kmlc.config.localpath import local_path
from kmlc.config.params import is_param_input
from kmlc.config.spec import ProjectSpec
from kmlc.errors import KmlcError
from kmlc.tracking.client import open_client
from kmlc.tracking.jobs import job
from kmlc.tracking.retry import with_retry

__all__ = ["DIGEST_CHARS", "LineageHook", "content_digest", "log_dataset_inputs",
           "log_run_inputs", "persisted_inputs"]

DIGEST_CHARS = 36  # MLflow's limit on a dataset digest
_SAMPLE_ROWS = 100
_CHUNK = 1 << 20
_MEMORY = ("MemoryDataset", "SharedMemoryDataset")


def persisted_inputs(spec: ProjectSpec, inputs: Iterable[str]) -> list[str]:
    """Of a pipeline's free ``inputs``, the datasets a run logs as its dataset inputs."""
    out = []
    for name in sorted(inputs):
        ds = spec.datasets.get(name)
        if (is_param_input(name) or ds is None or ds.is_mlflow or ds.is_factory
                or ds.type.split(".")[-1] in _MEMORY):
            continue
        out.append(name)
    return out


class LineageHook:
    """Remembers the first rows of each persisted input as the run loads it (for its
    schema); ``records`` describes each input for ``log_dataset_inputs``."""

    def __init__(self, spec: ProjectSpec, pipeline: Any, context: str):
        self.spec = spec
        self.context = context
        self.names = persisted_inputs(spec, pipeline.inputs())
        self.samples: dict[str, Any] = {}
        self.logged: list[tuple[str, str]] | None = None  # once ``log_run_inputs`` ran

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        pandas = hasattr(data, "dtypes") and hasattr(data, "iloc")
        if pandas and dataset_name in self.names and dataset_name not in self.samples:
            self.samples[dataset_name] = (data.iloc[:_SAMPLE_ROWS].copy(),
                                          {"num_rows": len(data), "num_elements": int(data.size)})

    def records(self) -> list[dict[str, Any]]:
        """Plain data (picklable) for ``log_dataset_inputs``: no file is read here."""

        out = []
        for name in self.names:
            ds = self.spec.datasets[name]
            path = local_path(ds, self.spec.root)
            config = self.spec.secrets.mask_data(
                {k: v for k, v in ds.config.items() if k != "credentials"})
            sample, profile = self.samples.get(name, (None, None))
            out.append({
                "name": name, "path": str(path) if path is not None else None,
                "source": (path.as_uri() if path is not None and path.is_absolute()
                           else self.spec.secrets.mask(ds.filepath or "")),
                "config_hash": "sha256:" + hashlib.sha256(json.dumps(
                    config, sort_keys=True, default=str).encode()).hexdigest(),
                "type": ds.type, "sample": sample, "profile": profile,
                "context": self.context,
            })
        return out


def content_digest(path: Path) -> str | None:
    """kmlc's content hash of a file or folder, as the run cache computes it
    (``kmlc.cache.index.CacheIndex.content_hash``, without its stat cache; a test keeps
    the two equal): ``sha256:`` of the bytes, or of a folder's sorted ``path\0hash``
    lines. None when nothing is there. Here so that a run without the cache imports none
    of it."""
    def file_hash(file: Path) -> str:
        digest = hashlib.sha256()
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return "sha256:" + digest.hexdigest()

    try:
        if path.is_dir():
            digest = hashlib.sha256()
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                digest.update(f"{file.relative_to(path).as_posix()}\0{file_hash(file)}\n"
                              .encode())
            return "sha256:" + digest.hexdigest()
        return file_hash(path)
    except FileNotFoundError:
        return None


def log_run_inputs(session: Any, lineage: LineageHook) -> list[tuple[str, str]]:
    """The run's persisted inputs logged as its dataset inputs, in the tracking worker,
    once per run (the model's job logs them first, to name them on its metrics; the run
    logs them otherwise, a failed run too); ``(name, digest)`` of each. A store that
    refuses them costs a note (``session.notes``), not the run."""
    if lineage.logged is not None:
        return lineage.logged
    lineage.logged = []
    tracker = session.tracker
    try:
        records = lineage.records()
        if records:
            lineage.logged = list(tracker.wait_job(tracker.start_job(log_dataset_inputs, {
                "tracking_uri": session.uri, "run_id": session.run_id, "records": records})))
    except Exception as exc:  # called while a node's error may be on its way: never masks it
        reason = exc.message if isinstance(exc, KmlcError) else f"{type(exc).__name__}: {exc}"
        session.notes.append(f"the run's dataset inputs could not be logged: {reason}")
    return lineage.logged


@job
def log_dataset_inputs(*, tracking_uri: str, run_id: str, records: Sequence[dict[str, Any]]
                       ) -> list[tuple[str, str]]:
    """Log ``records`` (``LineageHook.records``) as dataset inputs of run ``run_id``, where
    MLflow is loaded (the tracking worker), each file hashed here (``content_digest``).
    Returns ``(name, digest)`` of each dataset logged.
    """
    from mlflow.entities import Dataset, DatasetInput, InputTag


    inputs = []
    logged = []
    for record in records:
        found = content_digest(Path(record["path"])) if record["path"] is not None else None
        full, of = (found, "content") if found else (record["config_hash"], "config")
        digest = full.removeprefix("sha256:")[:DIGEST_CHARS]
        schema = profile = None
        if record["sample"] is not None:
            schema, profile = _schema(record["sample"]), json.dumps(record["profile"])
        source_type = "local" if record["source"].startswith("file:") else (
            record["source"].split("://")[0] if "://" in record["source"] else "local")
        dataset = Dataset(name=record["name"], digest=digest, source_type=source_type,
                          source=json.dumps({"uri": record["source"]}), schema=schema,
                          profile=profile)
        tags = [InputTag("mlflow.data.context", record["context"]),
                InputTag("kmlc.content_hash", full), InputTag("kmlc.digest_of", of),
                InputTag("kmlc.dataset_type", record["type"])]
        inputs.append(DatasetInput(dataset, tags))
        logged.append((record["name"], digest))
    if inputs:
        with_retry(open_client(tracking_uri).log_inputs, run_id, datasets=inputs)
    return logged


def _schema(sample: Any) -> str | None:
    """MLflow's schema of a DataFrame (as ``mlflow.data.from_pandas`` records it), without
    MLflow's advice on integer columns (about a model's signature: not this input's)."""

    try:
        from mlflow.types.utils import _infer_schema

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer",
                                    category=UserWarning)
            return json.dumps({"mlflow_colspec": _infer_schema(sample).to_dict()})
    except Exception:  # a column MLflow has no type for: the input is logged without one
        return None
