"""Shared by the language tests: editing the demo project's text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

# the ``write_project`` fixture of tests/conftest.py
WriteProject = Callable[..., Path]


def edit_text(base: str, *pairs: tuple[str, str]) -> str:
    """Replace the first occurrence of each ``old`` by ``new``; every ``old`` must occur."""
    for old, new in pairs:
        assert old in base, old
        base = base.replace(old, new, 1)
    return base
