"""Compile stage: dataset specs -> a ``kedro.io.DataCatalog`` built by Kedro itself.

kmlc only rewrites what Kedro cannot know: relative file paths resolve against the
project folder, the ``mlflow.*`` shorthands (``kmlc.config.shorthands``) become kmlc's
dataset classes (``kmlc.tracking.datasets.SHORTHAND_CLASSES``: classes, not import paths),
and ``track:`` wraps a dataset in ``TrackedArtifactDataset``. kmlc's MLflow datasets get the
run's tracking store (``TrackingTarget.uri``) unless the file names another. Every
``params:`` path is added as a memory entry, as a Kedro session would.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kedro.io import DataCatalog, SharedMemoryDataCatalog
from kedro.io.core import DatasetError, generate_timestamp

from kmlc.config.localpath import resolve_path
from kmlc.config.params import ALL_PARAMS, PARAMS_PREFIX, param_items
from kmlc.config.selection import check_load_versions
from kmlc.config.shorthands import PATH_KEYS, shorthand
from kmlc.config.spec import DatasetSpec, ProjectSpec
from kmlc.config.target import TrackingTarget, tracking_target
from kmlc.errors import ConfigError, ConfigErrors
from kmlc.tracking.datasets import SHORTHAND_CLASSES, TrackedArtifactDataset

__all__ = ["build_catalog", "catalog_config", "param_entries"]



def dataset_config(ds: DatasetSpec, root: Path, save_version: str | None = None,
                   tracking_uri: str | None = None) -> dict[str, Any]:
    """The Kedro catalog entry of one dataset, as Kedro's ``from_config`` takes it.

    kmlc's MLflow datasets get the run's tracking store as an argument (``tracking_uri``),
    unless the file names another store for them.
    """
    config = dict(ds.config)
    for key in PATH_KEYS:
        if isinstance(config.get(key), str):
            config[key] = resolve_path(config[key], root)
    kind = shorthand(ds.type)
    if kind is not None:
        config["type"] = SHORTHAND_CLASSES[kind.name]
        if kind.name_key is not None:
            config.setdefault(kind.name_key, ds.name)
        if tracking_uri:
            config.setdefault("tracking_uri", tracking_uri)
        return config
    if ds.track_artifact:
        run_id = config.pop("run_id", None)
        wrapped: dict[str, Any] = {
            "type": TrackedArtifactDataset,
            "dataset": config,
            "artifact_path": ds.artifact_path,
        }
        if run_id:
            wrapped["run_id"] = run_id
        if tracking_uri:
            wrapped["tracking_uri"] = tracking_uri
        if save_version and config.get("versioned"):
            wrapped["save_version"] = save_version
        return wrapped
    config.pop("run_id", None)
    return config


def catalog_config(spec: ProjectSpec, save_version: str | None = None,
                   target: TrackingTarget | None = None) -> dict[str, dict[str, Any]]:
    """Every dataset's catalog entry; ``target``: the run's (default: the file's)."""
    uri = (target or tracking_target(spec)).uri
    return {name: dataset_config(ds, spec.root, save_version, uri)
            for name, ds in spec.datasets.items()}


def param_entries(parameters: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """``("parameters", all)`` and ``("params:a.b", value)`` for every dotted path."""
    yield ALL_PARAMS, dict(parameters)
    for path, value in param_items(parameters):
        yield PARAMS_PREFIX + path, value


def build_catalog(spec: ProjectSpec, *, shared_memory: bool = False,
                  target: TrackingTarget | None = None,
                  load_versions: Mapping[str, str] | None = None) -> DataCatalog:
    """Build the catalog; a dataset Kedro cannot create is a ``ConfigError`` at its line.

    ``target`` is where the run logs (default: the file's, ``tracking_target``). Dataset
    factory patterns go to Kedro as they are (the names the nodes use were resolved by
    Kedro at validate and are plain entries by now); ``load_versions`` is ``kedro run
    --load-versions``.
    """
    cls = SharedMemoryDataCatalog if shared_memory else DataCatalog
    save_version = generate_timestamp()
    check_load_versions(spec, load_versions or {})
    catalog = cls.from_config(catalog_config(spec, save_version, target),
                              dict(spec.credentials),
                              load_versions=dict(load_versions or {}),
                              save_version=save_version)
    errors = []
    for name, ds in spec.datasets.items():
        if ds.is_factory:
            continue
        try:
            catalog.get(name)
        except (DatasetError, ImportError, TypeError, ValueError) as exc:
            src = ds.source
            message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            message = message.replace(f"{TrackedArtifactDataset.__module__}.", "").replace(
                f"An exception occurred when parsing config for dataset '{name}': ", "")
            message = message.split(" Please install")[0].split(" Hint:")[0]
            errors.append(ConfigError(
                f"dataset '{name}' cannot be created: {message}",
                file=src.file if src else str(spec.path), line=src.line if src else 0,
                column=src.column if src else 0, key_path=("datasets", name),
                code="KMLC330"))
    if errors:
        raise ConfigErrors(errors)
    for key, value in param_entries(spec.parameters):
        catalog[key] = value
    return catalog
