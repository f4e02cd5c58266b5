"""The experiment loop: ``sweep:`` in mlproject.yml and ``kmlc sweep``.

``space`` asks for the trials (grid, random, Optuna), ``factor`` splits the pipeline
into what runs once and what runs per trial, ``loop`` runs them as nested MLflow runs
under one parent: ``trial_job`` runs one trial through ``kmlc.run.run_pipeline`` (in
this process, a forked one, or a Dask worker: ``remote``), ``board`` shows the
leaderboard as trials end, ``record`` writes the parent run's leaderboard (in the
tracking worker, which imports ``record`` alone: this package imports nothing).
"""
