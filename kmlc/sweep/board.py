"""Sweep stage, what the user sees as the trials end: the leaderboard.

``Board`` prints one plain line per finished trial (the log of a CI job, a pipe, a
file). ``LiveBoard``, on a terminal, keeps one table (trial, parameters, metric,
duration, state; the best trial starred) redrawn in place as each trial ends, with
the lines printed meanwhile (the nodes' logs, notes) above it, through Rich's ``Live``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kmlc.config.spec import SweepSpec
from kmlc.sweep.trial_job import TrialResult

__all__ = ["Board", "LiveBoard", "better"]


def better(sweep: SweepSpec, a: float, b: float) -> bool:
    return a > b if sweep.direction == "maximize" else a < b


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


class Board:
    """The leaderboard as plain lines, one per finished trial, through ``echo``."""

    def __init__(self, sweep: SweepSpec, total: int | None, echo: Callable[[str], None]):
        self.sweep = sweep
        self.total = total
        self.echo = echo
        self.best: TrialResult | None = None
        self.results: list[TrialResult] = []

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def note(self, line: str) -> None:
        """A line about the sweep (not a trial): printed as it is."""
        self.echo(line)

    def add(self, result: TrialResult) -> None:
        value = result.value
        if value is not None and (self.best is None or self.best.value is None
                                  or better(self.sweep, value, self.best.value)):
            self.best = result
        self.results.append(result)
        self.show(result)

    def show(self, result: TrialResult) -> None:
        of = f"/{self.total}" if self.total else ""
        value = result.value
        metric = f"{self.sweep.metric}={_number(value)}" if value is not None else (
            f"{self.sweep.metric}=-")
        star = " *" if self.best is result else ""
        line = (f"trial {result.trial.number}{of}  {result.trial.label or '(defaults)'}  "
                f"{metric}  {result.seconds:.1f}s  {result.status}{star}")
        if result.error:
            line += f"  ({result.error.splitlines()[0][:200]})"
        self.echo(line)


_STYLE = {"FINISHED": "green", "FAILED": "red", "KILLED": "yellow"}


class LiveBoard(Board):
    """The leaderboard on a terminal: one table, redrawn in place as each trial ends."""

    def __init__(self, sweep: SweepSpec, total: int | None, console: Any = None):
        from rich import get_console
        from rich.live import Live

        # Rich's own console, the one Kedro's log handler prints with: the log lines
        # printed while the table is shown go above it (another console's would not)
        self.console = console or get_console()
        super().__init__(sweep, total, self.console.print)
        self.live = Live(self.table(), console=self.console, auto_refresh=False,
                         vertical_overflow="visible")

    def __enter__(self) -> LiveBoard:
        self.live.start(refresh=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self.table(final=True), refresh=True)
        self.live.stop()

    def note(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)  # above the table

    def show(self, result: TrialResult) -> None:
        self.live.update(self.table(), refresh=True)

    def table(self, final: bool = False) -> Any:
        from rich.table import Table
        from rich.text import Text

        done = len(self.results)
        of = f"/{self.total}" if self.total else ""
        title = f"sweep: {done}{of} trials " + ("ended" if final else "done")
        if self.best is not None and self.best.value is not None:
            title += (f", best: trial {self.best.trial.number} "
                      f"{self.sweep.metric}={_number(self.best.value)}")
        table = Table(title=title, title_justify="left", expand=False)
        table.add_column("trial", justify="right")
        table.add_column("parameters", overflow="fold")
        table.add_column(self.sweep.metric, justify="right")
        table.add_column("duration", justify="right")
        table.add_column("state")
        for result in sorted(self.results, key=lambda r: r.trial.number):
            state = Text(result.status, style=_STYLE.get(result.status, ""))
            if result.error:
                state.append(f" {result.error.splitlines()[0][:80]}", style="dim")
            table.add_row(f"{result.trial.number}{' *' if result is self.best else ''}",
                          Text(result.trial.label or "(defaults)"),
                          _number(result.value) if result.value is not None else "-",
                          f"{result.seconds:.1f}s", state)
        return table
