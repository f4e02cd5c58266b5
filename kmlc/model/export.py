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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kmlc.config.spec import ProjectSpec
from kmlc.config.target import tracking_target
from kmlc.errors import ExportError
from kmlc.model.build import quiet_mlflow, register_model, save_pipeline_model, scrub_mlmodel
from kmlc.tracking import store as tracking

__all__ = ["ExportResult", "check_model", "export_model"]


@dataclass(frozen=True)
class ExportResult:
    model_uri: str | None
    output: Path | None = None
    registered: str | None = None
    version: str | None = None
    checked: bool = False





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
        if (tracking.logged_model_location(client, run.info.run_id, artifact_path)
                or client.list_artifacts(run.info.run_id, artifact_path)):
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
    """Export the bound model of a run (or of the artifacts on disk) to a folder/registry.

    Every MLflow call here names the store: a client built from its URI, downloads
    given the URI, and registration from the model's own artifact location
    (``register_model``), never MLflow's process-wide tracking URI.
    """
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
    quiet_mlflow()
    target = tracking_target(spec, tracking_uri)
    uri, registry_uri = target.uri, target.registry_uri
    model_uri: str | None = None
    client: Any = None
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
                client = MlflowClient(uri, registry_uri)
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
        client = MlflowClient(uri, registry_uri)
        chosen = _resolve_run(client, spec, run_id, latest)
        model_uri = f"runs:/{chosen}/{spec.model.artifact_path}"
        if output is not None:
            staging_root = Path(tempfile.mkdtemp(prefix="kmlc-export-", dir=output.parent))
            try:
                try:
                    location = tracking.logged_model_location(
                        client, chosen, spec.model.artifact_path) or model_uri
                    local = mlflow.artifacts.download_artifacts(
                        location, dst_path=str(staging_root), tracking_uri=uri)
                except Exception as exc:
                    raise ExportError(spec.secrets.mask(
                        f"cannot download {model_uri}: {exc}")) from exc
                scrub_mlmodel(Path(local), spec.secrets)
                if check:
                    check_model(Path(local))
                _commit(Path(local), output)
            finally:
                shutil.rmtree(staging_root, ignore_errors=True)
    version = None
    if register:
        if model_uri is None:
            raise ExportError("nothing to register")
        if client is None:
            client = MlflowClient(uri, registry_uri)
        version = register_model(client, model_uri, register, alias)
    return ExportResult(model_uri, output, register, version, check)


def _load_input(spec: ProjectSpec) -> Any:
    from kmlc.compiler.project import compile_project

    assert spec.model is not None
    catalog = compile_project(spec).catalog()
    try:
        return catalog.load(spec.model.input)
    except Exception:
        return None


