"""The registry of dataset-type shorthands: what kmlc knows of each ``type:`` it adds.

A file writes ``type: mlflow.metric``; Kedro has no such type. This table is the one
home of what each shorthand means, read by every stage that cares: the schema (its
``type`` enum is checked against it by a test), the checks (an unknown ``mlflow.*``
type, a ``flavor:``, an inference input that cannot be packed), the secrets (what a
logged model carries), the compiler's catalog (which class, which argument defaults to
the dataset's name), the run cache (what a skipped node's record holds) and the sweep
(which metric keys a dataset logs). The classes themselves live in
``kmlc.tracking.datasets`` (``SHORTHAND_CLASSES``, keyed by these names): this module is
plain data and imports nothing of kmlc.

Adding a shorthand: a row in ``SHORTHANDS`` (and its class in ``kmlc.tracking.datasets``
when no existing class does the job), plus its branch in ``schemas/mlproject.schema.json``
(``tests/config/test_shorthands.py`` fails until the three agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BARE_TYPES",
    "MEMORY_TYPES",
    "MLFLOW_TYPES",
    "PATH_KEYS",
    "PLAN_DROPPED_KEYS",
    "SHORTHANDS",
    "Shorthand",
    "dataset_path",
    "is_memory",
    "shorthand",
]

MetricKind = Literal["one", "history", "many"]


@dataclass(frozen=True)
class Shorthand:
    """One ``type:`` shorthand of kmlc's.

    ``tracking``: its value lives in the MLflow run (an ``mlflow.*`` dataset): never
    packed into a model, never resolved as a file. ``name_key``: the argument that
    defaults to the dataset's name (``key`` of a metric, ``artifact_path`` of a model).
    ``metric``: the metric shape it logs (``one`` value, a ``history``, ``many`` under a
    prefix), None for a model. ``cached``: what the run cache keeps of it for a skipped
    node (``metric``: the value in the record; ``unrestorable``: nothing, the node reruns).
    ``flavor``: it takes ``flavor:`` (an MLflow flavor module). ``logs_save_args``: its
    ``save_args`` go to MLflow with the model, in clear (the secrets refuse a secret there).
    """

    name: str
    tracking: bool = True
    name_key: str | None = None
    metric: MetricKind | None = None
    cached: Literal["metric", "unrestorable"] = "unrestorable"
    flavor: bool = False
    logs_save_args: bool = False


SHORTHANDS: Mapping[str, Shorthand] = {s.name: s for s in (
    Shorthand("mlflow.metric", name_key="key", metric="one", cached="metric"),
    Shorthand("mlflow.metric_history", name_key="key", metric="history", cached="metric"),
    Shorthand("mlflow.metrics", metric="many", cached="metric"),
    Shorthand("mlflow.model", name_key="artifact_path", flavor=True, logs_save_args=True),
)}
MLFLOW_TYPES = tuple(name for name, s in SHORTHANDS.items() if s.tracking)

# Kedro's types written without a module (``kedro.io``'s)
BARE_TYPES = ("MemoryDataset", "CachedDataset", "SharedMemoryDataset")
MEMORY_TYPES = ("MemoryDataset", "SharedMemoryDataset")  # the value held in memory only
PATH_KEYS = ("filepath", "path")  # the keys of a dataset config that name its file/folder
# Keys of a dataset config that the inference plan drops: they describe where or how to
# write, not how to read (the model carries the rest of an artifact's config)
PLAN_DROPPED_KEYS = ("filepath", "path", "credentials", "fs_args", "save_args", "versioned",
                     "metadata", "run_id")


def shorthand(type_name: object) -> Shorthand | None:
    """The registry's row for ``type_name``, or None for any other type."""
    return SHORTHANDS.get(type_name) if isinstance(type_name, str) else None


def is_memory(type_name: str) -> bool:
    """Whether ``type_name`` (short or a full path) is one of Kedro's memory datasets."""
    return type_name.rpartition(".")[2] in MEMORY_TYPES


def dataset_path(config: Mapping[str, object]) -> object | None:
    """What counts as a dataset's path: the first of ``PATH_KEYS`` it has (None: none)."""
    for key in PATH_KEYS:
        if key in config:
            return config[key]
    return None
