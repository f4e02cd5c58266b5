"""Model stage, building: the inference plan -> an MLflow pyfunc model, saved or logged.

The model is logged from code (``kmlc/model/runtime.py`` is its runtime) with the plan as a
JSON artifact, the persisted training outputs as artifacts, and the node modules as
``code_paths``: nothing pickled of Kedro, no absolute path or credential of this
machine. Every MLflow client here is built from an explicit tracking (and registry)
URI; nothing reads MLflow's process-wide tracking URI.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kmlc.compiler.plan import PLAN_ARTIFACT, PLAN_FILE, PLAN_VERSION, InferencePlan, plan_from_spec
from kmlc.config.functions import code_path
from kmlc.config.params import is_param_input
from kmlc.config.secrets import Secrets
from kmlc.config.spec import PATH_KEYS, ProjectSpec
from kmlc.errors import ExportError
from kmlc.model.closure import (
    distribution_table,
    distributions,
    imports_of,
    module_closure,
    pickled_modules,
    pinned,
    ship_modules,
)
from kmlc.tracking.client import open_client

__all__ = [
    "LoggedPipelineModel",
    "Probe",
    "build_model_args",
    "discard_bound_model",
    "finish_bound_model",
    "load_model_input",
    "log_pipeline_model",
    "prepare_bound_model",
    "probe_model",
    "quiet_mlflow",
    "register_bound_model",
    "register_model",
    "requirements",
    "save_pipeline_model",
    "scrub_mlmodel",
    "stage_artifact",
    "warm_model_build",
]

RUNTIME_FILE = Path(__file__).with_name("runtime.py")
_EXAMPLE_ROWS = 5
# what the runtime itself imports (never kmlc: a model must install where kmlc is not)
_CORE_DISTS = ("kedro", "kedro-datasets", "mlflow")


def artifact_files(spec: ProjectSpec, plan: InferencePlan,
                   staged: Mapping[str, str] | None = None) -> dict[str, Path]:
    """The file (or folder) of each artifact as training left it (latest version).

    ``staged``: the artifacts this run saved, as copies of its own (``stage_artifact``);
    the others are read where the catalog keeps them.
    """
    out: dict[str, Path] = {}
    for artifact in plan.artifacts:
        if staged and artifact.name in staged:
            out[artifact.name] = Path(staged[artifact.name])
            continue
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


# keys of an artifact's config that its staged copy, one local file, has no use for
# (an artifact is a local file: ``artifact_files``)
_STAGE_DROPS = ("versioned", "credentials")


def stage_artifact(spec: ProjectSpec, name: str, data: Any, folder: Path) -> Path:
    """Save ``data``, what this run saved as artifact ``name``, again under ``folder``.

    The dataset's own class writes it (the same bytes a load returns), so the model is
    built from this run's artifact even when another run of the project rewrites the
    catalog's file meanwhile (Kedro writes files in place, not atomically).
    """
    from kedro.io import AbstractDataset

    ds = spec.datasets[name]
    config = {k: v for k, v in ds.config.items() if k not in _STAGE_DROPS}
    key = next(k for k in PATH_KEYS if k in config)
    target = folder / name / Path(str(config[key])).name
    target.parent.mkdir(parents=True, exist_ok=True)
    config[key] = str(target)
    AbstractDataset.from_config(name, config).save(data)
    return target


def _installed_origin(module: str) -> Path | None:
    """Where an inference module outside the ``code`` folders lives, if no package has it."""
    top = module.split(".")[0]
    if distribution_table().get(top):
        return None  # an installed distribution: a requirement, not shipped code
    found = importlib.util.find_spec(top)
    if found is None or found.origin is None:
        raise ExportError(f"module '{module}' of the inference nodes cannot be found")
    origin = Path(found.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def code_paths(spec: ProjectSpec, plan: InferencePlan, dest: Path) -> tuple[list[Path], set[str]]:
    """Stage under ``dest`` the project modules inference reaches; (paths to ship, imports).

    The second item is the top-level names of everything else those modules import.
    """
    closure = module_closure(plan.modules, spec.code)
    paths = ship_modules(closure, spec.code, dest)
    for module in plan.modules:
        if module not in closure.local and module.split(".")[0] in closure.external:
            origin = _installed_origin(module)
            if origin is not None:
                paths.append(origin)
    return list(dict.fromkeys(paths)), closure.external


def _dataset_imports(type_name: str) -> set[str]:
    """Top-level imports of the module defining a Kedro dataset type (what reading needs)."""
    from kedro.io.core import parse_dataset_definition

    try:
        cls, _ = parse_dataset_definition({"type": type_name})
    except Exception:
        return set()
    origin = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if origin is None:
        return set()
    return {name.split(".")[0] for name in imports_of(Path(origin), cls.__module__)}


# the warm-up and the model job run on threads of their own and both put the code
# folders on sys.path for a while: one at a time
_BUILDING = threading.Lock()


def requirements(spec: ProjectSpec, plan: InferencePlan, imports: set[str],
                 files: Mapping[str, Path]) -> list[str]:
    """The model's requirements: ``pip_requirements`` plus ``extra_pip_requirements``.

    ``auto``: what inference needs, pinned to this environment: the runtime's own stack,
    the distributions the inference modules import, the ones each packed artifact's
    dataset type imports and the ones its pickle names. An extra requirement naming a
    distribution already listed replaces that line (the user's constraint wins).
    """
    extra = list(spec.model.extra_pip_requirements) if spec.model is not None else []
    if spec.model is not None and spec.model.pip_requirements != "auto":
        return _with_extra(list(spec.model.pip_requirements), extra)
    return _with_extra(_auto_requirements(spec, plan, imports, files), extra)


def _requirement_name(line: str) -> str | None:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        return str(canonicalize_name(Requirement(line).name))
    except InvalidRequirement:
        return None  # a URL or an option line: kept as written


def _with_extra(base: list[str], extra: list[str]) -> list[str]:
    replaced = {name for name in map(_requirement_name, extra) if name is not None}
    kept = [line for line in base if _requirement_name(line) not in replaced]
    return list(dict.fromkeys([*kept, *extra]))


def _auto_requirements(spec: ProjectSpec, plan: InferencePlan, imports: set[str],
                       files: Mapping[str, Path]) -> list[str]:
    names = set(imports)
    for artifact in plan.artifacts:
        names |= _dataset_imports(str(artifact.config.get("type", "")))
        path = files[artifact.name]
        for file in ([path] if path.is_file() else sorted(p for p in path.rglob("*")
                                                           if p.is_file())):
            names |= {module.split(".")[0] for module in pickled_modules(file)}
    return pinned([*_CORE_DISTS, *distributions(names)])


def _load_runtime(artifacts: Mapping[str, str]) -> Any:
    """The model's own runtime, loaded in this process (to probe it): no MLflow needed."""

    runtime = importlib.import_module("kmlc.model.runtime")
    model = runtime.PipelineRuntime()
    model.load_context(SimpleNamespace(artifacts=dict(artifacts), model_config={}))
    return model


def first_rows(data: Any) -> Any:
    """The rows of ``model.input`` the model is probed on and shows as its example."""
    return _head(data, _EXAMPLE_ROWS)


def _head(data: Any, rows: int) -> Any:
    """The first rows of ``data``, as a copy of their own: no step ever sees it."""
    if hasattr(data, "iloc"):
        return data.iloc[:rows].copy()
    if isinstance(data, (list, tuple)):
        return copy.deepcopy(data[:rows])
    if hasattr(data, "shape") and getattr(data, "ndim", 0) >= 1:
        return data[:rows].copy()
    return copy.deepcopy(data)


_PARAM_TYPES = ((bool, "boolean"), (int, "long"), (float, "double"), (str, "string"))


def _param_type(value: Any) -> str | None:
    return next((name for kind, name in _PARAM_TYPES if isinstance(value, kind)), None)


ParamLeaf = tuple[str, str, Any, "tuple[int, ...] | None"]  # name, type, default, shape


def _param_leaves(model: Any) -> tuple[ParamLeaf, ...]:
    """A pyfunc param for each scalar or list leaf of the parameters inference reads."""
    specs: list[ParamLeaf] = []
    for name, targets in sorted(model.param_targets.items()):
        key, path = targets[0]
        value = model._values[key]
        for part in path:
            value = value[part]
        if isinstance(value, list):
            kinds = {_param_type(item) for item in value}
            kind = kinds.pop() if len(kinds) == 1 else None
            if kind is not None:  # MLflow's list params hold one scalar type
                specs.append((name, kind, value, (-1,)))
        elif (kind := _param_type(value)) is not None:
            specs.append((name, kind, value, None))
    return tuple(specs)


def _param_schema(leaves: tuple[ParamLeaf, ...]) -> Any:
    from mlflow.types.schema import ParamSchema, ParamSpec

    return ParamSchema([ParamSpec(*leaf) for leaf in leaves]) if leaves else None


@dataclass(frozen=True)
class Probe:
    """What running the inference plan once on the first rows of ``model.input`` found.

    Computed without MLflow (in the process that ran training, which has the node
    modules loaded); the model is then built from it wherever MLflow is.
    """

    sample: Any  # the first rows as read: the input example and signature input
    output: Any  # what the plan returned for them: the signature output
    copies: dict[str, dict[str, str]]  # step -> input -> copy mode (``probe_mutations``)
    params: tuple[ParamLeaf, ...]


def probe_model(spec: ProjectSpec, input_data: Any,
                staged: Mapping[str, str] | None = None) -> Probe:
    """Run the inference plan on the first rows of ``input_data``; see ``Probe``.

    ``staged``: this run's copies of the artifacts it saved (``stage_artifact``).
    """
    from kmlc.model.probe import probe_mutations

    assert spec.model is not None
    plan = plan_from_spec(spec)
    sample = _head(input_data, _EXAMPLE_ROWS)
    with tempfile.TemporaryDirectory(prefix="kmlc-probe-") as tmp:
        plan_path = Path(tmp) / PLAN_FILE
        plan_path.write_text(spec.secrets.mask(plan.to_json()), encoding="utf-8")
        artifacts = {name: str(path)
                     for name, path in artifact_files(spec, plan, staged).items()}
        try:
            with code_path(spec.code):
                model = _load_runtime({**artifacts, PLAN_ARTIFACT: str(plan_path)})
                copies, output = probe_mutations(model, _head(sample, _EXAMPLE_ROWS))
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"the inference pipeline fails on the first rows of "
                              f"'{spec.model.input}': {type(exc).__name__}: {exc}") from exc
    return Probe(sample, output, copies, _param_leaves(model))


def build_model_args(spec: ProjectSpec, input_data: Any | None, folder: Path,
                     probe: Probe | None = None,
                     staged: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Everything ``mlflow.pyfunc`` needs to save or log the model.

    With ``input_data`` (what training read as ``model.input``), the plan is run once on
    its first rows to find which step changes which input (recorded in the plan: the
    model copies those), and the signature and input example are those rows as read,
    which no step has seen. ``probe`` is that run, when it was done already;
    ``staged``: this run's copies of the artifacts it saved (``stage_artifact``).
    """
    model_spec = spec.model
    if model_spec is None:
        raise ExportError("the project has no `model:` section", hint="add model: {input: …}")
    plan = plan_from_spec(spec)
    files = artifact_files(spec, plan, staged)
    paths, imports = code_paths(spec, plan, folder / "code")
    signature = example = None
    if probe is None and input_data is not None:
        probe = probe_model(spec, input_data, staged)
    if probe is not None:
        from mlflow.models import infer_signature

        plan = plan.with_mutations(probe.copies)
        if model_spec.signature == "auto":
            signature = infer_signature(probe.sample, probe.output)
            signature.params = _param_schema(probe.params)
        if model_spec.input_example:
            example = probe.sample
    else:  # nothing to probe on: hand every step copies, as Kedro would
        plan = plan.with_mutations({step.name: {name: "deepcopy" for name in step.input_names()
                                                if not is_param_input(name)}
                                    for step in plan.steps})
    plan_path = folder / PLAN_FILE  # the plan with its copy modes, secrets masked
    plan_path.write_text(spec.secrets.mask(plan.to_json()), encoding="utf-8")
    artifacts = {name: str(path) for name, path in files.items()}
    artifacts[PLAN_ARTIFACT] = str(plan_path)
    return {
        "python_model": str(RUNTIME_FILE),
        "artifacts": artifacts,
        "code_paths": [str(p) for p in paths],
        # False: MLflow infers none from the example (`signature: none` means no signature)
        "signature": False if model_spec.signature == "none" else signature,
        "input_example": example,
        "pip_requirements": requirements(spec, plan, imports, files),
        "metadata": {"kmlc_project": spec.name, "kmlc_plan_version": PLAN_VERSION},
    }


def quiet_mlflow() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\..*")
    for name in ("mlflow", "mlflow.models", "mlflow.pyfunc", "mlflow.utils"):
        logging.getLogger(name).setLevel(logging.ERROR)


def scrub_mlmodel(folder: Path, secrets: Secrets | None = None) -> None:
    """Remove this machine's absolute paths from a model's ``MLmodel`` file.

    MLflow records where each artifact and the model's code came from; the loader only
    needs the paths inside the model folder. Secrets are masked (``Secrets.mask``).
    """
    import yaml  # MLflow writes MLmodel with PyYAML

    mlmodel = folder / "MLmodel"
    data = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    data.pop("artifact_path", None)
    pyfunc = data.get("flavors", {}).get("python_function", {})
    for entry in (pyfunc.get("artifacts") or {}).values():
        if isinstance(entry, dict):
            entry.pop("uri", None)
    if pyfunc.get("model_code_path"):
        pyfunc["model_code_path"] = Path(str(pyfunc["model_code_path"])).name
    if secrets:
        data = secrets.mask_data(data)
    with mlmodel.open("w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, default_flow_style=False, sort_keys=False)


def save_pipeline_model(spec: ProjectSpec, path: Path, input_data: Any | None = None,
                        mlflow_model: Any | None = None, probe: Probe | None = None,
                        staged: Mapping[str, str] | None = None) -> None:
    """Save the bound model of ``spec`` to the folder ``path`` (which must not exist)."""
    import mlflow

    quiet_mlflow()
    with tempfile.TemporaryDirectory(prefix="kmlc-model-") as tmp:
        args = build_model_args(spec, input_data, Path(tmp), probe, staged)
        mlflow.pyfunc.save_model(str(path), mlflow_model=mlflow_model, **args)
    scrub_mlmodel(path, spec.secrets)


@dataclass(frozen=True)
class LoggedPipelineModel:
    model_uri: str
    run_uri: str
    model_id: str
    registered_version: str | None = None
    promotion: Any = None  # kmlc.model.promote.Promotion, with model.promote


def log_pipeline_model(spec: ProjectSpec, *, run_id: str, tracking_uri: str,
                       registry_uri: str | None = None, input_data: Any | None = None
                       ) -> LoggedPipelineModel:
    """Log the inference pipeline of ``spec`` into run ``run_id`` as an MLflow 3 LoggedModel.

    The model is saved to a staging folder, scrubbed of local paths, then uploaded;
    it is marked READY only once every file is in the store (FAILED otherwise).
    """
    model_id = prepare_bound_model(spec, run_id=run_id, tracking_uri=tracking_uri,
                                   input_data=input_data)
    return finish_bound_model(spec, run_id=run_id, tracking_uri=tracking_uri,
                              registry_uri=registry_uri, model_id=model_id)


def warm_model_build() -> None:
    """Load what building the bound model will need, while the project compiles and runs.

    Run in the tracking worker before the project is compiled: MLflow's model modules,
    the table of installed distributions and MLflow's own (MLflow reads every installed
    distribution's metadata once per process to check a model's requirements), so that
    what is left after training saved the artifacts is the model itself. The inference
    nodes' modules are not needed here: the process that ran training probes the plan
    (``probe_model``). The model job waits for the warm-up (one lock) rather than doing
    the same work beside it.
    """
    with _BUILDING:
        import mlflow.models
        import mlflow.pyfunc  # noqa: F401

        with contextlib.suppress(Exception):  # a later MLflow may move it: only slower
            from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

            warn_dependency_requirement_mismatches(["mlflow"])
        distribution_table()


def _model_input_dataset(spec: ProjectSpec) -> Any | None:
    """The dataset of ``model.input`` as the catalog builds it (None for a memory one)."""
    from kedro.io import AbstractDataset

    from kmlc.compiler.catalog import dataset_config

    assert spec.model is not None
    ds = spec.datasets.get(spec.model.input)
    if ds is None:
        return None
    config = dataset_config(ds, spec.root)
    if isinstance(config.get("credentials"), str):
        config["credentials"] = spec.credentials.get(config["credentials"])
    return AbstractDataset.from_config(ds.name, config)


def model_input_missing(spec: ProjectSpec) -> str | None:
    """Why ``model.input`` cannot be loaded for the example (it is not there), or None.

    kedro-mlflow's ``input_name`` may name data only inference reads, which need not
    exist when training runs: the model then has no signature and no input example."""
    assert spec.model is not None
    try:
        with code_path(spec.code):  # a dataset class of the project's own
            dataset = _model_input_dataset(spec)
            if dataset is None or dataset.exists():
                return None
    except Exception as exc:  # loading it reports the real problem
        return f"{type(exc).__name__}: {exc}"
    return "it does not exist yet"


def load_model_input(spec: ProjectSpec) -> Any | None:
    """A fresh load of ``model.input`` from its dataset (None for a memory dataset, or a
    dataset that does not exist: a model input only inference reads, not there yet)."""
    dataset = _model_input_dataset(spec)
    if dataset is None or not dataset.exists():
        return None
    return dataset.load()


def prepare_bound_model(spec: ProjectSpec, *, run_id: str, tracking_uri: str,
                        input_data: Any | None = None, probe: Probe | None = None,
                        staged: Mapping[str, str] | None = None) -> str:
    """Build and upload the bound model, left PENDING; returns its model id.

    The expensive part of logging the model (the signature, the requirements, the
    upload), done as soon as training has saved every artifact the model packs, while
    the last training nodes still run; ``finish_bound_model`` makes it READY at the end
    of a successful run, ``discard_bound_model`` marks it FAILED otherwise. ``probe``:
    the inference plan's run on the first rows, done by the caller (``probe_model``);
    ``staged``: this run's copies of the artifacts it saved (``stage_artifact``).
    """
    from kmlc.tracking.logged_models import log_model_folder

    model_spec = spec.model
    assert model_spec is not None
    with _BUILDING, code_path(spec.code):  # the node modules, for the signature
        if input_data is None and probe is None:
            input_data = load_model_input(spec)
        return log_model_folder(
            open_client(tracking_uri), run_id, model_spec.artifact_path,
            lambda path, mlflow_model: save_pipeline_model(spec, Path(path), input_data,
                                                           mlflow_model, probe, staged),
            model_type="kmlc-pipeline", finalize=False)


def finish_bound_model(spec: ProjectSpec, *, run_id: str, tracking_uri: str,
                       registry_uri: str | None, model_id: str,
                       register: bool = True,
                       datasets: Sequence[tuple[str, str]] = ()) -> LoggedPipelineModel:
    """Give the prepared model its run's parameters and metrics, mark it READY in its run
    and (``register``) register it if the file says so. A tracked run passes
    ``register=False`` and calls ``register_bound_model`` once the run is closed as
    FINISHED: a run that is interrupted or fails after its model is READY registers
    nothing, moves no alias.

    ``datasets``: ``(name, digest)`` of the run's dataset inputs (``kmlc.tracking.lineage``);
    the model's metrics name ``model.input`` among them, else the only one.
    """
    from kmlc.tracking.logged_models import attach_run_to_model, finalize_model

    model_spec = spec.model
    assert model_spec is not None
    client = open_client(tracking_uri, registry_uri)
    named = dict(datasets)
    link = ((model_spec.input, named[model_spec.input]) if model_spec.input in named
            else datasets[0] if len(datasets) == 1 else None)
    attach_run_to_model(client, run_id, model_id, link)
    finalize_model(client, run_id, model_id)
    logged = LoggedPipelineModel(f"models:/{model_id}",
                                 f"runs:/{run_id}/{model_spec.artifact_path}", model_id)
    if not register:
        return logged
    return register_bound_model(spec, run_id=run_id, tracking_uri=tracking_uri,
                                registry_uri=registry_uri, model_id=model_id)


def register_bound_model(spec: ProjectSpec, *, run_id: str, tracking_uri: str,
                         registry_uri: str | None, model_id: str) -> LoggedPipelineModel:
    """Register the READY model of FINISHED run ``run_id`` (``model.registered_name``) and
    apply ``model.promote``; any other run is refused."""
    from kmlc.tracking.retry import with_retry

    model_spec = spec.model
    assert model_spec is not None
    client = open_client(tracking_uri, registry_uri)
    status = with_retry(client.get_run, run_id).info.status
    if status != "FINISHED":
        raise ExportError(f"run {run_id} is {status}: only a FINISHED run registers its model "
                          "or moves an alias")
    model_uri = f"models:/{model_id}"
    version = None
    promotion = None
    if model_spec.registered_name:
        version = register_model(client, model_uri, model_spec.registered_name,
                                 model_spec.alias)
        if model_spec.promote is not None:
            from kmlc.model.promote import promote_version

            promotion = promote_version(client, model_spec.promote,
                                        model_spec.registered_name, version, run_id)
    return LoggedPipelineModel(model_uri, f"runs:/{run_id}/{model_spec.artifact_path}",
                               model_id, version, promotion)


def discard_bound_model(*, run_id: str, tracking_uri: str, model_id: str) -> None:
    """The run failed (or was interrupted) after the model was prepared, or made READY:
    the model is marked FAILED, deleted.

    A failed run logs no model, as when nothing had been prepared yet.
    """
    from kmlc.tracking.logged_models import finalize_model
    from kmlc.tracking.retry import with_retry

    client = open_client(tracking_uri)
    finalize_model(client, run_id, model_id, ok=False)
    with_retry(client.delete_logged_model, model_id)


def register_model(client: Any, model_uri: str, name: str, alias: str | None = None) -> str:
    """Register ``model_uri`` as a new version of ``name`` in ``client``'s registry.

    ``client`` carries both URIs: the tracking store the model was logged to and the
    registry it is registered in (``tracking.registry_uri``, when set). Where the two
    differ, the version's source is the model's artifact location, which the registry
    can reach without the tracking store. Returns the new version number.
    """
    from mlflow.exceptions import MlflowException

    from kmlc.tracking.retry import with_retry

    try:
        with_retry(client.create_registered_model, name)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    run_id: str | None = None
    model_id: str | None = None
    source = model_uri
    if model_uri.startswith("runs:/"):  # a LoggedModel of that run by that name, if any
        run_id, _, artifact_path = model_uri[len("runs:/"):].partition("/")
        run = with_retry(client.get_run, run_id)
        source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"
        for output in (run.outputs.model_outputs if run.outputs else None) or []:
            logged = with_retry(client.get_logged_model, output.model_id)
            if logged.name == artifact_path:
                model_uri = f"models:/{logged.model_id}"
    if model_uri.startswith("models:/"):
        model_id = model_uri[len("models:/"):].split("/")[0]
        logged = with_retry(client.get_logged_model, model_id)
        run_id = logged.source_run_id
        # the model's own location, not models:/ID: another registry cannot resolve ids of
        # this tracking store, and MLflow's database registry resolves them through the
        # process-wide tracking URI, not the client's (a run in a test or a notebook whose
        # global URI is another store fails); model_id still links the version to it
        source = logged.artifact_location
    version = with_retry(client.create_model_version, name, source, run_id=run_id,
                         model_id=model_id)
    if alias:
        with_retry(client.set_registered_model_alias, name, alias, version.version)
    return str(version.version)
