"""Import stage 2a: one Kedro catalog entry -> one ``datasets:`` entry of kmlc.

kedro-mlflow's datasets are recognised by their ``type`` string (kedro-mlflow is never
imported) and become kmlc's ``mlflow.*`` types or ``track:``; old ``*DataSet`` and
``kedro.extras.datasets`` spellings become today's kedro-datasets names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kmlc.config.dataset_types import KEDRO_MLFLOW_TYPES, kedro_mlflow_class

__all__ = ["ConvertedDataset", "convert_dataset", "modern_type"]

_MEMORY = {"MemoryDataset", "kedro.io.MemoryDataset", "kedro.io.memory_dataset.MemoryDataset"}


@dataclass
class ConvertedDataset:
    """The kmlc entry (``None`` when nothing could be written) and what was lost."""

    entry: dict[str, Any] | None
    # kmlc key path inside the entry -> the Kedro key path it came from
    moved: dict[tuple[str | int, ...], tuple[str | int, ...]] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (what, what to do)


def modern_type(type_name: str) -> str:
    """Today's kedro-datasets spelling of a dataset type (``*DataSet`` -> ``*Dataset``)."""
    name = type_name.replace("DataSet", "Dataset")
    if name in _MEMORY:
        return "MemoryDataset"
    for prefix in ("kedro.extras.datasets.", "kedro_datasets."):
        parts = name[len(prefix):].split(".")
        if name.startswith(prefix) and len(parts) in (2, 3):
            return f"{parts[0]}.{parts[-1]}"  # group.Class, as catalog.yml usually writes it
    return name


def convert_dataset(name: str, config: dict[str, Any]) -> ConvertedDataset:
    """Convert the resolved Kedro catalog entry ``config`` of dataset ``name``."""
    type_name = str(config.get("type", ""))
    cls = kedro_mlflow_class(type_name)
    if type_name.startswith("kedro_mlflow.") and cls is None:
        return ConvertedDataset(None, problems=[(
            f"dataset '{name}': unknown kedro-mlflow type '{type_name}'",
            "declare it by hand with an `mlflow.*` type or `track:`")])
    if cls is None:
        entry = {key: value for key, value in config.items()}
        entry["type"] = modern_type(type_name)
        return ConvertedDataset(entry, {(k,): (k,) for k in config})
    return _CONVERTERS[cls](name, dict(config))


def _artifact(name: str, config: dict[str, Any]) -> ConvertedDataset:
    inner = config.get("dataset")
    if isinstance(inner, str):
        inner = {"type": inner}
    if not isinstance(inner, dict) or "type" not in inner:
        return ConvertedDataset(None, problems=[(
            f"dataset '{name}': MlflowArtifactDataset without a `dataset:` to wrap",
            "declare the file dataset by hand with `track: artifact`")])
    entry = {key: value for key, value in inner.items()}
    entry["type"] = modern_type(str(inner["type"]))
    moved: dict[tuple[str | int, ...], tuple[str | int, ...]] = {
        (k,): ("dataset", k) for k in inner}
    artifact_path = config.get("artifact_path")
    entry["track"] = {"artifact_path": artifact_path} if artifact_path else "artifact"
    if artifact_path:
        moved[("track", "artifact_path")] = ("artifact_path",)
    problems = []
    if config.get("run_id"):
        problems.append((f"dataset '{name}': `run_id` of MlflowArtifactDataset (reading an "
                         "artifact of a past run) is not converted",
                         "download the artifact once (`mlflow artifacts download`) and "
                         "read the file"))
    return ConvertedDataset(entry, moved, problems)


def _metric(name: str, config: dict[str, Any]) -> ConvertedDataset:
    entry: dict[str, Any] = {"type": "mlflow.metric"}
    moved = _copy(config, entry, ("key", "run_id"))
    problems = []
    save_args = config.get("save_args") or {}
    if "step" in save_args:
        entry["step"] = save_args["step"]
        moved[("step",)] = ("save_args", "step")
    if save_args.get("mode", "overwrite") != "overwrite":
        problems.append((f"dataset '{name}': save_args.mode '{save_args['mode']}' of "
                         "MlflowMetricDataset is not converted",
                         "return the whole history from the node into an "
                         "`mlflow.metric_history` dataset"))
    if config.get("load_args"):
        problems.append((f"dataset '{name}': load_args of MlflowMetricDataset are not "
                         "converted", "kmlc loads the last value of the metric"))
    return ConvertedDataset(entry, moved, problems)


def _metric_history(name: str, config: dict[str, Any]) -> ConvertedDataset:
    entry: dict[str, Any] = {"type": "mlflow.metric_history"}
    moved = _copy(config, entry, ("key", "run_id"))
    problems = []
    for args in ("load_args", "save_args"):
        if config.get(args):
            problems.append((f"dataset '{name}': {args} of MlflowMetricHistoryDataset are "
                             "not converted",
                             "mlflow.metric_history takes a list (or {step: value}) of numbers"))
    return ConvertedDataset(entry, moved, problems)


def _metrics(name: str, config: dict[str, Any]) -> ConvertedDataset:
    entry: dict[str, Any] = {"type": "mlflow.metrics"}
    return ConvertedDataset(entry, _copy(config, entry, ("prefix", "run_id")))


def _model_tracking(name: str, config: dict[str, Any]) -> ConvertedDataset:
    entry: dict[str, Any] = {"type": "mlflow.model"}
    moved = _copy(config, entry, ("flavor", "artifact_path", "run_id", "save_args",
                                  "load_args"))
    problems = []
    if config.get("pyfunc_workflow"):
        problems.append((f"dataset '{name}': pyfunc_workflow "
                         f"'{config['pyfunc_workflow']}' is not converted",
                         "return an mlflow.pyfunc.PythonModel from the node, or log the "
                         "model inside the node"))
    return ConvertedDataset(entry, moved, problems)


def _model_registry(name: str, config: dict[str, Any]) -> ConvertedDataset:
    model = config.get("model_name")
    alias, version = config.get("alias"), config.get("stage_or_version")
    suffix = f"@{alias}" if alias else f"/{version}" if version is not None else "@latest"
    entry: dict[str, Any] = {"type": "mlflow.model",
                             "flavor": config.get("flavor") or "mlflow.pyfunc",
                             "model_uri": f"models:/{model}{suffix}"}
    moved = _copy(config, entry, ("load_args",))
    moved[("model_uri",)] = ("model_name",)
    problems = []
    if version is None and not alias:
        problems.append((f"dataset '{name}': MlflowModelRegistryDataset without a version "
                         "or alias", "written as `models:/NAME@latest`; pin an alias"))
    if config.get("pyfunc_workflow") not in (None, "python_model"):
        problems.append((f"dataset '{name}': pyfunc_workflow is not converted",
                         "kmlc loads pyfunc models with mlflow.pyfunc.load_model"))
    return ConvertedDataset(entry, moved, problems)


def _model_local(name: str, config: dict[str, Any]) -> ConvertedDataset:
    return ConvertedDataset(None, problems=[(
        f"dataset '{name}': MlflowModelLocalFileSystemDataset has no kmlc dataset",
        f"use {KEDRO_MLFLOW_TYPES['MlflowModelLocalFileSystemDataset']}; until then "
        "the node's output stays in memory")])


def _copy(config: dict[str, Any], entry: dict[str, Any], keys: tuple[str, ...]
          ) -> dict[tuple[str | int, ...], tuple[str | int, ...]]:
    moved: dict[tuple[str | int, ...], tuple[str | int, ...]] = {}
    for key in keys:
        if config.get(key) is not None:
            entry[key] = config[key]
            moved[(key,)] = (key,)
    return moved


_CONVERTERS = {
    "MlflowArtifactDataset": _artifact,
    "MlflowMetricDataset": _metric,
    "MlflowMetricHistoryDataset": _metric_history,
    "MlflowMetricsHistoryDataset": _metrics,
    "MlflowModelTrackingDataset": _model_tracking,
    "MlflowModelRegistryDataset": _model_registry,
    "MlflowModelLocalFileSystemDataset": _model_local,
}
