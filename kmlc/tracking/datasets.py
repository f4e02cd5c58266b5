"""Kedro datasets that write to (and read back from) an MLflow run.

They replace kedro-mlflow's ``MlflowMetric(s)(History)Dataset``,
``MlflowModelTrackingDataset`` and ``MlflowArtifactDataset``. Each dataset logs with
an ``MlflowClient`` on its explicit ``tracking_uri`` (the catalog passes the run's
store) to an explicit run id — the run kmlc opened, published for the length of the
run in ``MLFLOW_RUN_ID``, or a ``run_id`` given in the file — so that thread and
process runners land everything in the same run. They hold no client in their
pickled state, so the parallel runner can ship them to worker processes.
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from kmlc.tracking.active import RUN_ID_ENV
from kmlc.tracking.batch import log_metric_tuples
from kmlc.tracking.client import open_client
from kmlc.tracking.logged_models import log_model_folder, log_model_steps, logged_model_location
from kmlc.tracking.retry import with_retry
from kmlc.tracking.worker import current

__all__ = [
    "SHORTHAND_CLASSES",
    "MlflowMetricDataset",
    "MlflowMetricHistoryDataset",
    "MlflowMetricsDataset",
    "MlflowModelDataset",
    "TrackedArtifactDataset",
]

class _MlflowDataset(AbstractDataset[Any, Any]):
    """Shared plumbing: which store, which run, a lazily created client."""

    def __init__(self, run_id: str | None = None, tracking_uri: str | None = None,
                 metadata: dict[str, Any] | None = None):
        self._run_id = run_id
        self._tracking_uri = tracking_uri
        self._client_cache: Any = None
        self.metadata = metadata

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client_cache"] = None
        return state

    @property
    def _client(self) -> Any:
        if self._client_cache is None:

            self._client_cache = open_client(self._tracking_uri)
        return self._client_cache

    def _target_run(self, *, saving: bool) -> str:
        if saving:
            run_id = os.environ.get(RUN_ID_ENV) or self._run_id
        else:
            run_id = self._run_id or os.environ.get(RUN_ID_ENV)
        if not run_id:
            action = "log to" if saving else "read from"
            raise DatasetError(f"{type(self).__name__}: no MLflow run to {action}; run it "
                               "through `kmlc run`, or give the dataset a `run_id`")
        return run_id

    def _describe(self) -> dict[str, Any]:
        return {"run_id": self._run_id}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _worker_for(tracking_uri: str | None) -> Any:
    """The tracking worker of this process, if it runs (it serves any store URI)."""

    return current() if tracking_uri else None


def _log_metrics(dataset: _MlflowDataset, run_id: str,
                 metrics: list[tuple[str, float, int, int]]) -> None:
    """Through the tracking worker when it serves this store, else with a client here."""
    remote = _worker_for(dataset._tracking_uri)
    if remote is not None:
        remote.log_metrics(dataset._tracking_uri, run_id, metrics)
        return
    log_metric_tuples(dataset._client, run_id, metrics)


def _number(value: Any, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: expected a number, got {type(value).__name__} "
                           f"{value!r:.80}") from None


class MlflowMetricDataset(_MlflowDataset):
    """One number logged as a metric; ``{"value": v, "step": s}`` is accepted too.

    Each save without an explicit step goes to the next step, so saving twice keeps
    both values. Loading returns the latest value of the metric in the run.
    """

    def __init__(self, key: str, step: int | None = None, run_id: str | None = None,
                 tracking_uri: str | None = None, metadata: dict[str, Any] | None = None):
        super().__init__(run_id, tracking_uri, metadata)
        self._key = key
        self._step = step
        self._saves = 0

    def load(self) -> float:
        history = with_retry(self._client.get_metric_history, self._target_run(saving=False),
                             self._key)
        if not history:
            raise DatasetError(f"metric '{self._key}' not found in run "
                               f"{self._target_run(saving=False)}")
        return float(max(history, key=lambda m: (m.step, m.timestamp)).value)

    def save(self, data: Any) -> None:
        step = self._step if self._step is not None else self._saves
        if isinstance(data, Mapping):
            step = int(data.get("step", step))
            data = data.get("value")
        value = _number(data, f"metric '{self._key}'")
        _log_metrics(self, self._target_run(saving=True),
                     [(self._key, value, _now_ms(), step)])
        self._saves += 1

    def _exists(self) -> bool:
        try:
            return bool(self._client.get_metric_history(self._target_run(saving=False),
                                                        self._key))
        except Exception:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"key": self._key, "step": self._step, "run_id": self._run_id}


class MlflowMetricHistoryDataset(_MlflowDataset):
    """A list of numbers (steps 0..n-1) or ``{step: value}`` as one metric's history."""

    def __init__(self, key: str, run_id: str | None = None, tracking_uri: str | None = None,
                 metadata: dict[str, Any] | None = None):
        super().__init__(run_id, tracking_uri, metadata)
        self._key = key

    def load(self) -> list[float]:
        history = with_retry(self._client.get_metric_history, self._target_run(saving=False),
                             self._key)
        if not history:
            raise DatasetError(f"metric history '{self._key}' not found")
        return [float(m.value) for m in sorted(history, key=lambda m: (m.step, m.timestamp))]

    def save(self, data: Any) -> None:
        where = f"metric history '{self._key}'"
        if isinstance(data, Mapping):
            items = [(int(step), _number(value, where)) for step, value in data.items()]
        elif isinstance(data, (list, tuple)) or hasattr(data, "tolist"):
            values = data.tolist() if hasattr(data, "tolist") else data
            items = [(step, _number(value, where)) for step, value in enumerate(values)]
        else:
            raise DatasetError(f"{where}: expected a list of numbers or {{step: value}}, "
                               f"got {type(data).__name__}")
        now = _now_ms()
        _log_metrics(self, self._target_run(saving=True),
                     [(self._key, value, now, step) for step, value in items])

    def _describe(self) -> dict[str, Any]:
        return {"key": self._key, "run_id": self._run_id}


class MlflowMetricsDataset(_MlflowDataset):
    """``{name: value | {"value": v, "step": s} | [values]}`` as metrics, in batches."""

    def __init__(self, prefix: str | None = None, run_id: str | None = None,
                 tracking_uri: str | None = None, metadata: dict[str, Any] | None = None):
        super().__init__(run_id, tracking_uri, metadata)
        self._prefix = prefix

    def _key(self, name: str) -> str:
        return f"{self._prefix}.{name}" if self._prefix else name

    def load(self) -> dict[str, float]:
        run = with_retry(self._client.get_run, self._target_run(saving=False))
        out: dict[str, float] = {}
        for key, value in run.data.metrics.items():
            if self._prefix:
                if not key.startswith(self._prefix + "."):
                    continue
                key = key[len(self._prefix) + 1:]
            out[key] = float(value)
        return out

    def save(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise DatasetError(f"metrics: expected a mapping of name -> value, got "
                               f"{type(data).__name__}")
        now = _now_ms()
        metrics: list[tuple[str, float, int, int]] = []
        for name, value in data.items():
            key = self._key(str(name))
            if isinstance(value, Mapping):
                metrics.append((key, _number(value.get("value"), key), now,
                                int(value.get("step", 0))))
            elif isinstance(value, (list, tuple)):
                metrics.extend((key, _number(v, key), now, step)
                               for step, v in enumerate(value))
            else:
                metrics.append((key, _number(value, key), now, 0))
        _log_metrics(self, self._target_run(saving=True), metrics)

    def _describe(self) -> dict[str, Any]:
        return {"prefix": self._prefix, "run_id": self._run_id}


class MlflowModelDataset(_MlflowDataset):
    """A model logged into the run with an MLflow flavor (``mlflow.sklearn``, ...).

    Saving logs it under ``artifact_path`` with ``save_args`` passed to the flavor.
    Loading reads ``model_uri`` when given (``models:/name@alias``, ``runs:/...``),
    otherwise the model logged in the run (the current one, or ``run_id``).
    """

    def __init__(self, flavor: str = "mlflow.pyfunc", artifact_path: str = "model",
                 model_uri: str | None = None, run_id: str | None = None,
                 save_args: dict[str, Any] | None = None,
                 load_args: dict[str, Any] | None = None, tracking_uri: str | None = None,
                 metadata: dict[str, Any] | None = None):
        super().__init__(run_id, tracking_uri, metadata)
        self._flavor = flavor
        self._artifact_path = artifact_path
        self._model_uri = model_uri
        self._save_args = dict(save_args or {})
        self._load_args = dict(load_args or {})
        try:
            self._module()
        except ImportError as exc:
            raise DatasetError(f"flavor '{flavor}' cannot be imported: {exc}") from exc

    def _module(self) -> Any:
        module = importlib.import_module(self._flavor)
        if not hasattr(module, "load_model") or not hasattr(module, "save_model"):
            raise ImportError(f"'{self._flavor}' is not an MLflow flavor module")
        return module

    def _location(self) -> str:
        """Where the model's files are: ``model_uri``, else the run's LoggedModel by name.

        Resolved with this dataset's own client: MLflow's ``runs:/`` resolution of a
        LoggedModel falls back to the process-wide store.
        """
        if self._model_uri:
            return self._model_uri
        run_id = self._target_run(saving=False)
        location = logged_model_location(self._client, run_id, self._artifact_path)
        if location is None:
            raise DatasetError(f"run {run_id} has no model '{self._artifact_path}'")
        return location

    def _local_copy(self, folder: str) -> str:
        """The model's files, downloaded from this dataset's store into ``folder``."""
        from mlflow.artifacts import download_artifacts

        return str(with_retry(download_artifacts, artifact_uri=self._location(),
                              dst_path=folder, tracking_uri=self._tracking_uri))

    def load(self) -> Any:
        folder = tempfile.mkdtemp(prefix="kmlc-model-")
        try:
            return self._module().load_model(self._local_copy(folder), **self._load_args)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def save(self, data: Any) -> None:

        if self._model_uri:
            raise DatasetError(f"this mlflow.model dataset reads {self._model_uri}; it "
                               "cannot be saved to")
        module = self._module()
        first = next(iter(inspect.signature(module.save_model).parameters))
        run_id = self._target_run(saving=True)
        args = dict(self._save_args)
        if ("pip_requirements" not in args and "conda_env" not in args
                and hasattr(module, "get_default_pip_requirements")):
            # MLflow would otherwise infer them by loading the model in a subprocess
            # (about 6 s a model); the flavor's own pinned defaults are what it finds.
            args["pip_requirements"] = module.get_default_pip_requirements()

        def save(path: str, mlflow_model: Any) -> None:
            module.save_model(**{first: data}, path=path, mlflow_model=mlflow_model, **args)

        remote = _worker_for(self._tracking_uri)
        if remote is None:
            log_model_folder(open_client(self._tracking_uri), run_id, self._artifact_path,
                             save, model_type=self._flavor)
            return
        # the tracking worker has the store open: it creates, uploads and finalizes the
        # LoggedModel, and this process only writes the model's files
        uri, name = str(self._tracking_uri), self._artifact_path
        log_model_steps(run_id, name, save,
                        create=lambda: remote.create_model(uri, run_id, name, self._flavor),
                        upload=lambda model_id, folder: remote.upload_model(
                            uri, run_id, model_id, folder),
                        fail=lambda model_id: remote.fail_model(uri, model_id))

    def _exists(self) -> bool:
        try:
            from mlflow.artifacts import list_artifacts

            return bool(list_artifacts(self._location(), tracking_uri=self._tracking_uri))
        except Exception:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"flavor": self._flavor, "artifact_path": self._artifact_path,
                "model_uri": self._model_uri, "run_id": self._run_id}


class TrackedArtifactDataset(AbstractDataset[Any, Any]):
    """Any file or folder dataset, also logged as an artifact of the run on each save.

    Saving writes locally exactly as the wrapped dataset does, then logs the written
    file (or folder). With ``run_id`` set, loading downloads the artifact of that run
    and reads it with the wrapped dataset's type.
    """

    def __init__(self, dataset: dict[str, Any], artifact_path: str | None = None,
                 run_id: str | None = None, save_version: str | None = None,
                 load_version: str | None = None, tracking_uri: str | None = None,
                 metadata: dict[str, Any] | None = None):
        self._config = dict(dataset)
        self._artifact_path = artifact_path or None
        self._run_id = run_id
        self._tracking_uri = tracking_uri
        self._versions = (load_version, save_version)
        self._inner = AbstractDataset.from_config("tracked", dict(self._config), load_version,
                                                  save_version)
        self.metadata = metadata

    def _local_path(self, *, saved: bool) -> Path:
        inner: Any = self._inner
        raw: PurePosixPath | None = getattr(inner, "_filepath", None) or getattr(
            inner, "_path", None)
        if raw is None:
            raise DatasetError(f"{type(inner).__name__} has no file path to log as an artifact")
        protocol = getattr(inner, "_protocol", "file")
        if protocol not in ("file", "local", None):
            raise DatasetError("track: artifact logs local files only; "
                               f"{type(inner).__name__} writes to {protocol}://")
        if saved and getattr(inner, "_version", None) is not None:
            raw = inner._get_versioned_path(inner.resolve_save_version())
        return Path(str(raw))

    def save(self, data: Any) -> None:
        self._inner.save(data)
        self._log(self._local_path(saved=True))

    def log_existing(self) -> None:
        """Log the file already on disk (the last version saved) to the current run: the
        run cache's way of keeping a skipped node's tracked artifact in the new run."""
        inner: Any = self._inner
        if getattr(inner, "_version", None) is not None:
            self._log(Path(str(inner._get_load_path())))
        else:
            self._log(self._local_path(saved=False))

    def _log(self, path: Path) -> None:
        run_id = os.environ.get(RUN_ID_ENV) or self._run_id
        if not run_id:
            raise DatasetError("track: artifact: no MLflow run to log to; run it through "
                               "`kmlc run`")
        folder = path.is_dir()
        target = ("/".join(filter(None, [self._artifact_path, path.name])) if folder
                  else self._artifact_path)
        remote = _worker_for(self._tracking_uri)
        if remote is not None:
            remote.log_artifact(self._tracking_uri, run_id, str(path), target, folder)
            return

        client = open_client(self._tracking_uri)
        log = client.log_artifacts if folder else client.log_artifact
        with_retry(log, run_id, str(path), target)

    def load(self) -> Any:
        if not self._run_id:
            return self._inner.load()

        name = Path(str(getattr(self._inner, "_filepath", "") or
                        getattr(self._inner, "_path", ""))).name
        remote = "/".join(filter(None, [self._artifact_path, name]))
        folder = tempfile.mkdtemp(prefix="kmlc-artifact-")
        try:
            local = with_retry(open_client(self._tracking_uri).download_artifacts,
                               self._run_id, remote, folder)
            config = dict(self._config)
            config.pop("versioned", None)
            key = "path" if "path" in config and "filepath" not in config else "filepath"
            config[key] = local
            return AbstractDataset.from_config("tracked", config).load()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _exists(self) -> bool:
        return bool(self._inner.exists())

    def _release(self) -> None:
        self._inner.release()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._config.get("type"), "artifact_path": self._artifact_path,
                "run_id": self._run_id}


# the class the catalog builds for each ``mlflow.*`` shorthand of ``kmlc.config.shorthands``
# (the registry says what each is; tests/config/test_shorthands.py checks the two agree)
SHORTHAND_CLASSES: Mapping[str, type[AbstractDataset[Any, Any]]] = {
    "mlflow.metric": MlflowMetricDataset,
    "mlflow.metric_history": MlflowMetricHistoryDataset,
    "mlflow.metrics": MlflowMetricsDataset,
    "mlflow.model": MlflowModelDataset,
}
