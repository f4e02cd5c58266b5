"""Model stage, batch predict: ``kmlc predict`` on a file through any kedro-datasets type."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kmlc.config.secrets import redact_uri
from kmlc.errors import ExportError
from kmlc.model.build import quiet_mlflow

__all__ = ["predict_file"]


_BY_SUFFIX = {".csv": "pandas.CSVDataset", ".parquet": "pandas.ParquetDataset",
              ".pq": "pandas.ParquetDataset", ".json": "pandas.JSONDataset",
              ".pkl": "pickle.PickleDataset", ".pickle": "pickle.PickleDataset"}


def _dataset(path: str, dataset_type: str | None, role: str) -> Any:
    from kedro.io import AbstractDataset

    kind = dataset_type or _BY_SUFFIX.get(Path(path).suffix.lower())
    if kind is None:
        raise ExportError(f"cannot tell the {role} dataset type of {path}",
                          hint=f"pass --{role}-type, e.g. pandas.CSVDataset")
    try:
        return AbstractDataset.from_config(role, {"type": kind, "filepath": path})
    except Exception as exc:
        raise ExportError(f"{role} dataset {kind} for {path}: {exc}") from exc


def predict_file(model_uri: str, input_path: str, output_path: str | None = None, *,
                 input_type: str | None = None, output_type: str | None = None,
                 params: Mapping[str, Any] | None = None) -> Any:
    """Load a pyfunc model and predict on a file read through any kedro-datasets type."""
    import mlflow.pyfunc

    quiet_mlflow()
    data = _dataset(input_path, input_type, "input").load()
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:
        raise ExportError(redact_uri(f"cannot load model {model_uri}: {exc}")) from exc
    if params:
        schema = model.metadata.get_params_schema()
        known = sorted(spec.name for spec in (schema.params if schema else []))
        unknown = sorted(set(params) - set(known))
        if unknown:  # MLflow would only warn and ignore them
            raise ExportError(f"unknown --param {', '.join(unknown)}; the model takes: "
                              f"{', '.join(known) or 'none'}")
    result = model.predict(data, params=dict(params) if params else None)
    if hasattr(result, "index") and hasattr(result, "reset_index") and any(
            name is not None for name in result.index.names):
        result = result.reset_index()  # keep a named index (e.g. ids) as columns
    if output_path:
        out = _dataset(output_path, output_type, "output")
        if not hasattr(result, "to_csv") and output_type is None:
            import pandas as pd

            result = pd.DataFrame(result)
        out.save(result)
    return result
