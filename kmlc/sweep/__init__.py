"""The experiment loop: ``sweep:`` in mlproject.yml and ``kmlc sweep``.

``space`` asks for the trials (grid, random, Optuna), ``factor`` splits the pipeline
into what runs once and what runs per trial, ``loop`` runs them as nested MLflow runs
through ``kmlc.run.run_pipeline``, ``record`` writes the parent run's leaderboard (in the
tracking worker, which imports ``record`` alone: this package imports nothing).
"""
