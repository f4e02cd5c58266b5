"""The kedro-mlflow side of the benchmarks, run by the python of a kedro-mlflow venv.

It never imports kmlc (only ``_common``, plain Python): ``python _kmf_worker.py COMMAND
JSON-ARGS`` prints one JSON object on its last stdout line. Commands:

- ``session``: run a Kedro project once with ``KedroSession`` in this process; whether
  kedro-mlflow's hook is on is decided by the project's settings.py (env KMF_BENCH_MLFLOW).
- ``pipeline-model``: fit the iris training pipeline under ``pipeline_ml_factory``,
  log the ``KedroPipelineModel`` and time its predict and load.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median_calls

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")


def _emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


def session(args: dict[str, Any]) -> dict[str, Any]:
    """One ``KedroSession.create(...).run()``, timed after the imports.

    One session per process, as ``kedro run`` does: kedro-mlflow's hook is a module-level
    singleton whose run stays active after a session (nested ``start_run`` per node), so
    a second session in the same process would log into the first one's run.
    """
    import importlib

    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = Path(args["project"])
    os.chdir(project)
    bootstrap_project(project)
    for module in ("mlflow", "kedro_mlflow.framework.hooks", "kedro.runner"):
        importlib.import_module(module)  # MLflow already imported, as in kmlc's column
    start = time.perf_counter()
    with KedroSession.create(project_path=project) as kedro_session:
        kedro_session.run()
    return {"seconds": time.perf_counter() - start}


def pipeline_model(args: dict[str, Any]) -> dict[str, Any]:
    """Train iris with kedro-mlflow's PipelineML and time its KedroPipelineModel."""
    import logging
    import warnings

    import mlflow
    import pandas as pd
    from kedro.framework.hooks.manager import _create_hook_manager
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import Pipeline, node
    from kedro.runner import SequentialRunner
    from kedro_datasets.pickle import PickleDataset
    from kedro_mlflow.pipeline import pipeline_ml_factory

    warnings.filterwarnings("ignore")
    for name in ("kedro", "kedro_mlflow", "mlflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    sys.path.insert(0, args["code"])
    import iris_nodes as nodes

    work = Path(args["workdir"])
    (work / "data").mkdir(parents=True, exist_ok=True)
    instances = pd.read_csv(args["instances"])
    labels = pd.read_csv(args["labels"])
    parameters = args["parameters"]
    training = Pipeline([
        node(nodes.clean, "instances", "features", name="clean", tags=["training", "inference"]),
        node(nodes.split, ["features", "labels", "params:split"],
             ["x_train", "x_test", "y_train", "y_test"], name="split", tags=["training"]),
        node(nodes.fit_scaler, "x_train", "scaler", name="fit_scaler", tags=["training"]),
        node(nodes.fit_classifier,
             {"x_train": "x_train", "y_train": "y_train", "scaler": "scaler",
              "c": "params:model.c", "max_iter": "params:model.max_iter"},
             "classifier", name="fit_classifier", tags=["training"]),
    ])
    inference = Pipeline([
        node(nodes.clean, "instances", "features", name="clean", tags=["training", "inference"]),
        node(nodes.predict, ["scaler", "classifier", "features"], "predictions",
             name="predict", tags=["inference"]),
    ])
    bound = pipeline_ml_factory(training=training, inference=inference,
                                input_name="instances",
                                log_model_kwargs={"artifact_path": "model",
                                                  "signature": "auto"})
    catalog = DataCatalog({
        "instances": MemoryDataset(instances),
        "labels": MemoryDataset(labels),
        "scaler": PickleDataset(filepath=str(work / "data" / "scaler.pkl")),
        "classifier": PickleDataset(filepath=str(work / "data" / "classifier.pkl")),
    })
    catalog["params:split"] = parameters["split"]
    catalog["params:model.c"] = parameters["model"]["c"]
    catalog["params:model.max_iter"] = parameters["model"]["max_iter"]

    from kedro_mlflow.mlflow import KedroPipelineModel

    mlflow.set_tracking_uri(args["tracking_uri"])
    mlflow.set_experiment("iris-kmf")
    # MlflowHook takes its config from a Kedro session; here the training pipeline runs
    # on a plain runner and the model is logged as MlflowHook.after_pipeline_run does
    # for a PipelineML (same KedroPipelineModel, same artifacts), plus code_paths so
    # that the model loads outside this process like kmlc's.
    SequentialRunner().run(bound.training, catalog, _create_hook_manager())
    from tempfile import TemporaryDirectory

    with mlflow.start_run() as run, TemporaryDirectory() as tmp:
        model = KedroPipelineModel(pipeline=bound.inference, catalog=catalog,
                                   input_name=bound.input_name, **bound.kpm_kwargs)
        artifacts = model.extract_pipeline_artifacts(parameters_saving_folder=Path(tmp))
        from mlflow.models import infer_signature

        signature = infer_signature(model_input=instances,
                                    params={"runner": "SequentialRunner"})
        info = mlflow.pyfunc.log_model(name="model", python_model=model,
                                       artifacts=artifacts, signature=signature,
                                       code_paths=[str(Path(args["code"]) / "iris_nodes.py")])
        run_id = run.info.run_id
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    out: dict[str, Any] = {"model_uri": info.model_uri, "run_id": run_id, "predict": {}}
    frames = {label: pd.read_csv(path) for label, path in args["inputs"].items()}
    for frame in frames.values():
        loaded.predict(frame)
    # one median per round, the inputs alternating within each round (as kmlc's side does)
    for label in frames:
        out["predict"][label] = []
    for _ in range(args.get("rounds", 1)):
        for label, frame in frames.items():
            out["predict"][label].append(median_calls(lambda f=frame: loaded.predict(f),
                                                      args.get("seconds", 2.0),
                                                      args.get("max_calls", 200)))
    return out


COMMANDS = {"session": session, "pipeline-model": pipeline_model}

if __name__ == "__main__":
    _emit(COMMANDS[sys.argv[1]](json.loads(sys.argv[2])))
