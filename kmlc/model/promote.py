"""Export stage, registry side: move an alias only when the run passes the file's gate.

``model.promote`` names an alias, a sandboxed expression over the run's metrics and
parameters (``when``) and a metric that must beat the version the alias points at now
(``better_than_current``). ``promote_version`` applies it to a registered version,
moves the alias when it passes, and tags the run and the version with the decision and
the numbers behind it. A gate that does not pass is a decision, not an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kmlc.config.spec import ProjectSpec, PromoteSpec
from kmlc.config.target import tracking_target
from kmlc.errors import ExportError
from kmlc.model.build import quiet_mlflow
from kmlc.model.registry import register_model
from kmlc.model.state import check_run_model
from kmlc.tracking.client import open_client
from kmlc.tracking.retry import with_retry

__all__ = ["Promotion", "decide", "gate_of", "promote_run", "promote_version", "unreadable"]

TAG = "kmlc.promotion"  # promoted | rejected; .reason, .alias, .numbers beside it


@dataclass(frozen=True)
class Promotion:
    """The decision on one version: ``numbers`` are the metrics the gate read."""

    promoted: bool
    alias: str
    name: str
    version: str
    reason: str
    numbers: Mapping[str, Any] = field(default_factory=dict)
    previous_version: str | None = None

    @property
    def unchanged(self) -> bool:
        """The alias pointed at this version already: nothing moved."""
        return self.previous_version is not None and self.previous_version == self.version

    def line(self) -> str:
        if self.unchanged:
            return (f"alias '{self.alias}' already points at {self.name} version "
                    f"{self.version}: nothing moved")
        if not self.version:  # the gate could not be read: nothing was registered
            return f"alias '{self.alias}' not moved, no version registered: {self.reason}"
        verb = "moved to" if self.promoted else "not moved to"
        return (f"alias '{self.alias}' {verb} {self.name} version {self.version}: "
                f"{self.reason}")


class _Reads(dict[str, Any]):
    """A mapping that remembers which keys the gate read, and which it lacked."""

    def __init__(self, values: Mapping[str, Any], seen: dict[str, Any], prefix: str):
        super().__init__(values)
        self._seen = seen
        self._prefix = prefix
        self.missing: list[str] = []

    def __getitem__(self, key: str) -> Any:
        try:
            value = super().__getitem__(key)
        except KeyError:
            self.missing.append(str(key))
            raise
        self._seen[f"{self._prefix}{key}"] = value
        return value


def _lacking(reads: _Reads, what: str) -> str | None:
    """``the run logged no metric 'r2' (its metrics: mae, rmse)``, when the gate lacked one."""
    if not reads.missing:
        return None
    names = ", ".join(f"'{name}'" for name in dict.fromkeys(reads.missing))
    have = ", ".join(sorted(reads)) or "none"
    plural = "s" if len(set(reads.missing)) > 1 else ""
    return f"the run has no {what}{plural} {names} (its {what}s: {have})"


def gate_of(promote: PromoteSpec) -> Any:
    """``promote.when`` compiled in Jinja's immutable sandbox (``None`` without ``when``).

    Raises ``jinja2.TemplateSyntaxError`` for an expression that does not parse (validate
    refuses one: ``KMLC512``).
    """
    if promote.when is None:
        return None
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    return env.compile_expression(promote.when, undefined_to_none=False)


def unreadable(promote: PromoteSpec, metrics: Mapping[str, float],
               params: Mapping[str, Any]) -> str | None:
    """Why the gate cannot be evaluated on a run's ``metrics`` and ``params`` (a metric or
    parameter it reads, or the metric to compare, that the run lacks), else None."""
    import jinja2

    gate = gate_of(promote)
    if gate is not None:
        reads = (_Reads(metrics, {}, "metrics."), _Reads(params, {}, "params."))
        try:
            value = gate(metrics=reads[0], params=reads[1])
            if isinstance(value, jinja2.Undefined):
                str(value)
        except jinja2.UndefinedError:
            lacking = _lacking(reads[0], "metric") or _lacking(reads[1], "parameter")
            if lacking:
                return f"the gate `{promote.when}` cannot be evaluated: {lacking}"
        except (TypeError, ValueError, ArithmeticError):
            pass  # evaluated, and failed: a rejection, said by decide
    if promote.metric is not None and promote.metric not in metrics:
        have = ", ".join(sorted(metrics)) or "none"
        return (f"the run logged no metric '{promote.metric}' to compare with the current "
                f"version (its metrics: {have})")
    return None


def decide(promote: PromoteSpec, metrics: Mapping[str, float], params: Mapping[str, Any],
           current: Mapping[str, float] | None) -> tuple[bool, str, dict[str, Any]]:
    """Apply the gate: ``(passed, reason, numbers read)``; ``current`` is the alias's run."""
    import jinja2

    numbers: dict[str, Any] = {}
    gate = gate_of(promote)
    if gate is not None:
        reads = (_Reads(metrics, numbers, "metrics."), _Reads(params, numbers, "params."))
        try:
            value = gate(metrics=reads[0], params=reads[1])
            if isinstance(value, jinja2.Undefined):
                str(value)
        except jinja2.UndefinedError as exc:
            lacking = (_lacking(reads[0], "metric") or _lacking(reads[1], "parameter")
                       or exc.message)
            return False, f"the gate `{promote.when}` cannot be evaluated: {lacking}", numbers
        except (TypeError, ValueError, ArithmeticError) as exc:
            return False, f"the gate `{promote.when}` failed: {exc}", numbers
        if not value:
            return False, f"`{promote.when}` does not hold", numbers
    if promote.metric is None:
        return True, (f"`{promote.when}` holds" if promote.when else "no gate"), numbers
    metric = promote.metric
    if metric not in metrics:
        have = ", ".join(sorted(metrics)) or "none"
        return False, (f"the run logged no metric '{metric}' to compare with the current "
                       f"version (its metrics: {have})"), numbers
    numbers[f"metrics.{metric}"] = metrics[metric]
    held = f"`{promote.when}` holds and " if promote.when else ""
    if current is None:
        return True, f"{held}the alias points at no version yet", numbers
    if metric not in current:
        return True, f"{held}the current version logged no '{metric}'", numbers
    numbers[f"current.{metric}"] = current[metric]
    new, old = metrics[metric], current[metric]
    better = new > old if promote.mode == "max" else new < old
    relation = f"{metric} {new:g} vs {old:g} of the current version"
    if not better:
        but = f"`{promote.when}` holds, but " if promote.when else ""
        return False, f"{but}{relation} is not better ({promote.mode})", numbers
    return True, f"{held}{relation} is better ({promote.mode})", numbers


def _current(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException  # lazy: MLflow

    try:
        return with_retry(client.get_model_version_by_alias, name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def candidate_metrics(metrics: Mapping[str, float], candidates: Sequence[str]
                      ) -> dict[str, float]:
    """``metrics`` with each key one candidate logged under its namespace (``forest.r2``)
    readable under its own name too (``r2``): the gate of a model bound to one candidate
    (``sweep.candidates``) reads its metric as the sweep does. A name already logged, or
    logged by several candidates (a run of all of them), is left as it is."""
    out = dict(metrics)
    found: dict[str, list[float]] = {}
    for key, value in metrics.items():
        for candidate in candidates:
            if key.startswith(candidate + "."):
                found.setdefault(key[len(candidate) + 1:], []).append(value)
    for key, values in found.items():
        if key not in out and len(values) == 1:
            out[key] = values[0]
    return out


def promote_version(client: Any, promote: PromoteSpec, name: str, version: str,
                    run_id: str, candidates: Sequence[str] = ()) -> Promotion:
    """Decide on ``name`` version ``version`` of ``run_id``; move the alias if it passes.
    ``candidates``: the sweep's, whose namespaced metrics the gate reads by name."""
    run = with_retry(client.get_run, run_id)
    current = _current(client, name, promote.alias)
    current_metrics = None
    previous = None
    if current is not None:
        previous = str(current.version)
        if previous == str(version):
            return Promotion(True, promote.alias, name, str(version),
                             "the alias already points at this version", {}, previous)
        if current.run_id:
            current_metrics = candidate_metrics(
                with_retry(client.get_run, current.run_id).data.metrics, candidates)
    passed, reason, numbers = decide(promote, candidate_metrics(run.data.metrics, candidates),
                                     run.data.params, current_metrics)
    if passed:
        with_retry(client.set_registered_model_alias, name, promote.alias, str(version))
    decision = "promoted" if passed else "rejected"
    tags = {TAG: decision, f"{TAG}.alias": promote.alias, f"{TAG}.reason": reason[:5000],
            f"{TAG}.numbers": json.dumps(numbers, sort_keys=True, default=str)[:5000]}
    if previous is not None:
        tags[f"{TAG}.previous_version"] = previous
    for key, value in tags.items():
        with_retry(client.set_tag, run_id, key, value)
        with_retry(client.set_model_version_tag, name, str(version), key, value)
    return Promotion(passed, promote.alias, name, str(version), reason, numbers, previous)


def promote_run(spec: ProjectSpec, run_id: str) -> Promotion:
    """``kmlc promote --run-id``: the file's gate on an earlier run's model version.

    The version registered from the run is reused; a run whose model was never
    registered gets a version first, if it is a FINISHED run with a READY model (a run
    without one is refused: a version with no model behind it could take the alias).
    """
    from mlflow.exceptions import MlflowException  # lazy: MLflow

    model = spec.model
    if model is None or model.promote is None or not model.registered_name:
        raise ExportError("the project has no model.promote (with model.registered_name)",
                          hint="add model.registered_name and model.promote to the file")
    quiet_mlflow()
    target = tracking_target(spec)  # the one the project was loaded with
    client = open_client(target)
    try:
        with_retry(client.get_run, run_id)
    except MlflowException as exc:
        raise ExportError(f"run '{run_id}' was not found in {target.uri}") from exc
    name = model.registered_name
    candidates = spec.sweep.candidates if spec.sweep is not None else ()
    versions: list[Any]
    try:
        versions = list(with_retry(client.search_model_versions,
                                   f"name='{name}' and run_id='{run_id}'"))
    except MlflowException:
        versions = []
    if versions:
        version = str(max(int(v.version) for v in versions))
    else:
        run = with_retry(client.get_run, run_id)
        why = unreadable(model.promote, candidate_metrics(run.data.metrics, candidates),
                         run.data.params)
        if why is not None:  # a version that could never be promoted: none is registered
            return Promotion(False, model.promote.alias, name, "", why)
        # FINISHED, and READY if any; the run's model searched for once
        if check_run_model(client, run_id, model.artifact_path) is None:
            raise ExportError(f"run '{run_id}' has no model '{model.artifact_path}' to register",
                              hint="promote a training run that logged the model")
        try:
            version = register_model(client, f"runs:/{run_id}/{model.artifact_path}", name)
        except MlflowException as exc:
            raise ExportError(f"run '{run_id}' has no model at '{model.artifact_path}' to "
                              f"register: {exc.message}") from exc
    return promote_version(client, model.promote, name, version, run_id, candidates)
