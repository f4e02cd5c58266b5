"""Model stage, export: ``kmlc export-model`` (a model folder, checked) and registration.

``export_model`` writes a model folder atomically and checks it the way a consumer
would, in a fresh process outside the project, before it says it is done.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kmlc.compiler.project import compile_project
from kmlc.config.localpath import local_path
from kmlc.config.spec import ProjectSpec, TrackingTarget
from kmlc.config.target import tracking_target
from kmlc.errors import ExportError
from kmlc.model.build import quiet_mlflow, save_pipeline_model, scrub_mlmodel
from kmlc.model.registry import register_model
from kmlc.model.state import check_run_model
from kmlc.tracking import client as tracking
from kmlc.tracking.client import open_client
from kmlc.tracking.logged_models import logged_model_location
from kmlc.tracking.session import PROJECT_TAG, project_identity

__all__ = ["ExportResult", "check_model", "export_model"]


@dataclass(frozen=True)
class ExportResult:
    model_uri: str | None
    output: Path | None = None
    registered: str | None = None
    version: str | None = None
    checked: bool = False
    predicted: bool = False  # the check predicted the model's input example (it had one)
    why: str | None = None  # --latest: which run it took, and why





_CHECK_SCRIPT = """\
import sys, mlflow.pyfunc
m = mlflow.pyfunc.load_model(sys.argv[1])
ex = m.input_example
if ex is None:
    print("loaded")
    sys.exit(0)
try:
    m.predict(ex)
except Exception as exc:
    step = getattr(exc, "kmlc_step", None)
    if isinstance(step, (tuple, list)):  # (the step's name, its function)
        step = step[0]
    where = f"step '{step}' failed" if step else "predict failed"
    sys.stderr.write(f"{where} on the input example: {type(exc).__name__}: {exc}\\n")
    sys.exit(1)
print("predicted")
"""


def check_model(path: Path, timeout: float = 300, target: TrackingTarget | None = None) -> bool:
    """Load ``path`` in a fresh process, outside the project, and predict its example.

    Returns whether an input example was predicted (a model without one is only loaded).
    The process writes no bytecode (the folder ships none) and keeps the project's
    tracking and registry URIs for the model's own calls (a step loading ``models:/…``).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if target is not None:
        env["MLFLOW_TRACKING_URI"] = target.uri
        if target.registry_uri:
            env["MLFLOW_REGISTRY_URI"] = target.registry_uri
    with tempfile.TemporaryDirectory(prefix="kmlc-check-") as cwd:
        try:
            done = subprocess.run([sys.executable, "-I", "-B", "-c", _CHECK_SCRIPT,
                                   str(path.resolve())],
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
    return done.stdout.strip().splitlines()[-1:] == ["predicted"]


def _resolve_run(client: Any, spec: ProjectSpec, run_id: str | None,
                 latest: bool) -> tuple[str, str | None]:
    """The run to export, and (``--latest``) why that one."""
    if run_id:
        return run_id, None
    if not latest:
        raise ExportError("give --run-id ID, --latest or --from-local")
    bound = spec.model.pipeline if spec.model else "training"  # the run that logs the model
    experiment = client.get_experiment_by_name(spec.tracking.experiment)
    if experiment is None:
        raise ExportError(f"experiment '{spec.tracking.experiment}' has no runs yet",
                          hint=f"run `kmlc run {bound}` first")
    runs = client.search_runs([experiment.experiment_id],
                              f"tags.`kmlc.pipeline` = '{bound}' and "
                              "attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=200)
    artifact_path = spec.model.artifact_path if spec.model else "model"
    here = project_identity(spec)
    others: list[str] = []
    for run in runs:
        tags = run.data.tags
        # a run of an older kmlc has no project tag: its source file says whose it is
        of = tags.get(PROJECT_TAG) or tags.get("mlflow.source.name")
        if of != here:
            others.append(f"{run.info.run_id} of {of or 'an unknown project'}")
            continue
        if (logged_model_location(client, run.info.run_id, artifact_path)
                or client.list_artifacts(run.info.run_id, artifact_path)):
            started = time.strftime("%Y-%m-%d %H:%M:%S",
                                    time.localtime(run.info.start_time / 1000))
            why = (f"--latest took run {run.info.run_id} (started {started}): the newest "
                   f"FINISHED {bound} run of {here} with a model in experiment "
                   f"'{spec.tracking.experiment}'")
            if others:
                why += (f"; {len(others)} newer run{'s' if len(others) > 1 else ''} of "
                        f"another project skipped ({', '.join(others[:3])}"
                        f"{', …' if len(others) > 3 else ''})")
            return str(run.info.run_id), why
    skipped = (f"; {len(others)} finished training run{'s' if len(others) > 1 else ''} "
               f"there {'are' if len(others) > 1 else 'is'} of other projects sharing the "
               "store" if others else "")
    raise ExportError(f"no finished training run of {here} with a model in experiment "
                      f"'{spec.tracking.experiment}'{skipped}",
                      hint=f"run `kmlc run {bound}` first, or pass --run-id")


EXPORT_MARKER = ".kmlc-export"  # written into every folder export-model writes


def _is_export(folder: Path) -> bool:
    """A model folder an earlier export wrote: kmlc's marker, or an MLflow ``MLmodel``."""
    return (folder / EXPORT_MARKER).is_file() or (folder / "MLmodel").is_file()


def _prepare_output(output: Path, force: bool, keep: dict[str, Path]) -> None:
    """Refuse an ``--output`` that would replace what is not a previous export.

    ``keep``: what no export may replace, by what it is (the project folder, the
    store's database and artifact folders); neither they nor a folder holding one of
    them is ever an output, even with ``--force``.
    """
    for what, path in keep.items():
        path = path.resolve()
        if output == path or output in path.parents:
            inside = "is" if output == path else "holds"
            raise ExportError(f"--output {output} {inside} the {what} ({path}): an export "
                              "replaces its output folder, so it must be a folder of its own",
                              hint="give a new folder, e.g. --output exported_model")
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        if not force:
            raise ExportError(f"{output} exists and is not empty",
                              hint="pass --force to replace it")
        if not output.is_dir() or not _is_export(output):
            raise ExportError(f"--force replaces only a model folder exported before; "
                              f"{output} is not one (no MLmodel file in it)",
                              hint="give a new folder, or remove this one yourself")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {output.parent}: {exc}") from exc


def _protected(spec: ProjectSpec, uri: str) -> dict[str, Path]:
    """What an export must never replace: the project and its local store."""
    keep = {"project folder": spec.root, "project file": spec.path}
    database = tracking.sqlite_path(uri)
    if database is not None:
        keep["tracking store"] = database
        artifacts = tracking.local_artifact_root(uri)
        if artifacts is not None:
            keep["tracking store's artifact folder"] = artifacts
    for name, ds in spec.datasets.items():  # the project's data, wherever it is kept
        local = local_path(ds, spec.root) if not ds.is_mlflow else None
        if local is not None:
            keep[f"file of dataset '{name}'"] = local
    return keep


def _commit(staged: Path, output: Path) -> None:
    """Move the checked model into place: a rename, never a half-written folder."""
    output.parent.mkdir(parents=True, exist_ok=True)
    (staged / EXPORT_MARKER).write_text("a model folder written by kmlc export-model\n",
                                        encoding="utf-8")
    if (output.exists() and not _is_export(output)  # checked before; never lose a folder
            and not (output.is_dir() and not any(output.iterdir()))):
        raise ExportError(f"{output} is no longer a model folder exported before: left as is")
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
                 force: bool = False,
                 check: bool = True) -> ExportResult:
    """Export the bound model of a run (or of the artifacts on disk) to a folder/registry.

    Every MLflow call here names the store: a client built from its URI, downloads
    given the URI, and registration from the model's own artifact location
    (``register_model``), never MLflow's process-wide tracking URI.
    """
    if spec.model is None:
        raise ExportError(f"{spec.path} has no `model:` section",
                          hint="add `model: {input: <dataset>}` to bind training to inference")
    if output is None and register is None:
        raise ExportError("nothing to do: give --output DIR and/or --register NAME")
    quiet_mlflow()
    target = tracking_target(spec)  # the one the project was loaded with
    uri = target.uri
    if output is not None:
        output = output.resolve()
        _prepare_output(output, force, _protected(spec, uri))
    model_uri: str | None = None
    client: Any = None
    predicted = False
    why: str | None = None
    if from_local:
        staging_root = Path(tempfile.mkdtemp(prefix="kmlc-export-",
                                             dir=output.parent if output else None))
        try:
            staged = staging_root / "model"
            save_pipeline_model(spec, staged, _load_input(spec))
            if check:
                predicted = check_model(staged, target=target)
            if register:
                tracking.check_reachable(uri)
                client = open_client(target)
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
        client = open_client(target)
        chosen, why = _resolve_run(client, spec, run_id, latest)
        check_run_model(client, chosen, spec.model.artifact_path)  # never a half-built one
        model_uri = f"runs:/{chosen}/{spec.model.artifact_path}"
        if output is not None:
            staging_root = Path(tempfile.mkdtemp(prefix="kmlc-export-", dir=output.parent))
            try:
                import mlflow.artifacts  # here: a refused --output never waits for MLflow

                try:
                    location = logged_model_location(
                        client, chosen, spec.model.artifact_path) or model_uri
                    local = mlflow.artifacts.download_artifacts(
                        location, dst_path=str(staging_root), tracking_uri=uri)
                except Exception as exc:
                    raise ExportError(spec.secrets.mask(
                        f"cannot download {model_uri}: {exc}")) from exc
                scrub_mlmodel(Path(local), spec.secrets)
                if check:
                    predicted = check_model(Path(local), target=target)
                _commit(Path(local), output)
            finally:
                shutil.rmtree(staging_root, ignore_errors=True)
    version = None
    if register:
        if model_uri is None:
            raise ExportError("nothing to register")
        if client is None:
            client = open_client(target)
        version = register_model(client, model_uri, register, alias)
    return ExportResult(model_uri, output, register, version, check, predicted, why)


def _load_input(spec: ProjectSpec) -> Any:
    assert spec.model is not None
    catalog = compile_project(spec).catalog()
    try:
        return catalog.load(spec.model.input)
    except Exception:
        return None


