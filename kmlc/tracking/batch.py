"""Tracking stage: parameters and metrics as MLflow stores them, logged in batches.

``param_pairs`` turns a run's parameters into what MLflow will keep (flattened or not,
secrets masked, long values refused, moved to a tag or cut); the loggers send them in
MLflow's batch sizes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kmlc.config.params import flatten_params
from kmlc.config.secrets import Secrets, mask_secrets
from kmlc.errors import TrackingError
from kmlc.tracking.retry import with_retry

__all__ = ["BATCH_METRICS", "BATCH_PARAMS", "log_metric_tuples", "log_param_pairs",
           "param_pairs"]

MAX_PARAM_VALUE = 6000  # MLflow's limit on a parameter value
MAX_TAG_VALUE = 8000
BATCH_PARAMS = 100  # MLflow's limit of parameters per log_batch
BATCH_METRICS = 1000  # MLflow's limit of metrics per log_batch


def param_pairs(params: Mapping[str, Any], *, flatten: bool = False, sep: str = ".",
                long_values: str = "fail", secrets: Iterable[str] = ()
                ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``params`` as MLflow will store them: ``(params, tags)`` of ``(key, text)`` pairs.

    A value longer than MLflow's limit fails (``fail``), becomes a run tag
    ``param.KEY`` (``tag``), or is cut at the limit (``truncate``). Secret values are
    masked. Needs no MLflow import.
    """
    flat = flatten_params(params, sep) if flatten else dict(params)
    pairs: list[tuple[str, str]] = []
    tags: list[tuple[str, str]] = []
    for key, value in flat.items():
        # a parameter computed from a secret is masked whole, however short its text
        secret = isinstance(secrets, Secrets) and secrets.param_is_secret(
            str(key), sep if flatten else ".")
        text = (str(secrets.mask_value(value)) if secret and isinstance(secrets, Secrets)
                else mask_secrets(str(value), secrets))
        if len(text) > MAX_PARAM_VALUE:
            if long_values == "fail":
                raise TrackingError(
                    f"parameter '{key}' is {len(text)} characters long, over MLflow's "
                    f"limit of {MAX_PARAM_VALUE}",
                    hint="set tracking.params.long_values to 'tag' or 'truncate', or "
                         "tracking.params.flatten to true")
            if long_values == "tag":
                tags.append((f"param.{key}", text[:MAX_TAG_VALUE]))
                continue
            text = text[:MAX_PARAM_VALUE]
        pairs.append((key, text))
    return pairs, tags


def log_param_pairs(client: Any, run_id: str, params: Sequence[tuple[str, str]],
                    tags: Sequence[tuple[str, str]] = ()) -> None:
    """Log prepared pairs in batches of 100 (one ``log_batch`` each)."""
    from mlflow.entities import Param, RunTag

    batch = [Param(key, value) for key, value in params]
    run_tags = [RunTag(key, value) for key, value in tags]
    for start in range(0, len(batch), BATCH_PARAMS):
        with_retry(client.log_batch, run_id, params=batch[start:start + BATCH_PARAMS],
                   tags=run_tags if start == 0 else [])
    if run_tags and not batch:
        with_retry(client.log_batch, run_id, tags=run_tags)


def log_metric_tuples(client: Any, run_id: str,
                      metrics: Sequence[tuple[str, float, int, int]]) -> None:
    """Log ``(key, value, timestamp_ms, step)`` tuples, 1,000 per ``log_batch``."""
    from mlflow.entities import Metric

    entities = [Metric(key, value, timestamp, step) for key, value, timestamp, step in metrics]
    for start in range(0, len(entities), BATCH_METRICS):
        with_retry(client.log_batch, run_id, metrics=entities[start:start + BATCH_METRICS])
