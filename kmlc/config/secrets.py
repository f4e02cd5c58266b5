"""Secrets: the values that must never be logged, stored in a model or printed.

The renderer collects them (``env('TOKEN', secret=true)``), the loader adds the values
of the credentials file and the password part of tracking and registry URIs
(``http://user:token@host``). ``Secrets.mask`` is the one rule every boundary applies
before it hands a value to something that keeps or shows it (MLflow params, tags and
run names, the logged ``mlproject.yml``, the model's plan, messages and errors); where
masking would make no sense (a name or a path), the checks refuse the secret instead
(``secret_checks.py``).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:  # light at run time: the tracking worker imports this module
    from kmlc.config.source import KeyPath

__all__ = ["MASK", "Secrets", "mask_secrets", "redact_uri", "uri_secrets"]

MASK = "***"
# scheme://user:password@ — the whole userinfo goes (a user name alone is no secret)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s:'\"]*:[^/@\s'\"]*@")


def redact_uri(uri: str) -> str:
    """``uri`` (or any text holding URIs) without the ``user:password@`` part."""
    return _USERINFO.sub(rf"\g<scheme>{MASK}@", uri)


def uri_secrets(uri: str | None) -> set[str]:
    """The userinfo of ``uri`` with a password, as written and percent-decoded."""
    if not uri or "@" not in uri:
        return set()
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return set()
    if not password:
        return set()
    userinfo = parts.netloc.rpartition("@")[0]
    return {value for value in (userinfo, unquote(userinfo), password, unquote(password))
            if value}


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***`` (``Secrets.mask``)."""
    return (secrets if isinstance(secrets, Secrets) else Secrets(secrets)).mask(text)


class Secrets:
    """A set of secret values; iterating gives them longest first (the masking order).

    ``paths``: the key paths of the document whose values are secret, or computed from
    one (``RenderResult.secret_paths``). A value too short to be masked as text (``{{
    env('PIN', secret=true) | length }}``) is still masked where it is shown by its key:
    the logged file, the manifest, the parameters logged to MLflow.
    """

    def __init__(self, values: Iterable[str] = (), paths: Iterable[KeyPath] = ()):
        self._values = tuple(sorted({str(v) for v in values if v not in (None, "")},
                                    key=lambda v: (-len(v), v)))
        self.paths: tuple[KeyPath, ...] = tuple(dict.fromkeys(tuple(p) for p in paths))

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secrets):
            return self._values == other._values
        if isinstance(other, tuple | list | set | frozenset):
            return set(self._values) == set(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"Secrets({len(self._values)} values)"

    def __or__(self, other: Iterable[str]) -> Secrets:
        return Secrets([*self._values, *other],
                       [*self.paths, *(other.paths if isinstance(other, Secrets) else ())])

    def param_is_secret(self, dotted: str, sep: str = ".") -> bool:
        """Whether the parameter ``dotted`` (``a.b``; ``parameters``: all of them) is, or
        holds, or is part of a secret value."""
        if dotted == "parameters":
            return any(p[:1] == ("parameters",) for p in self.paths)
        parts = tuple(dotted.split(sep))
        for path in self.paths:
            if path[:1] != ("parameters",):
                continue
            secret = tuple(str(p) for p in path[1:])
            if secret[:len(parts)] == parts or parts[:len(secret)] == secret:
                return True
        return False

    def mask_value(self, value: Any) -> Any:
        """A value computed from a secret: its text masked where it holds a secret's text
        (``http://u:***@host`` stays readable), else ``***`` whole (``pin: 4821``,
        ``size: 18``)."""
        if isinstance(value, str):
            masked = self.mask(value)
            if masked != value:
                return masked
        return MASK

    def mask_document(self, data: Any) -> Any:
        """``data``, a rendered document, with the value at every secret path masked
        (``mask_value``) and every other value masked as text (``mask_data``)."""
        def walk(value: Any, path: tuple[Any, ...]) -> Any:
            if path in secret_paths:
                return self.mask_value(value)
            if isinstance(value, Mapping):
                return {k: walk(v, (*path, k)) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v, (*path, i)) for i, v in enumerate(value)]
            return value

        secret_paths = set(self.paths)
        return self.mask_data(walk(data, ()) if secret_paths else data)

    def found_in(self, text: str) -> bool:
        """Whether ``text`` holds a secret (or a URI password)."""
        return any(value in text for value in self._values) or redact_uri(text) != text

    def mask(self, text: str) -> str:
        """``text`` with every secret and URI password replaced by ``***``."""
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return redact_uri(text)

    def mask_data(self, value: Any) -> Any:
        """``value`` with every string in it (keys too) masked, and every number whose
        text holds a secret (``pin: 987654321987``) replaced by ``***``; other leaves kept."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = str(value)
            return MASK if self.mask(text) != text else value
        if isinstance(value, Mapping):
            return {self.mask_data(k): self.mask_data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.mask_data(v) for v in value)
        return value

    @contextlib.contextmanager
    def masked_logs(self) -> Iterator[None]:
        """Mask every log record created inside the block (its rendered message)."""
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            with contextlib.suppress(Exception):  # a broken record is logging's to report
                message = record.getMessage()
                masked = self.mask(message)
                if masked != message:
                    record.msg, record.args = masked, None
            return record

        logging.setLogRecordFactory(factory)
        try:
            yield
        finally:
            logging.setLogRecordFactory(previous)
