"""Data processing of the digits example: scikit-learn's bundled 8x8 digits, no download."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits


def prepare(options: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The raw images, shape (n, 8, 8) with gray levels 0..16, and their labels 0..9.

    ``options["limit"]`` keeps only the first images (0: all of them).
    """
    digits = load_digits()
    limit = options.get("limit") or len(digits.images)
    images = digits.images[:limit].astype("float64")
    labels = digits.target[:limit].astype("int64")
    return images, labels
