"""Sweep stage, factoring: which nodes run once and which run per trial.

A node is reached by the sweep when it reads a swept parameter (the path, a part of it
or the mapping that holds it; ``parameters`` reads them all), when it is in a
candidate's namespace, or when it reads what a reached node produced. The other nodes
run once, before the trials, and what they hand the trials in memory is given to
every trial. A candidate's trial runs the reached nodes that no other candidate's
nodes feed; the persisted datasets a trial writes go to a folder of the trial's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmlc.config.localpath import local_path
from kmlc.config.params import ALL_PARAMS, PARAMS_PREFIX
from kmlc.config.spec import ProjectSpec, SweepSpec

__all__ = ["SweepPlan", "format_plan", "plan_sweep"]


@dataclass(frozen=True)
class SweepPlan:
    pipeline: str
    shared: tuple[str, ...]  # nodes that run once, in order
    trial_nodes: Mapping[str | None, tuple[str, ...]]  # candidate (None: none) -> nodes
    handoff: tuple[str, ...]  # memory datasets the shared nodes hand every trial
    private: tuple[str, ...]  # persisted datasets each trial writes to its own folder
    not_run: tuple[str, ...] = ()  # nodes fed by more than one candidate
    reasons: Mapping[str, str] = field(default_factory=dict)  # node -> why it runs per trial


def _base(name: str) -> str:
    return name.split("@", 1)[0]


def _reads_swept(inputs: Iterable[str], paths: Iterable[str]) -> str | None:
    for name in inputs:
        if name == ALL_PARAMS:
            return "reads `parameters`"
        if not name.startswith(PARAMS_PREFIX):
            continue
        read = name[len(PARAMS_PREFIX):]
        for path in paths:
            if read == path or read.startswith(path + ".") or path.startswith(read + "."):
                return f"reads params:{read}"
    return None


def _in(namespace: str | None, candidate: str) -> bool:
    return namespace is not None and (namespace == candidate
                                      or namespace.startswith(candidate + "."))


def plan_sweep(spec: ProjectSpec, sweep: SweepSpec, pipeline_name: str,
               pipeline: Any) -> SweepPlan:
    """Split the Kedro ``pipeline`` for ``sweep`` (see the module docstring)."""
    paths = [p.path for p in sweep.parameters]
    reasons: dict[str, str] = {}
    produced_by_trial: set[str] = set()
    tainted: dict[str, set[str]] = {c: set() for c in sweep.candidates}  # candidate -> nodes
    fed: dict[str, set[str]] = {c: set() for c in sweep.candidates}  # candidate -> datasets
    for node in pipeline.nodes:  # topological order
        inputs = {_base(i) for i in node.inputs}
        why = _reads_swept(node.inputs, paths)
        for candidate in sweep.candidates:
            if _in(node.namespace, candidate) or inputs & fed[candidate]:
                tainted[candidate].add(node.name)
                fed[candidate].update(_base(o) for o in node.outputs)
                why = why or (f"is in candidate '{candidate}'" if _in(node.namespace, candidate)
                              else f"follows candidate '{candidate}'")
        if why is None and inputs & produced_by_trial:
            why = "follows a swept node"
        if why is not None:
            reasons[node.name] = why
            produced_by_trial.update(_base(o) for o in node.outputs)
    shared = tuple(n.name for n in pipeline.nodes if n.name not in reasons)
    per_trial = [n.name for n in pipeline.nodes if n.name in reasons]
    trial_nodes: dict[str | None, tuple[str, ...]] = {}
    for chosen in sweep.candidates or (None,):
        others = set().union(*(t for c, t in tainted.items() if c != chosen))
        trial_nodes[chosen] = tuple(n for n in per_trial if n not in others)
    run_by_some = set().union(*trial_nodes.values()) if trial_nodes else set()
    not_run = tuple(n for n in per_trial if n not in run_by_some)
    by_name = {n.name: n for n in pipeline.nodes}
    shared_out = {_base(o) for name in shared for o in by_name[name].outputs}
    trial_in = {_base(i) for name in run_by_some for i in by_name[name].inputs}
    handoff = tuple(sorted(name for name in shared_out & trial_in
                           if _is_memory(spec, name)))
    trial_out = {o for name in run_by_some for o in by_name[name].outputs}
    private = tuple(sorted(name for name in trial_out if name in spec.datasets
                           and not spec.datasets[name].is_mlflow
                           and local_path(spec.datasets[name], spec.root) is not None))
    return SweepPlan(pipeline_name, shared, trial_nodes, handoff, private, not_run, reasons)


def _is_memory(spec: ProjectSpec, name: str) -> bool:
    ds = spec.datasets.get(name)
    return ds is None or ds.type.rpartition(".")[2] in ("MemoryDataset", "SharedMemoryDataset")


def private_path(spec: ProjectSpec, name: str, folder: Path) -> Path:
    """Where a trial writing into ``folder`` keeps dataset ``name``."""
    real = local_path(spec.datasets[name], spec.root)
    assert real is not None
    try:
        return folder / real.resolve().relative_to(spec.root.resolve())
    except ValueError:  # a dataset outside the project (allow_outside)
        return folder / "_outside" / name / real.name


def format_plan(plan: SweepPlan, sweep: SweepSpec, trials: int | None) -> str:
    """``kmlc plan --sweep``: the split, as text."""
    lines = [f"sweep of pipeline '{plan.pipeline}': method {sweep.method}, "
             f"{trials if trials is not None else 'unbounded'} trials, {sweep.direction} "
             f"{sweep.metric}" + (f", {sweep.parallel} at once" if sweep.parallel > 1 else "")]
    lines.append(f"run once ({len(plan.shared)}):" + ("" if plan.shared else " nothing"))
    lines += [f"  {name}" for name in plan.shared]
    for candidate, nodes in plan.trial_nodes.items():
        label = f"candidate '{candidate}'" if candidate else "every trial"
        lines.append(f"run per trial, {label} ({len(nodes)}):")
        lines += [f"  {name}  ({plan.reasons[name]})" for name in nodes]
    if plan.handoff:
        lines.append(f"handed to every trial in memory: {', '.join(plan.handoff)}")
    if plan.private:
        lines.append("written per trial to .kmlc/sweeps/<run>/trial-N/, the best copied into "
                     f"place: {', '.join(plan.private)}")
    if plan.not_run:
        lines.append(f"not run by the sweep (fed by several candidates): "
                     f"{', '.join(plan.not_run)}")
    for p in sweep.parameters:
        what = (f"values {list(p.values)}" if p.values is not None else
                f"{p.type} {p.low}..{p.high}" + (" (log)" if p.log else ""))
        lines.append(f"  swept: {p.path}: {what}"
                     + (f" (candidate '{p.candidate}')" if p.candidate else ""))
    return "\n".join(lines)
