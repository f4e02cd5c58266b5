"""Where a dataset path lands on this machine, read as Kedro and fsspec read it.

Kedro takes ``scheme://...`` (an alphanumeric scheme, any case) as a protocol and
anything else as a local path; fsspec serves several protocols from the local disk
(``file``, ``local``, and whatever its registry maps to a ``LocalFileSystem``, such as
``asynclocal``). ``local_part`` is the one reading of it, so that the check that a path
stays in the project, the catalog and the run cache agree with what Kedro writes.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from kmlc.config.spec import DatasetSpec

__all__ = ["local_part", "local_path", "local_protocols", "resolve_path"]

_WINDOWS_DRIVE = re.compile(r"^[a-zA-Z]:[\\/]")
_PROTOCOL = re.compile(r"^([a-zA-Z0-9]+)://")  # Kedro's own test (kedro.io.core)


@functools.cache
def local_protocols() -> frozenset[str]:
    """The fsspec protocols that read and write the local disk, lower case."""
    found = {"file", "local"}
    try:
        from fsspec.implementations.local import LocalFileSystem
        from fsspec.registry import known_implementations, registry
    except ImportError:  # pragma: no cover - fsspec comes with Kedro
        return frozenset(found)
    for name, entry in known_implementations.items():
        if str(entry.get("class", "")).rpartition(".")[2] in ("LocalFileSystem",
                                                              "AsyncLocalFileSystem"):
            found.add(name.lower())
    for name, cls in dict(registry).items():
        if isinstance(cls, type) and issubclass(cls, LocalFileSystem):
            found.add(name.lower())
    return frozenset(found)


def local_part(value: str) -> str | None:
    """The local path (maybe relative) Kedro reads or writes for the dataset path
    ``value``; ``None`` for a remote URL. ``FILE:///tmp/x`` and ``local:///tmp/x`` are
    ``/tmp/x``, as Kedro takes them."""
    if _WINDOWS_DRIVE.match(value):
        return value
    match = _PROTOCOL.match(value)
    if match is None:
        return value  # Kedro: protocol file, the path as written
    if match.group(1).lower() not in local_protocols():
        return None
    parts = urlsplit(value)  # as Kedro splits it: the host part of file://host/x is dropped
    path = parts.path
    if parts.query:
        path = f"{path}?{parts.query}"
    if parts.fragment:
        path = f"{path}#{parts.fragment}"
    return path


def resolve_path(value: str, root: Path) -> str:
    """Resolve a relative local path against ``root``; leave URLs and absolute paths
    (``local_part`` tells a local path, in any of fsspec's local protocols, from a URL)."""
    local = local_part(value)
    if local is None or Path(local).is_absolute():
        return value
    return str((root / local).resolve())


def local_path(ds: DatasetSpec, root: Path) -> Path | None:
    """The local file or folder of a dataset (relative to ``root``; ``file://``,
    ``FILE://``, ``local://`` dropped as Kedro drops them); None for a dataset without one
    or with a remote URL."""
    raw = ds.filepath
    local = None if raw is None else local_part(raw)
    if local is None:
        return None
    return Path(resolve_path(local, root))
