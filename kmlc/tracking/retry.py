"""Tracking stage: calls to an MLflow store that retry while the store is busy.

sqlite answers "database is locked" while another connection writes; a tracking server
answers "too many connections" or resets one. ``with_retry`` retries those (and only
those) with a jittered backoff and reports a store still busy as one ``TrackingError``.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kmlc.errors import TrackingError

__all__ = ["ATTEMPTS_ENV", "with_retry"]

ATTEMPTS_ENV = "KMLC_STORE_ATTEMPTS"  # attempts of a store call that finds the store busy
DEFAULT_ATTEMPTS = 12
_RETRY_MARKERS = ("database is locked", "database table is locked", "deadlock detected",
                  "could not serialize access", "connection reset", "temporarily unavailable",
                  "too many connections", "unique constraint failed: experiments")

T = TypeVar("T")
_log = logging.getLogger(__name__)


class _BusyStoreFilter(logging.Filter):
    """Drops MLflow's traceback of a store error: kmlc reports it, on one line.

    MLflow's sqlite sessions log every ``OperationalError`` with its traceback before
    raising it: "database is locked" (``with_retry`` retries it, then reports it), "database
    or disk is full", a read-only file... The error is raised all the same, and kmlc's own
    line names it; the traceback above it is noise on the user's terminal.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            return not (message.startswith("SQLAlchemy database error")
                        or _retryable(Exception(message)))
        except Exception:  # a broken record is logging's to report
            return True


logging.getLogger("mlflow.store.db.utils").addFilter(_BusyStoreFilter())


def _retryable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _RETRY_MARKERS)


def _attempts() -> int:
    """``KMLC_STORE_ATTEMPTS`` (1: no retry), else 12."""
    try:
        return max(1, int(os.environ.get(ATTEMPTS_ENV, "")))
    except ValueError:
        return DEFAULT_ATTEMPTS


def with_retry(fn: Callable[..., T], *args: Any, attempts: int | None = None,
               **kwargs: Any) -> T:
    """Call ``fn``, retrying with jittered backoff where the store is busy or locked.

    sqlite answers "database is locked" when another connection holds a write lock
    longer than MLflow's busy timeout (MLflow 3 waits 20 s, then gives up); a short
    backoff is all that is needed. ``attempts`` (default: ``KMLC_STORE_ATTEMPTS``, else
    12) bounds the calls; each retry is logged at DEBUG on ``kmlc.tracking.retry``.
    A store still busy after the last attempt is a ``TrackingError``; any other error
    is raised as it is, at once.
    """
    attempts = attempts or _attempts()
    delay = 0.05
    started = time.perf_counter()
    for attempt in range(1, attempts + 1):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not _retryable(exc):
                raise
            reason = _first_line(exc)
            if attempt == attempts:
                raise TrackingError(
                    f"the tracking store is busy: {reason} (gave up after {attempts} "
                    f"attempt{'s' if attempts > 1 else ''} in "
                    f"{time.perf_counter() - started:.0f} s)",
                    hint="another process holds a lock on the store; try again when it "
                         f"is done (more attempts: {ATTEMPTS_ENV}), or use a tracking "
                         "server for many concurrent writers") from exc
            pause = delay * (1 + random.random())
            _log.debug("tracking store busy (%s) in %s; attempt %d of %d failed, "
                       "retrying in %.2f s", reason, getattr(fn, "__name__", fn), attempt,
                       attempts, pause)
            time.sleep(pause)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")  # pragma: no cover


def _first_line(exc: BaseException) -> str:
    """The driver's own words, without the SQL and parameters SQLAlchemy adds."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if _retryable(Exception(line)):
            return line
    return lines[0] if lines else type(exc).__name__

