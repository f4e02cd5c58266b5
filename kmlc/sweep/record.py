"""Sweep stage, MLflow side: what the parent run of a sweep holds.

These functions run where MLflow is loaded (the tracking worker's jobs,
``Tracker.start_job``): a trial's metrics read back, and the parent's leaderboard (an
MLflow table and a CSV artifact), the best trial's parameters and metrics, and the
tags counting the trials.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from kmlc.config.spec import TrackingTarget
from kmlc.tracking.client import open_client
from kmlc.tracking.jobs import job
from kmlc.tracking.retry import with_retry

__all__ = ["close_trials", "record_sweep", "run_metrics"]


@job
def run_metrics(*, target: TrackingTarget, run_id: str) -> dict[str, float]:
    """The latest value of every metric of ``run_id``."""
    run = with_retry(open_client(target).get_run, run_id)
    return {str(k): float(v) for k, v in run.data.metrics.items()}


@job
def close_trials(*, target: TrackingTarget, experiment_id: str, run_id: str,
                 status: str) -> dict[str, str]:
    """Close as ``status`` the trial runs of the sweep ``run_id`` still RUNNING (a trial
    whose process died, or was interrupted as it started, never closed its own run);
    each closed run's id -> its trial number."""
    client = open_client(target)
    runs = with_retry(client.search_runs, [experiment_id],
                      f"tags.mlflow.parentRunId = '{run_id}' and attributes.status = 'RUNNING'",
                      max_results=1000)
    closed = {}
    for run in runs:
        with_retry(client.set_terminated, run.info.run_id, status)
        closed[run.info.run_id] = run.data.tags.get("kmlc.sweep.trial", "")
    return closed


@job
def record_sweep(*, target: TrackingTarget, run_id: str, columns: Sequence[str],
                 rows: Sequence[Sequence[Any]], best_params: Mapping[str, str],
                 best_metrics: Mapping[str, float], tags: Mapping[str, str]) -> None:
    """The leaderboard, the best trial and the counts, into the parent run ``run_id``."""
    import os
    import time

    # log_table reads the table back first: no download bar on the user's terminal
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    from mlflow.entities import Metric, Param, RunTag


    client = open_client(target)
    table = {column: [row[i] for row in rows] for i, column in enumerate(columns)}
    if rows:
        with_retry(client.log_table, run_id, table, "leaderboard.json")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    with_retry(client.log_text, run_id, text.getvalue(), "leaderboard.csv")
    now = int(time.time() * 1000)
    with_retry(client.log_batch, run_id,
               metrics=[Metric(f"best.{k}", float(v), now, 0) for k, v in best_metrics.items()],
               params=[Param(f"best.{k}", str(v)) for k, v in best_params.items()],
               tags=[RunTag(k, str(v)) for k, v in tags.items()])
