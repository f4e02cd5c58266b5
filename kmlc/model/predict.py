"""Model stage, batch predict: ``kmlc predict`` on a file through any kedro-datasets type."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kmlc.config.secrets import redact_uri
from kmlc.errors import ExportError, did_you_mean
from kmlc.model.build import quiet_mlflow
from kmlc.model.state import check_model_uri
from kmlc.tracking.client import open_client

__all__ = ["check_output", "predict_file"]


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


def _load_input(path: str, dataset_type: str | None) -> Any:
    from kedro.io import DatasetError

    if "://" not in path and not Path(path).exists():
        raise ExportError(f"-i {path}: no such file", code="KMLC710",
                          hint=f"the input is read relative to {Path.cwd()}")
    dataset = _dataset(path, dataset_type, "input")
    try:
        return dataset.load()
    except DatasetError as exc:
        cause = exc.__cause__ or exc
        raise ExportError(f"-i {path}: cannot read it as {type(dataset).__name__}: "
                          f"{_first_line(str(cause))}", code="KMLC710",
                          hint="pass --input-type for another kedro-datasets type") from exc


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _type_name(spec: Any) -> str:
    kind = getattr(spec, "type", None)
    return str(getattr(kind, "name", kind))


def _check_columns(model: Any, data: Any, path: str) -> None:
    """Columns the model's signature requires that the input lacks: named, before predict."""
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names() or not hasattr(data, "columns"):
        return
    columns = {str(c) for c in data.columns}
    missing = [spec for spec in schema.inputs
               if getattr(spec, "required", True) and spec.name not in columns]
    if not missing:
        return
    expects = ", ".join(f"{spec.name} ({_type_name(spec)})" for spec in schema.inputs)
    raise ExportError(
        f"-i {path} lacks the column{'s' if len(missing) > 1 else ''} the model expects: "
        f"{', '.join(repr(spec.name) for spec in missing)}",
        code="KMLC711", hint=f"it has: {', '.join(map(str, data.columns))}; "
        f"the model expects: {expects}")


def _check_params(model: Any, params: Mapping[str, Any]) -> None:
    """``--param`` names the model's signature does not declare: an error listing its own."""
    schema = model.metadata.get_params_schema()
    known = [spec.name for spec in schema.params] if schema is not None else []
    for key in params:
        if key in known:
            continue
        listed = ", ".join(f"{spec.name}={spec.default!r}" for spec in schema.params) \
            if schema is not None else ""
        close = did_you_mean(key, known)
        hint = (f"{close + ' ' if close else ''}the model's parameters: {listed}" if known
                else "the model takes no parameters")
        raise ExportError(f"--param {key}: the model has no parameter '{key}'",
                          code="KMLC712", hint=hint)


def predict_file(model_uri: str, input_path: str, output_path: str | None = None, *,
                 input_type: str | None = None, output_type: str | None = None,
                 params: Mapping[str, Any] | None = None) -> Any:
    """Load a pyfunc model and predict on a file read through any kedro-datasets type."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    quiet_mlflow()
    data = _load_input(input_path, input_type)
    if model_uri.startswith(("models:/", "runs:/")):  # never a half-built model
        check_model_uri(open_client(), model_uri)
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:
        raise ExportError(redact_uri(f"cannot load model {model_uri}: {exc}")) from exc
    if params:
        _check_params(model, params)
    _check_columns(model, data, input_path)
    try:
        result = model.predict(data, params=dict(params) if params else None)
    except Exception as exc:
        step = getattr(exc, "kmlc_step", None)
        if step is not None or not isinstance(exc, MlflowException):
            raise _step_failure(exc, input_path, model, data) from exc
        # the input does not fit the signature (types, shapes)
        message = str(exc.message)
        _, found, detail = message.rpartition(". Error: ")  # drop the dump of the whole input
        raise ExportError(f"-i {input_path} does not fit the model's signature: "
                          f"{_first_line(detail if found else message)}",
                          code="KMLC711") from exc
    if hasattr(result, "index") and hasattr(result, "reset_index") and any(
            name is not None for name in result.index.names):
        result = result.reset_index()  # keep a named index (e.g. ids) as columns
    if output_path:
        if not hasattr(result, "to_csv") and output_type is None:
            import pandas as pd

            result = pd.DataFrame(result)
        _save(result, output_path, output_type)
    return result


def check_output(output_path: str, force: bool) -> None:
    """``-o`` names a file that exists: refused without ``--force`` (it may be an input)."""
    if "://" in output_path:
        return
    if Path(output_path).is_dir():
        raise ExportError(f"-o {output_path} is a folder", code="KMLC715",
                          hint="give a file name, e.g. -o predictions.csv")
    if Path(output_path).exists() and not force:
        raise ExportError(f"-o {output_path} exists", code="KMLC715",
                          hint="pass --force to replace it, or give another file")


def _save(result: Any, output_path: str, output_type: str | None) -> None:
    """Write the predictions; a local file is written beside it, then renamed over it:
    never a half-written file, and the old one stays whole if writing fails."""
    import os
    import tempfile

    if "://" in output_path:
        _dataset(output_path, output_type, "output").save(result)
        return
    target = Path(output_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    kind = output_type or _BY_SUFFIX.get(target.suffix.lower())
    fd, staged = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix,
                                  dir=target.parent)
    os.close(fd)
    try:
        _dataset(staged, kind, "output").save(result)
        os.replace(staged, target)
    except OSError as exc:
        raise ExportError(f"-o {output_path}: cannot write it: {exc}", code="KMLC715") from exc
    finally:
        Path(staged).unlink(missing_ok=True)


def _step_failure(exc: Exception, input_path: str, model: Any = None,
                  data: Any = None) -> ExportError:
    """One line for an error raised inside a step of the model: which step, where in
    its function, the error; the full traceback is ``kmlc predict -v``'s."""
    import traceback

    step = getattr(exc, "kmlc_step", None)
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if step is not None:
        name, func = step
        module, _, attr = func.partition(":") if ":" in func else func.rpartition(".")
        # the step function's own frame: the outermost one in the module defining it
        module_file = "/" + module.replace(".", "/")
        for frame in frames:
            if module and Path(frame.filename).with_suffix("").as_posix().endswith(module_file):
                where = f", {Path(frame.filename).name}:{frame.lineno}"
                break
        what = f"step '{name}' ({module}.{attr}{where})" if module else f"step '{name}'"
    else:
        what = "the model"
    message = _first_line(str(exc) or repr(exc)) or "(no message)"
    hint = "the full traceback: kmlc predict -v"
    if (isinstance(exc, KeyError) and model is not None
            and model.metadata.get_input_schema() is None and hasattr(data, "columns")):
        # most likely a column the step looked up: a model without a signature checks none
        hint = (f"the model has no signature to check the input against; -i {input_path} "
                f"has the columns: {', '.join(map(str, data.columns))}; {hint}")
    return ExportError(f"-i {input_path}: {what} failed: {type(exc).__name__}: {message}",
                       code="KMLC714", hint=hint)
