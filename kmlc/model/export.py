"""Export stage: the inference plan -> an MLflow pyfunc model (logged, saved, registered).

The model is logged from code (``kmlc/model/runtime.py`` is its runtime) with the plan as a
JSON artifact, the persisted training outputs as artifacts, and the node modules as
``code_paths``: nothing pickled of Kedro, no absolute path or credential of this
machine. ``export_model`` writes a model folder atomically and checks it the way a
consumer would, in a fresh process outside the project, before it says it is done.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kmlc.compiler.plan import InferencePlan, plan_from_spec
from kmlc.config.spec import ProjectSpec
from kmlc.errors import ExportError

__all__ = ["ExportResult", "check_model", "export_model", "log_pipeline_model",
           "predict_file", "requirements"]

PYFUNC_FILE = Path(__file__).with_name("runtime.py")
PLAN_FILE = "kmlc_plan.json"
PLAN_ARTIFACT = "kmlc_plan"  # the name kmlc/model/runtime.py reads the plan under
_EXAMPLE_ROWS = 5
_CORE_DISTS = ("kmlc", "kedro", "kedro-datasets", "mlflow")


@dataclass(frozen=True)
class ExportResult:
    model_uri: str | None
    output: Path | None = None
    registered: str | None = None
    version: str | None = None
    checked: bool = False


# ---------------------------------------------------------------- the model's parts


def artifact_files(spec: ProjectSpec, plan: InferencePlan) -> dict[str, Path]:
    """The file (or folder) of each artifact as training left it (latest version)."""
    out: dict[str, Path] = {}
    for artifact in plan.artifacts:
        ds = spec.datasets[artifact.name]
        raw = ds.filepath or ""
        path = Path(raw) if Path(raw).is_absolute() else spec.root / raw
        if ds.config.get("versioned") and path.is_dir():
            versions = sorted(p for p in path.iterdir() if (p / path.name).exists())
            if versions:
                path = versions[-1] / path.name
        if not path.exists():
            raise ExportError(f"artifact '{artifact.name}' was not found at {path}",
                              hint="run `kmlc run training` first")
        out[artifact.name] = path
    return out


def _module_origin(module: str, code: Sequence[Path]) -> Path:
    top = module.split(".")[0]
    for folder in code:
        for candidate in (folder / top, folder / f"{top}.py"):
            if candidate.exists():
                return candidate
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        raise ExportError(f"module '{module}' of the inference nodes cannot be found")
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def code_paths(spec: ProjectSpec, plan: InferencePlan) -> list[Path]:
    """The modules (or top-level packages) that define the inference functions."""
    paths = [_module_origin(module, spec.code) for module in plan.modules]
    return list(dict.fromkeys(paths))


def _imports_of(path: Path) -> set[str]:
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    names: set[str] = set()
    for file in files:
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names


def requirements(spec: ProjectSpec, plan: InferencePlan, paths: Sequence[Path]) -> list[str]:
    """``pip_requirements: auto``: kmlc's stack and what the node modules import, pinned."""
    if spec.model is not None and spec.model.pip_requirements != "auto":
        return list(spec.model.pip_requirements)
    local = {p.stem if p.is_file() else p.name for p in paths}
    dists = list(_CORE_DISTS)
    by_module = metadata.packages_distributions()
    for name in sorted(set().union(*(_imports_of(p) for p in paths))):
        if name in sys.stdlib_module_names or name in local:
            continue
        dists.extend(by_module.get(name, []))
    pinned = []
    for dist in dict.fromkeys(dists):
        try:
            pinned.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return pinned


def _load_runtime(artifacts: Mapping[str, str]) -> Any:
    """The model's own runtime, loaded in this process (to infer the signature)."""
    import importlib

    runtime = importlib.import_module("kmlc.model.runtime")
    model = runtime.KmlcPipelineModel()
    model.load_context(SimpleNamespace(artifacts=dict(artifacts), model_config={}))
    return model


def _head(data: Any, rows: int) -> Any:
    if hasattr(data, "iloc"):
        return data.iloc[:rows]
    if isinstance(data, (list, tuple)):
        return data[:rows]
    if hasattr(data, "shape") and getattr(data, "ndim", 0) >= 1:
        return data[:rows]
    return data


def _param_schema(plan: InferencePlan) -> Any:
    from mlflow.types.schema import ParamSchema, ParamSpec

    specs = []
    for key, value in plan.params.items():
        if not key.startswith("params:") or isinstance(value, bool | int | float | str) is False:
            continue
        dtype = ("boolean" if isinstance(value, bool) else "long" if isinstance(value, int)
                 else "double" if isinstance(value, float) else "string")
        specs.append(ParamSpec(key[len("params:"):], dtype, value))
    return ParamSchema(specs) if specs else None


def _signature(model: Any, plan: InferencePlan, sample: Any) -> Any:
    from mlflow.models import infer_signature

    output = model.predict(None, sample)
    signature = infer_signature(sample, output)
    signature.params = _param_schema(plan)
    return signature


def build_model_args(spec: ProjectSpec, input_data: Any | None, folder: Path
                     ) -> dict[str, Any]:
    """Everything ``mlflow.pyfunc`` needs to save or log the model."""
    model_spec = spec.model
    if model_spec is None:
        raise ExportError("the project has no `model:` section", hint="add model: {input: …}")
    plan = plan_from_spec(spec)
    files = artifact_files(spec, plan)
    paths = code_paths(spec, plan)
    plan_path = folder / PLAN_FILE
    plan_path.write_text(plan.to_json(), encoding="utf-8")
    artifacts = {name: str(path) for name, path in files.items()}
    artifacts[PLAN_ARTIFACT] = str(plan_path)
    signature = example = None
    if input_data is not None:
        sample = _head(input_data, _EXAMPLE_ROWS)
        if model_spec.signature == "auto":
            try:
                signature = _signature(_load_runtime(artifacts), plan, sample)
            except Exception as exc:
                raise ExportError(f"the inference pipeline fails on the first rows of "
                                  f"'{model_spec.input}': {type(exc).__name__}: {exc}") from exc
        if model_spec.input_example:
            example = sample
    return {
        "python_model": str(PYFUNC_FILE),
        "artifacts": artifacts,
        "code_paths": [str(p) for p in paths],
        "signature": signature,
        "input_example": example,
        "pip_requirements": requirements(spec, plan, paths),
        "metadata": {"kmlc_project": spec.name, "kmlc_plan_version": 1},
    }


def _quiet_mlflow() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\..*")
    for name in ("mlflow", "mlflow.models", "mlflow.pyfunc", "mlflow.utils"):
        logging.getLogger(name).setLevel(logging.ERROR)


def scrub_mlmodel(folder: Path) -> None:
    """Remove this machine's absolute paths from a model's ``MLmodel`` file.

    MLflow records where each artifact and the model's code came from; the loader only
    needs the paths inside the model folder.
    """
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    mlmodel = folder / "MLmodel"
    data = yaml.load(mlmodel.read_text(encoding="utf-8"))
    data.pop("artifact_path", None)
    pyfunc = data.get("flavors", {}).get("python_function", {})
    for entry in (pyfunc.get("artifacts") or {}).values():
        if isinstance(entry, dict):
            entry.pop("uri", None)
    if pyfunc.get("model_code_path"):
        pyfunc["model_code_path"] = Path(str(pyfunc["model_code_path"])).name
    with mlmodel.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)


def save_pipeline_model(spec: ProjectSpec, path: Path, input_data: Any | None = None,
                        mlflow_model: Any | None = None) -> None:
    """Save the bound model of ``spec`` to the folder ``path`` (which must not exist)."""
    import mlflow

    _quiet_mlflow()
    with tempfile.TemporaryDirectory(prefix="kmlc-model-") as tmp:
        args = build_model_args(spec, input_data, Path(tmp))
        mlflow.pyfunc.save_model(str(path), mlflow_model=mlflow_model, **args)
    scrub_mlmodel(path)


@dataclass(frozen=True)
class LoggedPipelineModel:
    model_uri: str
    run_uri: str
    model_id: str
    registered_version: str | None = None


def log_pipeline_model(spec: ProjectSpec, *, run_id: str, input_data: Any | None = None
                       ) -> LoggedPipelineModel:
    """Log the inference pipeline of ``spec`` into run ``run_id`` as an MLflow 3 LoggedModel.

    The model is saved to a staging folder, scrubbed of local paths, then uploaded;
    it is marked READY only once every file is in the store (FAILED otherwise).
    """
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model
    from mlflow.tracking import MlflowClient

    from kmlc.tracking.store import with_retry

    model_spec = spec.model
    assert model_spec is not None
    client = MlflowClient()
    run = with_retry(client.get_run, run_id)
    logged = with_retry(client.create_logged_model, run.info.experiment_id,
                        name=model_spec.artifact_path, source_run_id=run_id,
                        model_type="kmlc-pipeline")
    try:
        with tempfile.TemporaryDirectory(prefix="kmlc-stage-") as tmp:
            staged = Path(tmp) / "model"
            save_pipeline_model(spec, staged, input_data,
                                Model(run_id=run_id, model_id=logged.model_id))
            with_retry(client.log_model_artifacts, logged.model_id, str(staged))
        with_retry(client.log_outputs, run_id, [LoggedModelOutput(logged.model_id, 0)])
        with_retry(client.finalize_logged_model, logged.model_id, LoggedModelStatus.READY)
    except BaseException:
        with contextlib.suppress(Exception):  # the original error matters more
            client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    model_uri = f"models:/{logged.model_id}"
    version = None
    if model_spec.registered_name:
        version = _register(model_uri, model_spec.registered_name, model_spec.alias)
    return LoggedPipelineModel(model_uri, f"runs:/{run_id}/{model_spec.artifact_path}",
                               logged.model_id, version)


def _register(model_uri: str, name: str, alias: str | None) -> str:
    import mlflow
    from mlflow.tracking import MlflowClient

    from kmlc.tracking.store import with_retry

    version = with_retry(mlflow.register_model, model_uri, name)
    if alias:
        with_retry(MlflowClient().set_registered_model_alias, name, alias, version.version)
    return str(version.version)


# ---------------------------------------------------------------- export and check


def check_model(path: Path, timeout: float = 300) -> None:
    """Load ``path`` in a fresh process, outside the project, and predict its example."""
    script = (
        "import sys, mlflow.pyfunc\n"
        "m = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "ex = m.input_example\n"
        "out = m.predict(ex) if ex is not None else None\n"
        "print('ok', type(out).__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with tempfile.TemporaryDirectory(prefix="kmlc-check-") as cwd:
        try:
            done = subprocess.run([sys.executable, "-I", "-c", script, str(path.resolve())],
                                  cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ExportError(f"the exported model did not load within {timeout:.0f}s") from exc
    if done.returncode != 0:
        last = [line for line in done.stderr.strip().splitlines() if line.strip()][-1:]
        raise ExportError(
            "the exported model fails when loaded outside the project: "
            + (last[0] if last else f"exit code {done.returncode}"),
            hint="nothing was written; the full error:\n" + done.stderr[-4000:])


def _resolve_run(client: Any, spec: ProjectSpec, run_id: str | None, latest: bool) -> str:
    if run_id:
        return run_id
    if not latest:
        raise ExportError("give --run-id ID, --latest or --from-local")
    experiment = client.get_experiment_by_name(spec.tracking.experiment)
    if experiment is None:
        raise ExportError(f"experiment '{spec.tracking.experiment}' has no runs yet",
                          hint="run `kmlc run training` first")
    runs = client.search_runs([experiment.experiment_id],
                              "tags.`kmlc.pipeline` = 'training' and "
                              "attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=20)
    artifact_path = spec.model.artifact_path if spec.model else "model"
    for run in runs:
        if client.list_artifacts(run.info.run_id, artifact_path):
            return str(run.info.run_id)
    raise ExportError(f"no finished training run with a model in experiment "
                      f"'{spec.tracking.experiment}'", hint="run `kmlc run training` first")


def _prepare_output(output: Path, force: bool) -> None:
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not force:
        raise ExportError(f"{output} exists and is not empty", hint="pass --force to replace it")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {output.parent}: {exc}") from exc


def _commit(staged: Path, output: Path) -> None:
    """Move the checked model into place: a rename, never a half-written folder."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists():
        trash = output.with_name(f".{output.name}.old-{os.getpid()}")
        output.rename(trash)
        staged.rename(output)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        staged.rename(output)


def export_model(spec: ProjectSpec, *, run_id: str | None = None, latest: bool = False,
                 from_local: bool = False, output: Path | None = None,
                 register: str | None = None, alias: str | None = None,
                 force: bool = False, tracking_uri: str | None = None,
                 check: bool = True) -> ExportResult:
    """Export the bound model of a run (or of the artifacts on disk) to a folder/registry."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from kmlc.tracking import store as tracking

    if spec.model is None:
        raise ExportError(f"{spec.path} has no `model:` section",
                          hint="add `model: {input: <dataset>}` to bind training to inference")
    if output is None and register is None:
        raise ExportError("nothing to do: give --output DIR and/or --register NAME")
    if output is not None:
        output = output.resolve()
        _prepare_output(output, force)
    _quiet_mlflow()
    uri = tracking.resolve_tracking_uri(tracking_uri or spec.tracking.uri, spec.root)
    model_uri: str | None = None
    if from_local:
        staging_root = Path(tempfile.mkdtemp(prefix="kmlc-export-",
                                             dir=output.parent if output else None))
        try:
            staged = staging_root / "model"
            save_pipeline_model(spec, staged, _load_input(spec))
            if check:
                check_model(staged)
            if register:
                tracking.check_reachable(uri)
                mlflow.set_tracking_uri(uri)
                client = MlflowClient(uri)
                experiment = tracking.ensure_experiment(client, spec.tracking.experiment,
                                                        tracking.local_artifact_root(uri))
                run = client.create_run(experiment, run_name="export-model",
                                        tags={"kmlc.pipeline": "export-model"})
                client.log_artifacts(run.info.run_id, str(staged), spec.model.artifact_path)
                client.set_terminated(run.info.run_id, "FINISHED")
                model_uri = f"runs:/{run.info.run_id}/{spec.model.artifact_path}"
            if output is not None:
                _commit(staged, output)
        finally:
            shutil.rmtree(staging_root, ignore_errors=True)
    else:
        tracking.check_reachable(uri)
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        chosen = _resolve_run(client, spec, run_id, latest)
        model_uri = f"runs:/{chosen}/{spec.model.artifact_path}"
        if output is not None:
            staging_root = Path(tempfile.mkdtemp(prefix="kmlc-export-", dir=output.parent))
            try:
                try:
                    local = mlflow.artifacts.download_artifacts(model_uri,
                                                                dst_path=str(staging_root))
                except Exception as exc:
                    raise ExportError(f"cannot download {model_uri}: {exc}") from exc
                scrub_mlmodel(Path(local))
                if check:
                    check_model(Path(local))
                _commit(Path(local), output)
            finally:
                shutil.rmtree(staging_root, ignore_errors=True)
    version = None
    if register:
        if model_uri is None:
            raise ExportError("nothing to register")
        version = _register(model_uri, register, alias)
    return ExportResult(model_uri, output, register, version, check)


def _load_input(spec: ProjectSpec) -> Any:
    from kmlc.compiler.project import compile_project

    assert spec.model is not None
    catalog = compile_project(spec).catalog()
    try:
        return catalog.load(spec.model.input)
    except Exception:
        return None


# ---------------------------------------------------------------- batch predict

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

    _quiet_mlflow()
    data = _dataset(input_path, input_type, "input").load()
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:
        raise ExportError(f"cannot load model {model_uri}: {exc}") from exc
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
