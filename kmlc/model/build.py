"""Model stage, building: the inference plan -> the folder of an MLflow pyfunc model.

The model is saved from code (``kmlc/model/runtime.py`` is its runtime) with the plan as a
JSON artifact, the persisted training outputs as artifacts, and the node modules as
``code_paths``: nothing pickled of Kedro, no absolute path or credential of this
machine. Logging it into a run is ``kmlc.model.logged``'s; registering it,
``kmlc.model.registry``'s.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kmlc.compiler.inference_plan import (
    PLAN_ARTIFACT,
    PLAN_FILE,
    PLAN_VERSION,
    InferencePlan,
    plan_from_spec,
)
from kmlc.config.params import is_param_input
from kmlc.config.secrets import Secrets
from kmlc.config.spec import ProjectSpec
from kmlc.errors import ExportError
from kmlc.model.artifacts import artifact_files
from kmlc.model.closure import (
    distribution_table,
    distributions,
    imports_of,
    module_closure,
    pickled_modules,
    pinned,
    ship_modules,
)
from kmlc.model.probe import ParamLeaf, Probe, probe_model

__all__ = [
    "build_model_args",
    "code_paths",
    "quiet_mlflow",
    "requirements",
    "save_pipeline_model",
    "scrub_mlmodel",
]

RUNTIME_FILE = Path(__file__).with_name("runtime.py")
# what the runtime itself imports (never kmlc: a model must install where kmlc is not)
_CORE_DISTS = ("kedro", "kedro-datasets", "mlflow")


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
    from kedro.io.core import parse_dataset_definition  # lazy: Kedro, only when building

    try:
        cls, _ = parse_dataset_definition({"type": type_name})
    except Exception:
        return set()
    origin = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if origin is None:
        return set()
    return {name.split(".")[0] for name in imports_of(Path(origin), cls.__module__)}



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
    from packaging.requirements import InvalidRequirement, Requirement  # lazy
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



def _param_schema(leaves: tuple[ParamLeaf, ...]) -> Any:
    from mlflow.types.schema import ParamSchema, ParamSpec  # lazy: MLflow

    return ParamSchema([ParamSpec(*leaf) for leaf in leaves]) if leaves else None



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
        from mlflow.models import infer_signature  # lazy: MLflow, only when a model is built

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
    """MLflow's chatter off while kmlc builds, exports or serves a model: its warnings,
    its loggers below ERROR, and the progress bar it draws while copying a model's
    artifacts into the model folder (kmlc reports the model in one line). MLflow sets
    alembic's logger to INFO with its own handler (MLflow 3.9 then prints "Context impl
    SQLiteImpl." for each store it opens)."""
    import logging
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\..*")
    for name in ("mlflow", "mlflow.models", "mlflow.pyfunc", "mlflow.utils", "alembic"):
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
    import mlflow  # lazy: MLflow, only when a model is saved

    quiet_mlflow()
    with tempfile.TemporaryDirectory(prefix="kmlc-model-") as tmp:
        args = build_model_args(spec, input_data, Path(tmp), probe, staged)
        mlflow.pyfunc.save_model(str(path), mlflow_model=mlflow_model, **args)
    scrub_mlmodel(path, spec.secrets)

