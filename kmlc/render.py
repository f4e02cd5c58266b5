"""Stage 3, render: jinja2 expressions in string values, one value at a time.

Rendering happens after parsing, value by value, so every line number stays exact.
The environment is a ``SandboxedEnvironment`` with ``StrictUndefined``: an unknown
name or an attempt to reach ``__class__`` is a ``ConfigError`` on that value's line.
A value that is a single ``{{ expression }}`` takes the YAML type of its result.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from kmlc.errors import ConfigError, ConfigErrors
from kmlc.source import Document, KeyPath

__all__ = ["RenderResult", "render_document"]

_SINGLE = re.compile(r"^\s*\{\{(?:(?!\}\}).)*\}\}\s*$", re.S)
_MISSING = object()


class _EnvMissing(Exception):
    pass


class RenderResult:
    """A rendered document and the values that must never be shown or logged."""

    def __init__(self, doc: Document, secrets: set[str]):
        self.doc = doc
        self.secrets = secrets


def render_document(doc: Document) -> RenderResult:
    """Render every templated string value of ``doc`` (in place) and return it."""
    secrets: set[str] = set()
    renderer = _Renderer(doc, secrets)
    errors: list[ConfigError] = []
    params = doc.data.get("parameters")
    if isinstance(params, dict):
        renderer.env.globals["params"] = params
        doc.data["parameters"] = renderer.walk(params, ("parameters",), errors)
        renderer.env.globals["params"] = doc.data["parameters"]
    else:
        renderer.env.globals["params"] = {}
    for key in list(doc.data):
        if key not in ("parameters", "environments"):
            doc.data[key] = renderer.walk(doc.data[key], (key,), errors)
    if errors:
        raise ConfigErrors(errors)
    return RenderResult(doc, secrets)


class _Renderer:
    def __init__(self, doc: Document, secrets: set[str]):
        self.doc = doc
        self.secrets = secrets
        self.env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
        self.env.globals.update(env=self._env, now=_now)

    def _env(self, name: str, default: Any = _MISSING, secret: bool = False) -> Any:
        value = os.environ.get(str(name))
        if value is None:
            if default is _MISSING:
                raise _EnvMissing(name)
            value = default
        if secret and value not in (None, ""):
            self.secrets.add(str(value))
        return value

    def walk(self, value: Any, path: KeyPath, errors: list[ConfigError]) -> Any:
        if isinstance(value, dict):
            return {k: self.walk(v, (*path, k), errors) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, (*path, i), errors) for i, v in enumerate(value)]
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            try:
                return self.render(value)
            except ConfigError as exc:
                line, column = self.doc.locate(path)
                exc.file, exc.line, exc.column, exc.key_path = self.doc.file, line, column, path
                errors.append(exc)
        return value

    def render(self, text: str) -> Any:
        try:
            result = self.env.from_string(text).render()
        except _EnvMissing as exc:
            raise ConfigError(
                f"environment variable '{exc.args[0]}' is not set", code="KMLC113",
                hint=f"set it, or give a default: env('{exc.args[0]}', 'value')",
            ) from None
        except SecurityError as exc:
            raise ConfigError(f"template not allowed: {exc}", code="KMLC114") from None
        except jinja2.UndefinedError as exc:
            raise ConfigError(
                f"template error: {exc.message}", code="KMLC112",
                hint="available: env('NAME', default), params, now()",
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"template syntax error: {exc.message}", code="KMLC112") from None
        except Exception as exc:  # a user's expression failing at render time
            raise ConfigError(f"template error: {type(exc).__name__}: {exc}",
                              code="KMLC112") from None
        if _SINGLE.match(text):
            return _as_scalar(result)
        return result


def _now(fmt: str | None = None) -> Any:
    moment = _dt.datetime.now(_dt.UTC)
    return moment.strftime(fmt) if fmt else moment.isoformat(timespec="seconds")


def _as_scalar(text: str) -> Any:
    try:
        value = YAML(typ="safe", pure=True).load(text)
    except YAMLError:
        return text
    if isinstance(value, str | int | float | bool) or value is None:
        return value if text.strip() else text
    return text
