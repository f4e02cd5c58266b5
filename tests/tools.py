"""Tools a test needs from the machine: skipped where missing, failed where CI must have them.

``.ci/run`` installs (or finds) every tool the suite uses, so under CI (``CI`` set) a
missing tool is a failure of the test, not a skip that would hide that it never ran.
"""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["in_ci", "missing", "which"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def missing(reason: str) -> None:
    """Skip the test saying why, or fail it under CI, where the tool must be there."""
    if in_ci():
        pytest.fail(f"CI must run this test, but: {reason}", pytrace=False)
    pytest.skip(reason)


def which(*names: str, reason: str) -> str:
    """The first of ``names`` on PATH, else :func:`missing` with ``reason``."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    missing(reason)
    raise AssertionError("unreachable")  # missing() always raises
