"""Evaluation of the digits example: validation metrics and plots (Agg backend)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen needed

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import (
    accuracy_score,
    auc,
    confusion_matrix,
    f1_score,
    log_loss,
    roc_auc_score,
    roc_curve,
)
from sklearn.neural_network import MLPClassifier


def _confusion_figure(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> Any:
    matrix = confusion_matrix(y_true, y_pred, labels=classes)
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.imshow(matrix, cmap="Blues")
    for row in range(len(classes)):
        for col in range(len(classes)):
            color = "white" if matrix[row, col] > matrix.max() / 2 else "black"
            axes.text(col, row, str(matrix[row, col]), ha="center", va="center",
                      fontsize=8, color=color)
    axes.set_xticks(range(len(classes)), [str(c) for c in classes])
    axes.set_yticks(range(len(classes)), [str(c) for c in classes])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("confusion matrix (validation)")
    figure.tight_layout()
    return figure


def _roc_figure(y_true: np.ndarray, probabilities: np.ndarray, classes: np.ndarray) -> Any:
    figure, axes = plt.subplots(figsize=(5, 5))
    for index, label in enumerate(classes):
        fpr, tpr, _ = roc_curve(y_true == label, probabilities[:, index])
        axes.plot(fpr, tpr, linewidth=1, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
    axes.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title("ROC, one digit vs the rest (validation)")
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure


def evaluate(classifier: MLPClassifier, x_val: np.ndarray, y_val: np.ndarray
             ) -> dict[str, Any]:
    """Validation metrics, the confusion matrix and the one-vs-rest ROC curves."""
    classes = classifier.classes_
    probabilities = classifier.predict_proba(x_val)
    predicted = classes[probabilities.argmax(axis=1)]
    metrics = {
        "accuracy": float(accuracy_score(y_val, predicted)),
        "f1_macro": float(f1_score(y_val, predicted, average="macro")),
        "log_loss": float(log_loss(y_val, probabilities, labels=classes)),
        "roc_auc_ovr": float(roc_auc_score(y_val, probabilities, multi_class="ovr",
                                           labels=classes)),
        "rows": float(len(y_val)),
    }
    return {"metrics": metrics,
            "confusion_matrix": _confusion_figure(y_val, predicted, classes),
            "roc": _roc_figure(y_val, probabilities, classes)}
