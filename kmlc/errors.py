"""The exception tree of kmlc.

Every error found before a run carries the file, line, column and key path of the
YAML that caused it. Errors hold data; ``__str__`` renders them as
``FILE:LINE:COL: error: KEY.PATH: message (hint)``.

Codes are stable and grouped by stage:

- ``KMLC1xx`` reading and rendering the file (YAML, encoding, templates, overlays)
- ``KMLC2xx`` the JSON Schema
- ``KMLC3xx`` names and the graph
- ``KMLC4xx`` node functions
- ``KMLC5xx`` the model binding
- ``KMLC6xx`` running (tracking, nodes)
- ``KMLC7xx`` exporting and serving models
- ``KMLC8xx`` importing a Kedro project (`kmlc import-kedro`)
- ``KMLC9xx`` starting a project (`kmlc init`)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BindingError",
    "ConfigError",
    "ConfigErrors",
    "ExportError",
    "KmlcError",
    "Location",
    "RunError",
    "RunInterrupted",
    "TrackingError",
    "did_you_mean",
    "format_key_path",
]


def did_you_mean(name: str, options: Iterable[str], otherwise: str | None = None) -> str | None:
    """The hint for a misspelt ``name``: the closest of ``options``; else the (up to three)
    options that ``name`` begins, word by word (``fit`` for ``fit_scaler`` and
    ``fit_classifier``, ``ridge`` for ``ridge.fit``); else ``otherwise``."""
    import difflib
    import re

    names = [str(o) for o in options]
    close = difflib.get_close_matches(str(name), names, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    start = re.compile(rf"{re.escape(str(name))}[_.\-:]", re.IGNORECASE)
    begun = sorted(o for o in names if len(str(name)) >= 2 and start.match(o))
    if 0 < len(begun) <= 3:
        return "did you mean " + " or ".join(f"'{o}'" for o in begun) + "?"
    return otherwise


def format_key_path(path: Sequence[str | int]) -> str:
    """Render a key path as ``nodes[3].func``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


@dataclass(frozen=True)
class Location:
    """A position in a source file; line and column are 1-based (0 means unknown)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class KmlcError(Exception):
    """Root of every error kmlc raises on purpose.

    An error that ends a run carries the run: ``run_id`` (None: no run was opened), the
    ``status`` it was closed with and the ``notes`` it gathered (``add_run``, as dbt's
    errors carry their node).
    """

    code = "KMLC000"

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code
        self.run_id: str | None = None
        self.status: str | None = None
        self.notes: tuple[str, ...] = ()

    def add_run(self, run_id: str | None, status: str | None = None,
                notes: Sequence[str] = ()) -> None:
        """Record the run this error ended (its id, closing status and notes)."""
        self.run_id, self.status, self.notes = run_id or None, status, tuple(notes)

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(KmlcError):
    """A problem in ``mlproject.yml``, located at a key of the file.

    ``line`` 0 means no position: the file does not exist, or the value came from the
    command line (``file`` then names the option, e.g. ``--params a.b=1``).
    """

    code = "KMLC100"

    def __init__(
        self,
        message: str,
        *,
        file: str = "mlproject.yml",
        line: int = 0,
        column: int = 0,
        key_path: Sequence[str | int] = (),
        hint: str | None = None,
        code: str | None = None,
        severity: str = "error",
    ):
        super().__init__(message, hint=hint, code=code)
        self.file = file
        self.line = line
        self.column = column
        self.key_path: tuple[str | int, ...] = tuple(key_path)
        self.severity = severity

    @property
    def location(self) -> Location:
        return Location(self.file, self.line, self.column)

    @property
    def path(self) -> str:
        return format_key_path(self.key_path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "severity": self.severity,
        }

    def __str__(self) -> str:
        # no position for what has none: a file that does not exist, the command line
        position = f":{self.line}:{self.column}" if self.line > 0 else ""
        where = f"{self.file}{position}: {self.severity}: "
        key = f"{self.path}: " if self.key_path else ""
        text = f"{where}{key}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class BindingError(ConfigError):
    """The training and inference pipelines cannot be bound into one model."""

    code = "KMLC500"


class ConfigErrors(KmlcError):
    """Every problem found in one file, sorted by position; raised by the loader."""

    code = "KMLC199"

    def __init__(self, errors: Iterable[ConfigError], warnings: Iterable[ConfigError] = ()):
        self.errors = sorted(errors, key=lambda e: (e.file, e.line, e.column, e.code))
        self.warnings = sorted(warnings, key=lambda e: (e.file, e.line, e.column, e.code))
        count = len(self.errors)
        super().__init__(f"{count} error{'s' if count != 1 else ''} found")

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class RunError(KmlcError):
    """A run could not start or did not finish."""

    code = "KMLC600"


class RunInterrupted(KeyboardInterrupt):
    """A run interrupted by Ctrl-C or SIGTERM (``args[0]``: ``signal N`` when a signal
    did it), with the run it left: ``run_id`` (None: none was opened), the ``status`` it
    was closed with and its ``notes``."""

    def __init__(self, *args: object, run_id: str | None = None, status: str | None = None,
                 notes: Sequence[str] = ()):
        super().__init__(*args)
        self.run_id, self.status, self.notes = run_id or None, status, tuple(notes)


class TrackingError(RunError):
    """The MLflow tracking store is unreachable or refused a call."""

    code = "KMLC601"


class ExportError(KmlcError):
    """A model could not be built, checked, exported or registered."""

    code = "KMLC700"
