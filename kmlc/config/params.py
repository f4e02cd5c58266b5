"""The parameters as nodes read them: ``parameters`` and dotted ``params:`` paths.

Kedro hands a node the whole ``parameters`` mapping, or one value by its dotted path
(``params:model.c``). This module is the one walk over those paths, used by the checks,
the overlays, the compiler (catalog entries, the inference plan), the manifest and the
tracking of a run's parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["ALL_PARAMS", "PARAMS_PREFIX", "flatten_params", "has_param", "is_param_input",
           "param_inputs", "param_items", "param_paths", "param_value"]

ALL_PARAMS = "parameters"  # the input name of the whole mapping
PARAMS_PREFIX = "params:"  # the input name of one value: params:<dotted path>
_MISSING = object()


def is_param_input(name: str) -> bool:
    """Whether a node input is a parameter (``parameters`` or ``params:...``), not a dataset."""
    return name == ALL_PARAMS or name.startswith(PARAMS_PREFIX)


def _lookup(parameters: Any, dotted: str) -> Any:
    value = parameters
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def param_value(parameters: Mapping[str, Any], dotted: str) -> Any:
    """The parameter at ``dotted`` (``"model.c"``), as ``params:model.c`` reads it.

    Raises ``KeyError`` for a path the parameters do not define.
    """
    value = _lookup(parameters, dotted)
    if value is _MISSING:
        raise KeyError(dotted)
    return value


def has_param(parameters: Any, dotted: str) -> bool:
    """Whether the parameters define the dotted path."""
    return _lookup(parameters, dotted) is not _MISSING


def param_items(parameters: Any, sep: str = ".") -> Iterator[tuple[str, Any]]:
    """Every path of a parameters mapping with its value, parents before their children."""

    def walk(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
        yield prefix, value
        if isinstance(value, Mapping):
            for key, sub in value.items():
                yield from walk(f"{prefix}{sep}{key}", sub)

    if isinstance(parameters, Mapping):
        for key, value in parameters.items():
            yield from walk(str(key), value)


def param_paths(parameters: Any) -> list[str]:
    """Every dotted path of a parameters mapping, parents before their children."""
    return [path for path, _ in param_items(parameters)]


def flatten_params(params: Mapping[str, Any], sep: str = ".") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; empty mappings are kept as values."""
    return {path: value for path, value in param_items(params, sep)
            if not (isinstance(value, Mapping) and value)}


def param_inputs(names: Iterable[str], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The values of the parameter inputs among ``names`` (``parameters``: all of them)."""
    out: dict[str, Any] = {}
    for name in names:
        if name == ALL_PARAMS:
            out[name] = dict(parameters)
        elif name.startswith(PARAMS_PREFIX):
            out[name] = param_value(parameters, name[len(PARAMS_PREFIX):])
    return out
