"""Checking dataset ``type`` names without importing the datasets.

``kmlc validate`` must stay light, and importing ``kedro_datasets.pandas`` alone
costs half a second (it imports pandas). The class names a kedro-datasets group
offers are read from the group's ``__init__.py`` source instead.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import re
import sys
from pathlib import Path

from kmlc.config.spec import MLFLOW_DATASET_TYPES
from kmlc.errors import did_you_mean

__all__ = ["KEDRO_MLFLOW_TYPES", "flavor_problem", "kedro_mlflow_class", "mlflow_flavors",
           "type_problem"]

_KMLC_TYPES = MLFLOW_DATASET_TYPES
_CLASS = re.compile(r"\b([A-Z][A-Za-z0-9_]*Dataset)\b")
# a flavor module defines or re-exports log_model
_LOG_MODEL = re.compile(
    r"^\s*def log_model\b|^\s*from \S+ import .*\blog_model\b|^\s+log_model,\s*$", re.MULTILINE)

# kedro-mlflow's dataset classes (today's spelling) -> the kmlc form that replaces each
KEDRO_MLFLOW_TYPES = {
    "MlflowArtifactDataset": "the wrapped dataset itself with `track: artifact` "
                             "(or `track: {artifact_path: ...}`)",
    "MlflowMetricDataset": "`type: mlflow.metric`",
    "MlflowMetricHistoryDataset": "`type: mlflow.metric_history`",
    "MlflowMetricsHistoryDataset": "`type: mlflow.metrics`",
    "MlflowModelTrackingDataset": "`type: mlflow.model` with `flavor:`",
    "MlflowModelRegistryDataset": "`type: mlflow.model` with `model_uri: models:/NAME@ALIAS`",
    "MlflowModelLocalFileSystemDataset": "a file dataset with `track: artifact`, "
                                         "or `kmlc export-model -o DIR`",
}


def kedro_mlflow_class(type_name: str) -> str | None:
    """The kedro-mlflow class ``type_name`` names (old ``DataSet`` spellings too), or ``None``."""
    if not type_name.startswith("kedro_mlflow."):
        return None
    cls = type_name.rpartition(".")[2].replace("DataSet", "Dataset")
    return cls if cls in KEDRO_MLFLOW_TYPES else None


@functools.cache
def _groups() -> dict[str, Path]:
    spec = importlib.util.find_spec("kedro_datasets")
    if spec is None or not spec.submodule_search_locations:
        return {}
    root = Path(next(iter(spec.submodule_search_locations)))
    return {p.parent.name: p for p in root.glob("*/__init__.py")
            if not p.parent.name.startswith("_")}


@functools.cache
def _classes(group: str) -> tuple[str, ...]:
    path = _groups().get(group)
    if path is None:
        return ()
    return tuple(sorted(set(_CLASS.findall(path.read_text("utf-8")))))


def _all_short_names() -> list[str]:
    return [*_KMLC_TYPES, *(f"{g}.{c}" for g in sorted(_groups()) for c in _classes(g)),
            "MemoryDataset", "CachedDataset", "SharedMemoryDataset"]


def type_problem(type_name: str) -> tuple[str, str | None] | None:
    """``(message, hint)`` when ``type_name`` names no dataset class, else ``None``."""
    if type_name.startswith("kedro_mlflow."):
        cls = kedro_mlflow_class(type_name)
        replacement = KEDRO_MLFLOW_TYPES[cls] if cls else "a `mlflow.*` type or `track:`"
        return (f"'{type_name}' is a kedro-mlflow dataset, which kmlc does not use",
                f"write {replacement} instead; `kmlc import-kedro` converts a whole project")
    if type_name in _KMLC_TYPES or type_name.startswith("mlflow."):
        if type_name in _KMLC_TYPES:
            return None
        return (f"unknown MLflow dataset type '{type_name}'",
                did_you_mean(type_name, _KMLC_TYPES, f"one of: {', '.join(_KMLC_TYPES)}"))
    module, _, cls = type_name.rpartition(".")
    if not module:
        if type_name in ("MemoryDataset", "CachedDataset", "SharedMemoryDataset"):
            return None
        return _unknown(type_name)
    head = module.split(".")[0]
    if head in _groups() and "." not in module:
        if cls in _classes(head):
            return None
        return _unknown(type_name)
    if module.startswith("kedro_datasets."):
        group = module.split(".")[1]
        if group in _groups() and "." not in module[len("kedro_datasets."):]:
            return None if cls in _classes(group) else _unknown(type_name)
    if not _module_exists(module):
        return _unknown(type_name)
    return None


def _module_exists(module: str) -> bool:
    """Whether ``module`` can be imported, found without importing (running) any package.

    ``importlib.util.find_spec("a.b")`` imports ``a`` first; instead the top-level name is
    looked up alone and each submodule in its parent's ``submodule_search_locations``.
    """
    parts = module.split(".")
    if not all(part.isidentifier() for part in parts):
        return False
    try:
        spec = importlib.util.find_spec(parts[0])
        for depth in range(1, len(parts)):
            if spec is None:
                return False
            name = ".".join(parts[: depth + 1])
            if ".".join(parts[:depth]) in sys.modules:
                spec = importlib.util.find_spec(name)  # the parent is imported already
                continue
            locations = spec.submodule_search_locations
            if locations is None:
                return False
            spec = importlib.machinery.PathFinder.find_spec(name, list(locations))
    except (ImportError, ValueError, AttributeError, OSError):
        return False
    return spec is not None


def _unknown(type_name: str) -> tuple[str, str | None]:
    return (f"unknown dataset type '{type_name}'",
            did_you_mean(type_name, _all_short_names(),
                         "a kedro-datasets short name such as pandas.CSVDataset, or a full "
                         "import path"))


@functools.cache
def _mlflow_root() -> Path | None:
    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _is_flavor(root: Path, name: str) -> bool:
    if name.startswith("_") or not name.isidentifier():
        return False
    for source in (root / name / "__init__.py", root / f"{name}.py"):
        try:
            return bool(_LOG_MODEL.search(source.read_text("utf-8", errors="replace")))
        except OSError:
            continue
    return False


@functools.cache
def mlflow_flavors() -> tuple[str, ...]:
    """The flavor modules of the installed MLflow (``mlflow.sklearn``, ...), found by reading
    the package's files: importing MLflow would cost a second and a half."""
    root = _mlflow_root()
    if root is None:
        return ()
    names = sorted({entry.name.removesuffix(".py") for entry in root.iterdir()})
    return tuple(f"mlflow.{name}" for name in names if _is_flavor(root, name))


def flavor_problem(flavor: str) -> tuple[str, str | None] | None:
    """``(message, hint)`` when ``flavor`` is not a flavor module of the installed MLflow."""
    root = _mlflow_root()
    if root is None:
        return None  # without MLflow installed there is nothing to compare with
    module, _, name = flavor.partition(".")
    if module == "mlflow" and _is_flavor(root, name):
        return None
    flavors = mlflow_flavors()
    return (f"'{flavor}' is not an MLflow flavor",
            did_you_mean(flavor, flavors, f"flavors: {', '.join(flavors)}"))
