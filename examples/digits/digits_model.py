"""Training and inference nodes of the digits example: plain Python, no kmlc or MLflow.

``flatten`` and ``predict`` are tagged ``inference``: with the fitted classifier they
make the model that every training run logs. It takes raw image arrays, shape
(n, 8, 8), and returns one row per image: the digit and the model's confidence.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

MAX_GRAY = 16.0  # the digits' gray levels are 0..16
CLASSES = np.arange(10)


def flatten(images: np.ndarray) -> np.ndarray:
    """(n, 8, 8) gray levels (or already flat, (n, 64)) -> (n, 64) pixels in [0, 1]."""
    images = np.asarray(images, dtype="float64")
    if images.ndim == 2 and images.shape[1] == 64:
        images = images.reshape(-1, 8, 8)
    if images.ndim != 3 or images.shape[1:] != (8, 8):
        raise ValueError(f"expected images of shape (n, 8, 8), got {images.shape}")
    return images.reshape(len(images), 64) / MAX_GRAY


def split(pixels: np.ndarray, labels: np.ndarray, options: dict[str, Any]
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stratified train/validation split."""
    x_train, x_val, y_train, y_val = train_test_split(
        pixels, labels, test_size=options["validation_size"], random_state=options["seed"],
        stratify=labels)
    return x_train, x_val, y_train, y_val


def train(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
          options: dict[str, Any]) -> dict[str, Any]:
    """An MLP trained epoch by epoch with ``partial_fit``.

    Returns the classifier and, per epoch, the loss and accuracy on the training and
    validation sets (lists, one value per epoch).
    """
    model = MLPClassifier(hidden_layer_sizes=tuple(options["hidden_layers"]),
                          learning_rate_init=options["learning_rate"],
                          batch_size=options["batch_size"], alpha=options["alpha"],
                          random_state=options["seed"])
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "train_accuracy": [],
                                       "val_accuracy": []}
    rng = np.random.default_rng(options["seed"])
    for _ in range(options["epochs"]):
        order = rng.permutation(len(x_train))
        model.partial_fit(x_train[order], y_train[order], classes=CLASSES)
        for name, x, y in (("train", x_train, y_train), ("val", x_val, y_val)):
            probabilities = model.predict_proba(x)
            history[f"{name}_loss"].append(float(log_loss(y, probabilities, labels=CLASSES)))
            history[f"{name}_accuracy"].append(
                float(accuracy_score(y, CLASSES[probabilities.argmax(axis=1)])))
    return {"classifier": model, **history}


def predict(classifier: MLPClassifier, pixels: np.ndarray) -> pd.DataFrame:
    """The inference output: the predicted ``label`` of each image and its ``confidence``."""
    probabilities = classifier.predict_proba(pixels)
    best = probabilities.argmax(axis=1)
    return pd.DataFrame({"label": classifier.classes_[best].astype("int64"),
                         "confidence": probabilities.max(axis=1)})
