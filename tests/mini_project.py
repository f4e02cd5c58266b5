"""The mini project: scikit-learn, CSV files and every kind of tracked dataset."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

MINI_YAML = """\
version: 1
name: mini
tracking:
  tags: {team: tests}
parameters:
  model: {c: 0.5, max_iter: 200}
  fail: false
  sleep: 0
  threshold: 0.5
datasets:
  instances: {type: pandas.CSVDataset, filepath: data/01_raw/instances.csv}
  labels: {type: pandas.CSVDataset, filepath: data/01_raw/labels.csv}
  classifier: {type: pickle.PickleDataset, filepath: data/06_models/classifier.pkl}
  sk_model: {type: mlflow.model, flavor: mlflow.sklearn}
  accuracy: {type: mlflow.metric}
  loss: {type: mlflow.metric_history}
  scores: {type: mlflow.metrics, prefix: eval}
  report:
    type: json.JSONDataset
    filepath: data/08_reporting/report.json
    track: {artifact_path: reports}
  predictions:
    type: pandas.CSVDataset
    filepath: data/07_model_output/predictions.csv
    save_args: {index: true}
nodes:
  - name: clean
    func: mini_nodes.clean
    inputs: instances
    outputs: features
    tags: [training, inference]
  - name: fit
    func: mini_nodes.fit
    inputs: {features: features, labels: labels, c: params:model.c,
             max_iter: params:model.max_iter}
    outputs: [classifier, sk_model, loss]
    tags: [training]
  - name: evaluate
    func: mini_nodes.evaluate
    inputs: [classifier, features, labels]
    outputs: [accuracy, scores, report]
    tags: [training]
  - name: check
    func: mini_nodes.check
    inputs: [report, params:fail, params:sleep]
    outputs: checked
    tags: [training]
  - name: predict
    func: mini_nodes.predict
    inputs: [classifier, features, params:threshold]
    outputs: predictions
    tags: [inference]
model:
  input: instances
"""

MINI_NODES = '''\
"""Node functions of the mini project."""

import time

import pandas as pd
from sklearn.linear_model import LogisticRegression


def clean(instances: pd.DataFrame) -> pd.DataFrame:
    return instances.set_index("id")[["x1", "x2"]].astype(float)


def fit(features, labels, c, max_iter):
    y = labels.set_index("id").loc[features.index, "y"]
    model = LogisticRegression(C=c, max_iter=max_iter).fit(features, y)
    return model, model, [1.0, 0.5, 0.25]


def evaluate(classifier, features, labels):
    y = labels.set_index("id").loc[features.index, "y"]
    accuracy = float((classifier.predict(features) == y).mean())
    return accuracy, {"accuracy": accuracy, "curve": [0.1, 0.2]}, {"accuracy": accuracy}


def check(report, fail, sleep):
    if sleep:
        time.sleep(sleep)
    if fail:
        raise ValueError("the check failed on purpose")
    return True


def predict(classifier, features, threshold):
    proba = classifier.predict_proba(features)[:, 1]
    return pd.DataFrame({"proba": proba, "label": (proba > threshold).astype(int)},
                        index=features.index)
'''


def project_data() -> tuple[str, str]:
    rows = ["id,x1,x2"]
    labels = ["id,y"]
    for i in range(40):
        x1, x2 = (i % 7) / 7.0, ((i * 3) % 11) / 11.0
        rows.append(f"{i},{x1:.4f},{x2:.4f}")
        labels.append(f"{i},{int(x1 + x2 > 0.9)}")
    return "\n".join(rows) + "\n", "\n".join(labels) + "\n"



def kmlc_exe() -> str:
    """The kmlc console script of the running interpreter's environment."""
    return str(Path(sys.executable).parent / "kmlc")


def write_mini(root: Path, text: str = MINI_YAML, nodes: str = MINI_NODES) -> Path:
    """The mini project in ``root``; returns its mlproject.yml."""
    (root / "data" / "01_raw").mkdir(parents=True, exist_ok=True)
    instances, labels = project_data()
    (root / "data" / "01_raw" / "instances.csv").write_text(instances)
    (root / "data" / "01_raw" / "labels.csv").write_text(labels)
    (root / "mini_nodes.py").write_text(nodes)
    path = root / "mlproject.yml"
    path.write_text(text)
    return path


def project_copy(path: Path, folder: Path) -> Path:
    """The trained project's files (its code, data and trained artifacts, not its tracking
    store) copied into ``folder``: a test that adds a variant file or a store of its own
    works there, and the shared trained project is only read."""
    shutil.copytree(path.parent, folder, ignore=shutil.ignore_patterns("mlflow.db*",
                                                                       "mlartifacts"))
    return folder / path.name


@contextlib.contextmanager
def mlflow_uri_restored() -> Iterator[None]:
    """MLflow's process-wide tracking and registry URIs (and ``MLFLOW_TRACKING_URI``,
    ``MLFLOW_REGISTRY_URI``) as they were before.

    ``mlflow.set_tracking_uri``/``set_registry_uri`` also export the variables (for
    subprocesses), and ``kmlc predict --tracking-uri`` sets one in process: all are restored.
    """
    import os

    globals_ = {"mlflow.tracking._tracking_service.utils": "_tracking_uri",
                "mlflow.tracking._model_registry.utils": "_registry_uri"}
    before = {module: getattr(sys.modules.get(module), name, None)
              for module, name in globals_.items()}
    env_before = {name: os.environ.get(name)
                  for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    yield
    for module, name in globals_.items():  # MLflow keeps each as a private module global
        if sys.modules.get(module) is not None:
            setattr(sys.modules[module], name, before[module])
    for name, value in env_before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
