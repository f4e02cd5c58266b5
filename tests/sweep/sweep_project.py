"""A small regression project for the sweep tests: a preparation that runs once, a fit
per trial (alpha swept), metrics, a tracked report and a bound model."""

from __future__ import annotations

from pathlib import Path

SWEEP_YAML = """\
version: 1
name: sweepy
parameters:
  prep: {scale: 2.0, sleep: 0}
  model: {alpha: 1.0}
  fail_alpha: -1
  sleep_alpha: -1
datasets:
  raw: {type: pandas.CSVDataset, filepath: data/raw.csv}
  regressor: {type: pickle.PickleDataset, filepath: data/models/regressor.pkl}
  report:
    type: json.JSONDataset
    filepath: data/reports/report.json
    track: {artifact_path: reports}
  metrics: {type: mlflow.metrics}
  rows: {type: mlflow.metric}
nodes:
  - name: prepare
    func: sweep_nodes.prepare
    inputs: [raw, params:prep.scale, params:prep.sleep]
    outputs: table
    tags: [training, inference]
  - name: split
    func: sweep_nodes.split
    inputs: table
    outputs: [x_train, x_test, y_train, y_test, rows]
    tags: [training]
  - name: fit
    func: sweep_nodes.fit
    inputs: [x_train, y_train, params:model.alpha, params:fail_alpha, params:sleep_alpha]
    outputs: regressor
    tags: [training]
  - name: evaluate
    func: sweep_nodes.evaluate
    inputs: [regressor, x_test, y_test, params:model.alpha]
    outputs: [metrics, report]
    tags: [training]
  - name: predict
    func: sweep_nodes.predict
    inputs: [regressor, table]
    outputs: predictions
    tags: [inference]
model:
  input: raw
sweep:
  parameters:
    model.alpha: {values: [0.01, 1.0, 100.0]}
  metric: r2
  direction: maximize
"""

SWEEP_NODES = '''\
"""Node functions of the sweep test project."""

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd


def prepare(raw, scale, sleep):
    time.sleep(sleep)
    out = raw.copy()
    out[["x1", "x2", "x3"]] = out[["x1", "x2", "x3"]] * scale
    return out


def split(table):
    marker = os.environ.get("KMLC_TEST_PREPARED")
    if marker:  # counts how many times the split ran
        with open(marker, "a") as f:
            f.write("split\\n")
    train, test = table.iloc[::2], table.iloc[1::2]
    cols = ["x1", "x2", "x3"]
    return train[cols], test[cols], train["y"], test["y"], float(len(table))


class Ridge:
    def __init__(self, alpha):
        self.alpha = alpha

    def fit(self, x, y):
        x = np.c_[np.ones(len(x)), np.asarray(x, float)]
        penalty = self.alpha * np.eye(x.shape[1])
        penalty[0, 0] = 0
        self.coef_ = np.linalg.solve(x.T @ x + penalty, x.T @ np.asarray(y, float))
        return self

    def predict(self, x):
        return np.c_[np.ones(len(x)), np.asarray(x, float)] @ self.coef_


def fit(x_train, y_train, alpha, fail_alpha, sleep_alpha):
    if alpha == fail_alpha:
        raise ValueError(f"alpha {alpha} is refused")
    if str(alpha) == os.environ.get("KMLC_TEST_DIE_ALPHA"):  # the process dies at once
        import signal
        os.kill(os.getpid(), signal.SIGKILL)
    if alpha == sleep_alpha:
        marker = os.environ.get("KMLC_TEST_MARKER")
        if marker:
            Path(marker).write_text("fitting")
        for _ in range(1200):  # short sleeps: an interrupt raised in this thread lands
            time.sleep(0.1)
    time.sleep(float(os.environ.get("KMLC_TEST_FIT_SECONDS") or 0))  # a fit that takes time
    return Ridge(alpha).fit(x_train, y_train)


def evaluate(regressor, x_test, y_test, alpha):
    pred = regressor.predict(x_test)
    y = np.asarray(y_test, float)
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    rmse = float(np.sqrt(((y - pred) ** 2).mean()))
    return {"r2": float(r2), "rmse": rmse}, {"alpha": alpha, "r2": float(r2),
                                              "pid": os.getpid()}


def predict(regressor, table):
    return pd.DataFrame({"prediction": regressor.predict(table[["x1", "x2", "x3"]])})
'''


def write_sweep_project(root: Path, yaml_text: str = SWEEP_YAML) -> Path:
    """Write the project under ``root``; returns the path of its mlproject.yml."""
    import numpy as np
    import pandas as pd

    (root / "data").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + rng.normal(scale=0.5, size=80)
    frame = pd.DataFrame(x, columns=["x1", "x2", "x3"])
    frame["y"] = y
    frame.to_csv(root / "data" / "raw.csv", index=False)
    (root / "sweep_nodes.py").write_text(SWEEP_NODES)
    path = root / "mlproject.yml"
    path.write_text(yaml_text)
    return path
