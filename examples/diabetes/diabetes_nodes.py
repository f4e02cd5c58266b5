"""Node functions of the diabetes example: one preparation, two candidate regressors."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split

log = logging.getLogger(__name__)

COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def features(patients: pd.DataFrame) -> pd.DataFrame:
    """The ten measurements, as floats, in a fixed order (training and inference alike)."""
    return patients[COLUMNS].astype(float)


def split(table: pd.DataFrame, progression: pd.DataFrame,
          options: dict[str, Any]) -> tuple[Any, ...]:
    """Features and target, split into train and test (the same split for every trial)."""
    x_train, x_test, y_train, y_test = train_test_split(
        table, progression["progression"], test_size=options["test_size"],
        random_state=options["seed"])
    return x_train, x_test, y_train, y_test, float(len(table))


def fit(x_train: pd.DataFrame, y_train: pd.Series, options: dict[str, Any]) -> Any:
    """A ridge regression or a random forest, as ``options.kind`` says."""
    kind = options["kind"]
    settings = {k: v for k, v in options.items() if k != "kind"}
    model = Ridge(**settings) if kind == "ridge" else RandomForestRegressor(**settings)
    return model.fit(x_train, y_train)


def evaluate(regressor: Any, x_test: pd.DataFrame, y_test: pd.Series) -> dict[str, float]:
    """R^2 and RMSE on the test rows."""
    predicted = regressor.predict(x_test)
    y = np.asarray(y_test, dtype=float)
    r2 = 1 - float(((y - predicted) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    rmse = float(np.sqrt(((y - predicted) ** 2).mean()))
    log.info("%s: r2 %.3f, rmse %.1f", type(regressor).__name__, r2, rmse)
    return {"r2": r2, "rmse": rmse}


def predict(regressor: Any, table: pd.DataFrame) -> pd.DataFrame:
    """The predicted disease progression of each row."""
    return pd.DataFrame({"progression": regressor.predict(table)}, index=table.index)
