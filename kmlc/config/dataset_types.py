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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kmlc.config.shorthands import BARE_TYPES, MLFLOW_TYPES
from kmlc.errors import did_you_mean

__all__ = ["KEDRO_MLFLOW_TYPES", "flavor_problem", "kedro_mlflow_class", "mlflow_flavors",
           "type_problem"]

_KMLC_TYPES = MLFLOW_TYPES
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
            *BARE_TYPES]


def type_problem(type_name: str, folders: Sequence[Path] = ()) -> tuple[str, str | None] | None:
    """``(message, hint)`` when ``type_name`` names no dataset class, else ``None``.

    A full import path is looked for in ``folders`` (the project's ``code:``) first, as
    the node functions are: a dataset class of the project's own is found there."""
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
        if type_name in BARE_TYPES:
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
    if not _module_exists(module, folders):
        return _unknown(type_name)
    return None


def _module_exists(module: str, folders: Sequence[Path] = ()) -> bool:
    """Whether ``module`` can be imported with ``folders`` first on the path, found without
    importing (running) any package.

    ``importlib.util.find_spec("a.b")`` imports ``a`` first; instead the top-level name is
    looked up alone (in ``folders``, then as Python would) and each submodule in its
    parent's search locations, read from the parent's spec: a namespace package (a folder
    without ``__init__.py``) included, whose parent need not be imported. Any layout, and
    any finder that fails, gives an answer, never an exception.
    """
    parts = module.split(".")
    if not all(part.isidentifier() for part in parts):
        return False
    try:
        return _find(parts, [str(f) for f in folders])
    except Exception:  # a broken finder or path entry: a module not found, not a traceback
        return False


def _search_locations(spec: importlib.machinery.ModuleSpec) -> list[str] | None:
    """Where a package's submodules are looked for; ``None`` for a plain module.

    A namespace package's ``_NamespacePath`` recomputes itself from its parent module,
    which must then be imported; the list it was made from is read instead."""
    locations = spec.submodule_search_locations
    if locations is None:
        return None
    if isinstance(locations, list):
        return [str(entry) for entry in locations]
    made_from = getattr(locations, "_path", None)
    if isinstance(made_from, list):
        return [str(entry) for entry in made_from]
    return [str(entry) for entry in locations]


def _path_finder(entry: str) -> Any:
    """The finder Python uses for the path entry ``entry`` (a folder, a zip file...)."""
    cached = sys.path_importer_cache.get(entry)
    if cached is not None:
        return cached
    for hook in sys.path_hooks:
        try:
            return hook(entry)
        except ImportError:
            continue
    return None


def _spec_in(name: str, locations: list[str]) -> importlib.machinery.ModuleSpec | None:
    """``name`` looked for in ``locations`` as ``PathFinder`` does, except that a namespace
    package's portions are returned as a plain list: ``PathFinder`` wraps them in a
    ``_NamespacePath``, which needs the parent package imported (a ``KeyError`` else)."""
    portions: list[str] = []
    for entry in locations:
        finder = _path_finder(entry)
        find = getattr(finder, "find_spec", None)
        spec = find(name) if find is not None else None
        if spec is None:
            continue
        if spec.loader is not None:
            return spec
        portions.extend(spec.submodule_search_locations or ())
    if not portions:
        return None
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = portions
    return spec


def _find(parts: list[str], folders: list[str]) -> bool:
    spec = _spec_in(parts[0], folders) if folders else None
    if spec is None:
        spec = importlib.util.find_spec(parts[0])
    for depth in range(1, len(parts)):
        if spec is None:
            return False
        name = ".".join(parts[: depth + 1])
        parent = sys.modules.get(".".join(parts[:depth]))
        parent_path = getattr(parent, "__path__", None) if parent is not None else None
        if parent_path is not None:  # the parent is imported already: its own path
            locations: list[str] | None = [str(entry) for entry in parent_path]
        else:
            locations = _search_locations(spec)
        if locations is None:
            return False
        spec = _spec_in(name, locations)
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
