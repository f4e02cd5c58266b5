"""Kedro projects as users have them, written into a folder from a dict of files.

The layout is the one ``kedro new`` makes (pyproject.toml with ``[tool.kedro]``,
``src/<package>/settings.py``, ``pipeline_registry.py``, ``pipelines/*``, ``conf/base``
and ``conf/local``), plus what kedro-mlflow adds: ``conf/local/mlflow.yml``,
``kedro_mlflow.io`` datasets in the catalog, and a ``pipeline_ml_factory`` binding.

kedro-mlflow is not installed here, so the binding comes from ``pipeline_ml.py`` in the
project: a ``Pipeline`` subclass carrying PipelineML's attribute names (``training``,
``inference``, ``input_name``, ``kpm_kwargs``, ``log_model_kwargs``) and nothing else.
For the same reason ``kedro run`` runs with ``--env compare``, an environment that
redefines the kedro-mlflow datasets as JSON files so that their values can be compared
with what kmlc logged.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

__all__ = ["FLAT", "MODULAR", "write_files"]


def write_files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")
    return root


def _pyproject(package: str) -> str:
    return f"""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{package}"
        version = "0.1"
        requires-python = ">=3.10"

        [tool.kedro]
        package_name = "{package}"
        project_name = "{package.replace('_', ' ')}"
        kedro_init_version = "1.7.0"
        tools = "['None']"
        example_pipeline = "False"
        source_dir = "src"
        """


_SETTINGS = """
    import json
    import os

    from kedro.config import OmegaConfigLoader  # noqa: E402
    from kedro.framework.hooks import hook_impl


    class ParamsRecorder:
        # What kedro-mlflow's MlflowHook logs: each `params:` input of each node run.
        def __init__(self, path):
            self.path, self.seen = path, {}

        @hook_impl
        def before_node_run(self, node, inputs):
            for name, value in inputs.items():
                if name.startswith("params:"):
                    self.seen[name[len("params:"):]] = value
            with open(self.path, "w") as out:
                json.dump(self.seen, out)


    # only for the comparison run (kedro-mlflow is not installed): off for the import
    HOOKS = ((ParamsRecorder(os.environ["RECORD_PARAMS"]),)
             if os.environ.get("RECORD_PARAMS") else ())

    CONFIG_LOADER_CLASS = OmegaConfigLoader
    CONFIG_LOADER_ARGS = {
        "base_env": "base",
        "default_run_env": "local",
    }
    """

_PIPELINE_ML = '''
    """A stand-in for kedro-mlflow's pipeline_ml_factory (kedro-mlflow is not installed)."""
    from kedro.pipeline import Pipeline


    class PipelineML(Pipeline):
        def __init__(self, nodes, *, inference, input_name, kpm_kwargs=None,
                     log_model_kwargs=None):
            super().__init__(nodes)
            self.inference = inference
            self.input_name = input_name
            self.kpm_kwargs = dict(kpm_kwargs or {})
            self.log_model_kwargs = {"signature": "auto", "name": "model",
                                     **(log_model_kwargs or {})}

        @property
        def training(self):
            return Pipeline(self.nodes)


    def pipeline_ml_factory(training, inference, input_name, kpm_kwargs=None,
                            log_model_kwargs=None):
        return PipelineML(training.nodes, inference=inference, input_name=input_name,
                          kpm_kwargs=kpm_kwargs, log_model_kwargs=log_model_kwargs)
    '''

_DP_NODES = '''
    import pandas as pd


    def clean(raw: pd.DataFrame, data: dict) -> pd.DataFrame:
        out = raw.dropna().reset_index(drop=True)
        out["x1"] = out["x1"] * data["scale"]
        return out


    def split(instances: pd.DataFrame, test_ratio: float) -> dict:
        cut = int(len(instances) * (1 - test_ratio))
        return {"train": instances.iloc[:cut].reset_index(drop=True),
                "test": instances.iloc[cut:].reset_index(drop=True)}
    '''

_DS_NODES = '''
    import numpy as np
    import pandas as pd


    def fit(train: pd.DataFrame, model: dict, features: list) -> dict:
        x = train[features].to_numpy(dtype=float)
        if model["fit_intercept"]:
            x = np.hstack([x, np.ones((len(x), 1))])
        y = train["y"].to_numpy(dtype=float)
        coef = np.linalg.solve(x.T @ x + model["alpha"] * np.eye(x.shape[1]), x.T @ y)
        return {"coef": coef.tolist(), "fit_intercept": model["fit_intercept"]}


    def predict(coefficients: dict, instances: pd.DataFrame, features: list) -> pd.DataFrame:
        x = instances[features].to_numpy(dtype=float)
        if coefficients["fit_intercept"]:
            x = np.hstack([x, np.ones((len(x), 1))])
        return pd.DataFrame({"prediction": x @ np.asarray(coefficients["coef"])})


    def evaluate(coefficients: dict, test: pd.DataFrame, features: list):
        pred = predict(coefficients, test, features)["prediction"].to_numpy()
        errors = np.abs(pred - test["y"].to_numpy())
        rmse = float(np.sqrt(np.mean(errors ** 2)))
        history = [float(v) for v in np.cumsum(errors) / np.arange(1, len(errors) + 1)]
        report = {"rmse": rmse, "n_test": int(len(test))}
        metrics = {"mae": float(errors.mean()), "max_error": float(errors.max())}
        return rmse, history, metrics, report
    '''

_RAW_CSV = "x1,x2,y\n" + "".join(
    f"{(i * 7) % 11 / 3:.3f},{(i * 5) % 13 / 4:.3f},"
    f"{(i * 7) % 11 * 0.8 + (i * 5) % 13 * 0.3 + i % 3:.3f}\n" if i % 17 else "1.0,,2.0\n"
    for i in range(1, 61))


FLAT: dict[str, str] = {
    "pyproject.toml": _pyproject("imp_flat"),
    "README.md": "A flat Kedro project with kedro-mlflow, for kmlc import-kedro tests.\n",
    "src/imp_flat/__init__.py": '__version__ = "0.1"\n',
    "src/imp_flat/settings.py": _SETTINGS,
    "src/imp_flat/pipeline_ml.py": _PIPELINE_ML,
    "src/imp_flat/pipelines/__init__.py": "",
    "src/imp_flat/pipelines/data_processing/__init__.py":
        "from .pipeline import create_pipeline\n",
    "src/imp_flat/pipelines/data_processing/nodes.py": _DP_NODES,
    "src/imp_flat/pipelines/data_processing/pipeline.py": """
        from kedro.pipeline import Node, Pipeline

        from .nodes import clean


        def create_pipeline(**kwargs) -> Pipeline:
            return Pipeline([Node(clean, ["raw_data", "params:data"], "instances")])
        """,
    "src/imp_flat/pipelines/data_science/__init__.py": "from .pipeline import create_pipeline\n",
    "src/imp_flat/pipelines/data_science/nodes.py": _DS_NODES,
    "src/imp_flat/pipelines/data_science/pipeline.py": """
        from kedro.pipeline import Node, Pipeline

        from imp_flat.pipelines.data_processing.nodes import split

        from .nodes import evaluate, fit, predict


        def create_pipeline(**kwargs) -> Pipeline:
            return Pipeline([
                Node(split, ["instances", "params:split.test_ratio"],
                     {"train": "train_table", "test": "test_table"}, name="split",
                     tags="training"),
                Node(fit, {"train": "train_table", "model": "params:model",
                           "features": "params:features"}, "coefficients", name="fit",
                     tags=["training", "model"]),
                Node(evaluate, ["coefficients", "test_table", "params:features"],
                     ["rmse", "loss_history", "error_metrics", "report"], name="evaluate",
                     tags=["training"]),
                Node(predict, ["coefficients", "instances", "params:features"], "predictions",
                     tags=["inference"]),
            ])
        """,
    "src/imp_flat/pipeline_registry.py": """
        from kedro.pipeline import Pipeline

        from imp_flat.pipeline_ml import pipeline_ml_factory
        from imp_flat.pipelines import data_processing, data_science


        def register_pipelines() -> dict[str, Pipeline]:
            etl = data_processing.create_pipeline()
            ds = data_science.create_pipeline()
            inference = ds.only_nodes_with_tags("inference")
            training = pipeline_ml_factory(
                training=ds.only_nodes_with_tags("training"),
                inference=inference,
                input_name="instances",
                kpm_kwargs={"copy_mode": "assign"},
                log_model_kwargs={"name": "regressor", "registered_model_name": "imp_flat"},
            )
            return {"etl": etl, "training": training, "inference": inference,
                    "__default__": etl + training.training + inference}
        """,
    "conf/base/globals.yml": """
        folders:
          models: data/06_models
        alpha: 0.1
        """,
    "conf/base/catalog.yml": """
        raw_data:
          type: pandas.CSVDataset
          filepath: data/01_raw/raw.csv

        instances:
          type: pandas.ParquetDataset
          filepath: data/02_intermediate/instances.parquet

        train_table:
          type: pandas.CSVDataset
          filepath: data/05_model_input/train.csv
          save_args: {index: false}

        test_table:
          type: pandas.ParquetDataset
          filepath: data/05_model_input/test.parquet

        coefficients:
          type: pickle.PickleDataset
          filepath: ${globals:folders.models}/coefficients.pkl

        predictions:
          type: pandas.CSVDataset
          filepath: data/07_model_output/predictions.csv
          save_args: {index: false}

        rmse:
          type: kedro_mlflow.io.metrics.MlflowMetricDataset
          key: test_rmse

        loss_history:
          type: kedro_mlflow.io.metrics.MlflowMetricHistoryDataset

        error_metrics:
          type: kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset
          prefix: test

        report:
          type: kedro_mlflow.io.artifacts.MlflowArtifactDataset
          artifact_path: reports
          dataset:
            type: json.JSONDataset
            filepath: data/08_reporting/report.json
        """,
    "conf/base/parameters.yml": """
        features: [x1, x2]
        data:
          scale: ${runtime_params:scale, 2.0}
        """,
    "conf/base/parameters_data_science.yml": """
        model:
          alpha: ${globals:alpha}
          fit_intercept: true
        split:
          test_ratio: 0.25
        """,
    "conf/local/credentials.yml": "# nothing secret here\n",
    "conf/local/mlflow.yml": """
        server:
          mlflow_tracking_uri: sqlite:///mlflow.db
          mlflow_registry_uri: null
          credentials: null
        tracking:
          disable_tracking:
            pipelines: [etl]
          experiment:
            name: imp-flat
            restore_if_deleted: true
          run:
            id: null
            name: null
            nested: true
          params:
            dict_params:
              flatten: true
              recursive: true
              sep: "."
            long_params_strategy: tag
        ui:
          port: "5000"
          host: 127.0.0.1
        """,
    # what `kedro run` uses without kedro-mlflow: the MLflow datasets as JSON files
    "conf/compare/catalog.yml": """
        rmse: {type: json.JSONDataset, filepath: data/compare/rmse.json}
        loss_history: {type: json.JSONDataset, filepath: data/compare/loss_history.json}
        error_metrics: {type: json.JSONDataset, filepath: data/compare/error_metrics.json}
        report: {type: json.JSONDataset, filepath: data/08_reporting/report.json}
        """,
    "data/01_raw/raw.csv": _RAW_CSV,
}


# Namespaces (the same template twice: `active` and `candidate`), a dataset factory and
# transcoding: the forms of issue 12.
MODULAR: dict[str, str] = {
    "pyproject.toml": _pyproject("imp_modular"),
    "src/imp_modular/__init__.py": '__version__ = "0.1"\n',
    "src/imp_modular/settings.py": _SETTINGS,
    "src/imp_modular/pipelines/__init__.py": "",
    "src/imp_modular/pipelines/data_processing/__init__.py":
        "from .pipeline import create_pipeline\n",
    "src/imp_modular/pipelines/data_processing/nodes.py": _DP_NODES,
    "src/imp_modular/pipelines/data_processing/pipeline.py": """
        from kedro.pipeline import Node, Pipeline

        from .nodes import clean


        def create_pipeline(**kwargs) -> Pipeline:
            return Pipeline([Node(clean, ["raw_data", "params:data"], "instances@pandas",
                                  name="clean")])
        """,
    "src/imp_modular/pipelines/data_science/__init__.py":
        "from .pipeline import create_pipeline\n",
    "src/imp_modular/pipelines/data_science/nodes.py": _DS_NODES,
    "src/imp_modular/pipelines/data_science/pipeline.py": """
        from kedro.pipeline import Node, Pipeline

        from imp_modular.pipelines.data_processing.nodes import split

        from .nodes import evaluate, fit


        def create_pipeline(**kwargs) -> Pipeline:
            template = Pipeline([
                Node(split, ["instances@pandas", "params:split.test_ratio"],
                     {"train": "train_table", "test": "test_table"}, name="split"),
                Node(fit, {"train": "train_table", "model": "params:model",
                           "features": "params:features"}, "coefficients", name="fit"),
                Node(evaluate, ["coefficients", "test_table", "params:features"],
                     ["rmse", "loss_history", "error_metrics", "report"], name="evaluate"),
            ])
            shared = {"instances@pandas"}
            return (
                Pipeline(template, namespace="active", inputs=shared,
                         parameters={"params:features": "params:features",
                                     "params:split.test_ratio": "params:split.test_ratio"},
                         tags=["active"])
                + Pipeline(template, namespace="candidate", inputs=shared,
                           parameters={"params:features": "params:features",
                                       "params:split.test_ratio": "params:split.test_ratio"},
                           tags=["candidate"])
            )
        """,
    "src/imp_modular/pipeline_registry.py": """
        from kedro.framework.project import find_pipelines
        from kedro.pipeline import Pipeline


        def register_pipelines() -> dict[str, Pipeline]:
            pipelines = find_pipelines(raise_errors=True)
            pipelines["__default__"] = sum(pipelines.values())
            return pipelines
        """,
    "conf/base/catalog.yml": """
        raw_data:
          type: pandas.CSVDataset
          filepath: data/01_raw/raw.csv

        instances@pandas:
          type: pandas.ParquetDataset
          filepath: data/02_intermediate/instances.parquet

        "{namespace}.{name}_table":
          type: pandas.ParquetDataset
          filepath: data/05_model_input/{namespace}_{name}.parquet

        "{namespace}.coefficients":
          type: pickle.PickleDataset
          filepath: data/06_models/{namespace}_coefficients.pkl

        "{namespace}.report":
          type: json.JSONDataset
          filepath: data/08_reporting/{namespace}_report.json

        "{namespace}.rmse":
          type: json.JSONDataset
          filepath: data/08_reporting/{namespace}_rmse.json
        """,
    "conf/base/parameters.yml": """
        features: [x1, x2]
        data: {scale: 2.0}
        split: {test_ratio: 0.25}
        active:
          model: {alpha: 0.1, fit_intercept: true}
        candidate:
          model: {alpha: 5.0, fit_intercept: false}
        """,
    "conf/local/.gitkeep": "",
    "data/01_raw/raw.csv": _RAW_CSV,
}
