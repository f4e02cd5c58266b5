"""Sweep stage, one trial: its project (the trial's parameters, its persisted outputs in
a folder of its own), run as a nested MLflow run through ``kmlc.run.run_pipeline``, and
its result (the metric read back from its run).

A ``TrialJob`` holds what every trial of a sweep shares and pickles without the compiled
project or the parent's tracker, so the same code runs a trial in the sweep's process,
in a process forked from it, or in a Dask worker (``kmlc.sweep.remote``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kmlc.compiler.project import CompiledProject
from kmlc.config.selection import Selection
from kmlc.config.spec import ProjectSpec, SweepSpec
from kmlc.errors import KmlcError, RunInterrupted
from kmlc.run import RunOptions, run_pipeline
from kmlc.sweep.factor import SweepPlan, private_path
from kmlc.sweep.record import run_metrics
from kmlc.sweep.space import Trial
from kmlc.tracking.worker import tracker as process_tracker

__all__ = ["TrialJob", "TrialResult", "with_values"]


@dataclass(frozen=True)
class TrialResult:
    trial: Trial
    run_id: str | None
    status: str  # FINISHED, FAILED or KILLED
    value: float | None
    seconds: float
    error: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def killed(cls, trial: Trial, run_id: str | None = None,
               seconds: float = 0.0) -> TrialResult:
        """An interrupted trial: its run (if it had opened one) is KILLED."""
        return cls(trial, run_id, "KILLED", None, seconds, "interrupted")


def with_values(parameters: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``parameters`` with each dotted path of ``values`` set (the mappings copied)."""
    out = dict(parameters)
    for path, value in values.items():
        parts = path.split(".")
        node = out
        for part in parts[:-1]:
            node[part] = dict(node[part])
            node = node[part]
        node[parts[-1]] = value
    return out


@dataclass(frozen=True)
class TrialJob:
    """What the trials of one sweep share: the project (nodes run on an in-process
    runner), the pipeline and its split, the run options (``parent_run_id`` set), the
    sweep's folder and where its runs go."""

    spec: ProjectSpec
    sweep: SweepSpec
    pipeline: str
    plan: SweepPlan
    options: RunOptions
    folder: Path
    target: Any  # kmlc.config.target.TrackingTarget of the sweep's runs

    def trial_spec(self, trial: Trial) -> ProjectSpec:
        spec = self.spec
        folder = self.folder / f"trial-{trial.number:03d}"
        datasets = dict(spec.datasets)
        for name in self.plan.private:
            ds = datasets[name]
            key = "filepath" if "filepath" in ds.config else "path"
            datasets[name] = replace(ds, config={**ds.config,
                                                 key: str(private_path(spec, name, folder))})
        return replace(spec, parameters=with_values(spec.parameters, trial.values),
                       datasets=datasets)

    def run(self, trial: Trial, shared: Mapping[str, Any], compiled: CompiledProject,
            tracker: Any = None,
            killed: Callable[[TrialResult], None] | None = None) -> TrialResult:
        """Run ``trial`` with ``shared`` (what ran once) preloaded; ``tracker``: where the
        metric is read back (default: this process's). Interrupted, the trial is KILLED:
        returned, or, with ``killed``, handed to it and the interrupt raised on."""
        spec = self.trial_spec(trial)
        tags = {"kmlc.sweep.trial": str(trial.number)}
        if trial.candidate:
            tags["kmlc.sweep.candidate"] = trial.candidate
        selection = Selection(nodes=self.plan.trial_nodes[trial.candidate])
        options = replace(self.options, selection=selection, run_tags=tags,
                          run_name=f"trial-{trial.number}")
        started = time.perf_counter()
        status, run_id, error = "FINISHED", None, None
        try:
            ran = run_pipeline(spec, self.pipeline, options, replace(compiled, spec=spec),
                               values=shared)
            run_id = ran.run_id
        except KeyboardInterrupt as exc:
            run_id = exc.run_id if isinstance(exc, RunInterrupted) else None
            result = TrialResult.killed(trial, run_id, time.perf_counter() - started)
            if killed is None:
                return result
            killed(result)
            raise
        except KmlcError as exc:
            status, run_id, error = "FAILED", exc.run_id, str(exc)
        seconds = time.perf_counter() - started
        metrics = self.metrics(run_id, tracker) if run_id and status == "FINISHED" else {}
        value = metrics.get(self.sweep.metric)
        if value is None and trial.candidate:  # a namespaced copy logs under its namespace
            value = metrics.get(f"{trial.candidate}.{self.sweep.metric}")
        if value is not None and math.isnan(value):
            value = None
        if status == "FINISHED" and value is None:
            error = f"logged no metric '{self.sweep.metric}'"
        return TrialResult(trial, run_id, status, value, seconds, error, metrics)

    def metrics(self, run_id: str, tracker: Any = None) -> dict[str, float]:
        tracker = tracker or process_tracker()
        return dict(tracker.wait_job(tracker.start_job(
            run_metrics, {"target": self.target, "run_id": run_id})))
