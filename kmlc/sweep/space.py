"""Sweep stage, search: the trials a ``sweep:`` asks for, one ``Trial`` at a time.

A trial is one candidate (or none) and a value for each swept parameter that applies
to it (a parameter under ``<candidate>.`` applies to that candidate's trials only).
``grid`` enumerates every combination, ``random`` draws ``trials`` of them with a seed,
``optuna`` asks Optuna's TPE sampler (its ask-and-tell API: an optional dependency)
and tells it each result, so later trials learn from earlier ones.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kmlc.config.spec import SweepParam, SweepSpec
from kmlc.errors import RunError

__all__ = ["Search", "Trial", "params_command", "search_for"]


@dataclass(frozen=True)
class Trial:
    number: int  # 1-based, in the order trials were asked for
    candidate: str | None
    values: Mapping[str, Any]  # dotted parameter path -> value
    handle: Any = field(default=None, compare=False)  # the search's own (an Optuna trial)

    @property
    def label(self) -> str:
        items = [f"{path}={_text(value)}" for path, value in self.values.items()]
        return " ".join(([self.candidate] if self.candidate else []) + items)


def _text(value: Any) -> str:
    """A value as ``--params`` reads it back (a YAML scalar)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def params_command(pipeline: str, trial: Trial, file: str | None = None) -> str:
    """The ``kmlc run`` command that reproduces ``trial``'s run (a candidate's trial: that
    candidate alone, its model bound to its inference nodes)."""
    argv = ["kmlc", "run", pipeline]
    if file and file != "mlproject.yml":
        argv += ["-f", file]
    if trial.candidate:
        argv += ["--candidate", trial.candidate]
    for path, value in trial.values.items():
        argv += ["--params", f"{path}={_text(value)}"]
    return shlex.join(argv)


def _applies(param: SweepParam, candidate: str | None) -> bool:
    return param.candidate is None or param.candidate == candidate


def _draw(param: SweepParam, rng: random.Random) -> Any:
    if param.values is not None:
        return rng.choice(param.values)
    assert param.low is not None and param.high is not None
    if param.type == "int":
        low, high = math.ceil(param.low), math.floor(param.high)
        if param.log:
            return round(math.exp(rng.uniform(math.log(low), math.log(high))))
        return rng.randint(low, high)
    if param.log:
        return math.exp(rng.uniform(math.log(param.low), math.log(param.high)))
    return rng.uniform(param.low, param.high)


class Search:
    """The trials of a sweep: ``ask`` the next one (None when done), ``tell`` its result."""

    def __init__(self, sweep: SweepSpec):
        self.sweep = sweep
        self.asked = 0

    @property
    def total(self) -> int | None:
        """How many trials the search will ask for (None: not known in advance)."""
        return self.sweep.trials

    def ask(self) -> Trial | None:
        raise NotImplementedError

    def tell(self, trial: Trial, value: float | None) -> None:
        """The trial's metric (None: the trial failed or logged no metric)."""


class GridSearch(Search):
    def __init__(self, sweep: SweepSpec):
        super().__init__(sweep)
        self._all = list(self._combinations())
        if sweep.trials is not None:
            self._all = self._all[:sweep.trials]
        self._left: Iterator[tuple[str | None, dict[str, Any]]] = iter(self._all)

    @property
    def total(self) -> int:
        return len(self._all)

    def _combinations(self) -> Iterator[tuple[str | None, dict[str, Any]]]:
        for candidate in self.sweep.candidates or (None,):
            params = [p for p in self.sweep.parameters if _applies(p, candidate)]
            for combo in itertools.product(*(p.values or () for p in params)):
                yield candidate, {p.path: v for p, v in zip(params, combo, strict=True)}

    def ask(self) -> Trial | None:
        nxt = next(self._left, None)
        if nxt is None:
            return None
        self.asked += 1
        return Trial(self.asked, nxt[0], nxt[1])


class RandomSearch(Search):
    def __init__(self, sweep: SweepSpec):
        super().__init__(sweep)
        self._rng = random.Random(sweep.seed)

    def ask(self) -> Trial | None:
        if self.sweep.trials is not None and self.asked >= self.sweep.trials:
            return None
        candidate = self._rng.choice(self.sweep.candidates) if self.sweep.candidates else None
        values = {p.path: _draw(p, self._rng) for p in self.sweep.parameters
                  if _applies(p, candidate)}
        self.asked += 1
        return Trial(self.asked, candidate, values)


class OptunaSearch(Search):
    """Optuna's ask-and-tell: each answer informs the next question."""

    def __init__(self, sweep: SweepSpec):
        super().__init__(sweep)
        try:
            import optuna
        except ImportError as exc:
            raise RunError("method optuna needs Optuna, which is not installed",
                           hint="pip install 'kmlc[optuna]' (or pip install optuna)",
                           code="KMLC631") from exc
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self.study = optuna.create_study(
            direction=sweep.direction, sampler=optuna.samplers.TPESampler(seed=sweep.seed))

    def ask(self) -> Trial | None:
        if self.sweep.trials is not None and self.asked >= self.sweep.trials:
            return None
        handle = self.study.ask()
        candidate = (handle.suggest_categorical("candidate", list(self.sweep.candidates))
                     if self.sweep.candidates else None)
        values: dict[str, Any] = {}
        for p in self.sweep.parameters:
            if not _applies(p, candidate):
                continue
            if p.values is not None:
                # Optuna's categorical choices must be plain scalars: others go by index
                plain = all(v is None or isinstance(v, (bool, int, float, str))
                            for v in p.values)
                if plain:
                    values[p.path] = handle.suggest_categorical(p.path, list(p.values))
                else:
                    index = handle.suggest_categorical(p.path, list(range(len(p.values))))
                    values[p.path] = p.values[index]
            elif p.type == "int":
                assert p.low is not None and p.high is not None
                values[p.path] = handle.suggest_int(p.path, int(p.low), int(p.high), log=p.log)
            else:
                assert p.low is not None and p.high is not None
                values[p.path] = handle.suggest_float(p.path, p.low, p.high, log=p.log)
        self.asked += 1
        return Trial(self.asked, candidate, values, handle)

    def tell(self, trial: Trial, value: float | None) -> None:
        states = self._optuna.trial.TrialState
        if value is None or math.isnan(value):
            self.study.tell(trial.handle, state=states.FAIL)
        else:
            self.study.tell(trial.handle, value)


def search_for(sweep: SweepSpec) -> Search:
    """The search of ``sweep.method``."""
    kinds: dict[str, type[Search]] = {"grid": GridSearch, "random": RandomSearch,
                                      "optuna": OptunaSearch}
    return kinds[sweep.method](sweep)
