"""Stage 2, overlay: ``--env NAME`` environments and ``--params k=v`` overrides.

The environment's partial document is deep-merged over the base document; the
positions of the values it brings point at the environment section, so errors in an
override still name the line where the override was written.
"""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Sequence
from typing import Any

from kmlc.config.params import param_items
from kmlc.config.source import Document, KeyPath, load_value
from kmlc.errors import ConfigError, ConfigErrors, did_you_mean

__all__ = ["apply_overlays", "parse_param_override"]


def apply_overlays(doc: Document, env: str | None, params: Sequence[str] = ()) -> Document:
    """Return a new document with environment ``env`` and ``params`` overrides applied."""
    out = Document(
        file=doc.file, text=doc.text, data=copy.deepcopy(doc.data),
        key_pos=dict(doc.key_pos), value_pos=dict(doc.value_pos),
        overrides=dict(doc.overrides),
    )
    if env is not None:
        _merge_environment(out, env)
    errors: list[ConfigError] = []
    for item in params:
        keys, value = parse_param_override(item)
        try:
            _set_parameter(out, keys, value, item, new_type=_new_type(item))
        except ConfigError as exc:
            errors.append(exc)
    if len(errors) > 1:
        raise ConfigErrors(errors)
    if errors:
        raise errors[0]
    return out


def _merge_environment(doc: Document, env: str) -> None:
    environments = doc.data.get("environments")
    if not isinstance(environments, dict) or env not in environments:
        names = sorted(environments) if isinstance(environments, dict) else []
        hint = did_you_mean(env, names, f"known environments: {', '.join(names)}" if names
                            else "add an `environments:` section to the file")
        raise doc.error(f"environment '{env}' is not defined", ("environments",), key=True,
                        code="KMLC110", hint=hint)
    overlay = environments[env]
    if overlay is None:
        return
    if not isinstance(overlay, dict):
        raise doc.error("an environment must be a mapping of keys to override",
                        ("environments", env), code="KMLC110")
    prefix: KeyPath = ("environments", env)
    _deep_merge(doc, doc.data, overlay, (), prefix)


def _deep_merge(doc: Document, base: dict[str, Any], overlay: dict[str, Any],
                path: KeyPath, prefix: KeyPath) -> None:
    for key, value in overlay.items():
        sub = (*path, key)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _move_position(doc, (*prefix, *sub), sub)
            _deep_merge(doc, base[key], value, sub, prefix)
        else:
            base[key] = copy.deepcopy(value)
            _move_subtree(doc, (*prefix, *sub), sub)


def _move_position(doc: Document, source: KeyPath, target: KeyPath) -> None:
    if source in doc.key_pos:
        doc.key_pos[target] = doc.key_pos[source]
    if source in doc.value_pos:
        doc.value_pos[target] = doc.value_pos[source]


def _move_subtree(doc: Document, source: KeyPath, target: KeyPath) -> None:
    n = len(source)
    for index in (doc.key_pos, doc.value_pos):
        for stale in [p for p in index if p[: len(target)] == target]:
            del index[stale]
        for path, pos in list(index.items()):
            if path[:n] == source:
                index[(*target, *path[n:])] = pos


def _new_type(item: str) -> bool:
    """``a.b:=VALUE``: the value replaces the parameter whatever the type of either."""
    return item.partition("=")[0].strip().endswith(":")


def parse_param_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b=1`` (or ``a.b:=1``) into ``(["a", "b"], 1)``, the value parsed as YAML."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    key = key[:-1] if key.endswith(":") else key
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"--params '{item}' is not of the form key.path=value", file="--params",
            code="KMLC111", hint="for example --params model.alpha=0.5",
        )
    try:
        value = load_value(raw) if raw.strip() else ""
    except ValueError:
        value = raw
    return key.split("."), value


def type_name(value: Any) -> str:
    """The kind of a parameter value, as an override is checked against it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null" if value is None else type(value).__name__


def _type_problem(keys: list[str], old: Any, value: Any, item: str) -> ConfigError | None:
    """An override whose value is not of the kind of the value it replaces (numbers are
    one kind; a null in the file takes any value)."""
    was, given = type_name(old), type_name(value)
    if old is None or was == given:
        return None
    dotted = ".".join(keys)
    shown = json.dumps(value, default=str)
    raw = item.partition("=")[2]
    hints = []
    if was == "text" and given in ("a number", "a boolean", "null"):
        quoted = shlex.quote(f'{dotted}="{raw}"')
        hints.append(f"to give it as text, quote it: --params {quoted}")
    hints.append(f"to replace it with {given}: --params {shlex.quote(f'{dotted}:={raw}')}")
    return ConfigError(
        f"parameter '{dotted}' is {was} in the file ({json.dumps(old, default=str)}), "
        f"but --params gives {given} ({shown})",
        file=f"--params {shlex.quote(item)}", key_path=("parameters", *keys),
        code="KMLC116", hint="; ".join(hints))


def _set_parameter(doc: Document, keys: list[str], value: Any, item: str,
                   new_type: bool = False) -> None:
    """Override one parameter path the file (or the environment) defines.

    A path that matches no parameter is an error (a misspelt override would otherwise
    be silently ignored), reported on the command line with the closest path; so is a
    value of another kind than the file's (number, text, boolean, list, mapping), unless
    written ``key:=value``.
    """
    params = doc.data.get("parameters")
    option = f"--params {shlex.quote(item)}"
    if not isinstance(params, dict):
        if params is None:
            raise ConfigError(
                f"parameter '{'.'.join(keys)}' is not defined: the file has no `parameters`",
                file=option, key_path=("parameters", *keys), code="KMLC111",
                hint="--params overrides a parameter of the file; add it under `parameters:`")
        raise doc.error("parameters must be a mapping to take --params overrides",
                        ("parameters",), code="KMLC111")
    target = params
    for depth, key in enumerate(keys):
        if not isinstance(target, dict):
            where = ".".join(keys[:depth])
            raise doc.error(
                f"--params '{item}': parameter '{where}' is not a mapping",
                ("parameters", *keys[:depth]), code="KMLC111",
            )
        if key not in target:
            dotted = ".".join(keys)
            items = list(param_items(params))
            paths = [p for p, _ in items]
            leaves = [p for p, v in items if not isinstance(v, dict)]
            hint = did_you_mean(dotted, paths, (
                f"parameters: {', '.join(leaves[:12])}{', ...' if len(leaves) > 12 else ''}"
                if leaves else "add it under `parameters:` in the file"))
            raise ConfigError(f"parameter '{dotted}' is not defined in `parameters`",
                              file=option, key_path=("parameters", *keys), code="KMLC111",
                              hint=hint)
        if depth < len(keys) - 1:
            target = target[key]
    problem = None if new_type else _type_problem(keys, target[keys[-1]], value, item)
    if problem is not None:
        raise problem
    target[keys[-1]] = value
    path: KeyPath = ("parameters", *keys)
    for index in (doc.key_pos, doc.value_pos):
        for stale in [p for p in index if p[: len(path)] == path]:
            del index[stale]
    doc.overrides[path] = option
