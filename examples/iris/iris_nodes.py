"""Node functions of the iris example: plain Python, no kmlc or MLflow imports."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def clean(instances: pd.DataFrame) -> pd.DataFrame:
    """Shared by training and inference: snake_case columns, floats, rows indexed by id."""
    frame = instances.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame = frame.set_index("id") if "id" in frame.columns else frame
    return frame[FEATURES].astype("float64")


def split(features: pd.DataFrame, labels: pd.DataFrame, options: dict[str, Any]
          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    target = labels.set_index("id").loc[features.index, "species"]
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=options["test_size"], random_state=options["seed"],
        stratify=target)
    return x_train, x_test, y_train, y_test


def fit_scaler(x_train: pd.DataFrame) -> StandardScaler:
    return StandardScaler().fit(x_train.to_numpy())


def fit_classifier(x_train: pd.DataFrame, y_train: pd.Series, scaler: StandardScaler,
                   c: float, max_iter: int) -> LogisticRegression:
    model = LogisticRegression(C=c, max_iter=max_iter)
    return model.fit(scaler.transform(x_train.to_numpy()), y_train.to_numpy())


def predict(scaler: StandardScaler, classifier: LogisticRegression,
            features: pd.DataFrame) -> pd.DataFrame:
    """The inference output: one row per instance, the species and its probability."""
    probabilities = classifier.predict_proba(scaler.transform(features.to_numpy()))
    best = probabilities.argmax(axis=1)
    return pd.DataFrame({"species": classifier.classes_[best],
                         "probability": probabilities.max(axis=1)}, index=features.index)


def evaluate(scaler: StandardScaler, classifier: LogisticRegression, x_test: pd.DataFrame,
             y_test: pd.Series) -> tuple[float, dict[str, float], Any]:
    predicted = predict(scaler, classifier, x_test)["species"]
    accuracy = float(accuracy_score(y_test, predicted))
    metrics = {"f1_macro": float(f1_score(y_test, predicted, average="macro")),
               "test_rows": float(len(y_test))}
    labels = list(classifier.classes_)
    matrix = confusion_matrix(y_test, predicted, labels=labels)
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45)
    axes.set_yticks(range(len(labels)), labels)
    for (row, col), value in pd.DataFrame(matrix).stack().items():
        axes.text(col, row, str(value), ha="center", va="center")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.tight_layout()
    return accuracy, metrics, figure
