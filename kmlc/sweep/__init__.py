"""The experiment loop: ``sweep:`` in mlproject.yml and ``kmlc sweep``.

``space`` asks for the trials (grid, random, Optuna), ``factor`` splits the pipeline
into what runs once and what runs per trial, ``loop`` runs them as nested MLflow runs
through ``kmlc.run.run_pipeline``, ``record`` writes the parent run's leaderboard (in the
tracking worker, which imports this package: nothing is imported here eagerly).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SweepPlan", "SweepResult", "Trial", "TrialResult", "format_plan",
           "params_command", "plan_sweep", "run_sweep", "search_for", "sweep_pipeline"]

_HOMES = {"SweepPlan": "factor", "format_plan": "factor", "plan_sweep": "factor",
          "SweepResult": "loop", "TrialResult": "loop", "run_sweep": "loop",
          "sweep_pipeline": "loop", "Trial": "space", "params_command": "space",
          "search_for": "space"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"kmlc.sweep.{_HOMES[name]}"), name)
