"""kmlc: build machine-learning projects on Kedro and MLflow from one YAML file."""

from __future__ import annotations

__version__ = "0.1.0"
