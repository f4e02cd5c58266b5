"""Run stage, cache side: the memory outputs the cache keeps, by content.

A cacheable node's memory outputs (values handed on in memory, never written by the
project) are pickled into ``.kmlc/objects/<sha256>.pkl`` when the node saves them, so
that a later ``--cache`` run can skip the node and hand its value to the nodes that do
run. Objects are named by the sha256 of their bytes (equal values written twice are
kept once), written atomically (a temporary file, then ``os.replace``) and checked
against their name when read. A value larger than the limit, or one that cannot be
pickled, is not kept: its consumers then make the producer run again. Nothing but
``<64 hex digits>.pkl`` and this module's own temporary files is ever removed here.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_LIMIT", "OBJECTS_DIR", "ObjectStore"]

OBJECTS_DIR = Path(".kmlc") / "objects"
DEFAULT_LIMIT = 256 * 1024 * 1024  # bytes of one pickled value
_NAME = re.compile(r"^([0-9a-f]{64})\.pkl$")
_TEMP = re.compile(r"^\.object-[A-Za-z0-9_]+\.tmp$")
_STALE_TEMP = 3600  # seconds: a temporary file older than this was left by a dead run


class _TooLarge(Exception):
    pass


class _Writer:
    """A file that hashes what it is given and refuses more than ``limit`` bytes."""

    def __init__(self, handle: Any, limit: int):
        self.handle = handle
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, data: Any) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise _TooLarge
        self.digest.update(data)
        return int(self.handle.write(data))


def object_hash(ref: Any) -> str | None:
    """The 64 hex digits of a ``sha256:…`` object reference, or None if it is not one."""
    if isinstance(ref, str) and ref.startswith("sha256:"):
        digits = ref[len("sha256:"):]
        if _NAME.match(digits + ".pkl"):
            return digits
    return None


class ObjectStore:
    """The objects folder of one project (``root / OBJECTS_DIR``)."""

    def __init__(self, folder: Path, limit: int = DEFAULT_LIMIT):
        self.folder = folder
        self.limit = limit

    def path(self, ref: str) -> Path | None:
        digits = object_hash(ref)
        return self.folder / f"{digits}.pkl" if digits else None

    def put(self, value: Any) -> tuple[str | None, str | None]:
        """Keep ``value``: (``sha256:…``, None), or (None, why it is not kept)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".object-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                writer = _Writer(handle, self.limit)
                pickle.dump(value, writer, protocol=pickle.HIGHEST_PROTOCOL)
            digits = writer.digest.hexdigest()
            target = self.folder / f"{digits}.pkl"
            if target.exists() and self.check(f"sha256:{digits}") is None:
                Path(temp).unlink()  # kept already (a damaged copy is replaced)
            else:
                os.replace(temp, target)
            return f"sha256:{digits}", None
        except _TooLarge:
            Path(temp).unlink(missing_ok=True)
            return None, f"larger than the cache's limit of {_size(self.limit)}"
        except Exception as exc:  # pickling runs the value's own code: anything can fail
            Path(temp).unlink(missing_ok=True)
            return None, f"cannot be pickled ({type(exc).__name__}: {str(exc)[:120]})"
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def check(self, ref: str) -> str | None:
        """Why the object ``ref`` cannot be read back (None: it is there, intact)."""
        path = self.path(ref)
        if path is None:
            return f"'{ref}' is not an object reference"
        try:
            data = path.read_bytes()
        except OSError as exc:
            return f"its kept value {path.name} cannot be read ({exc.strerror or exc})"
        if hashlib.sha256(data).hexdigest() != path.stem:
            return f"its kept value {path.name} is corrupt (its bytes do not match its name)"
        return None

    def get(self, ref: str) -> tuple[Any, str | None]:
        """(the value, None), or (None, why it cannot be read back)."""
        problem = self.check(ref)
        if problem is not None:
            return None, problem
        path = self.path(ref)
        assert path is not None
        try:
            with path.open("rb") as handle:
                return pickle.load(handle), None
        except Exception as exc:  # e.g. a class that no longer exists in the code
            return None, (f"its kept value {path.name} cannot be unpickled "
                          f"({type(exc).__name__}: {str(exc)[:120]})")

    def files(self) -> list[Path]:
        """The objects (and leftover temporary files) this module made."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir()
                      if p.is_file() and (_NAME.match(p.name) or _TEMP.match(p.name)))

    def prune(self, referenced: Iterable[str]) -> tuple[list[Path], int]:
        """Remove the objects no reference names (and leftover temporary files): the
        removed paths and how many bytes they held."""
        keep = {f"{d}.pkl" for d in map(object_hash, referenced) if d}
        removed: list[Path] = []
        freed = 0
        stale = time.time() - _STALE_TEMP
        for path in self.files():
            if path.name in keep:
                continue
            try:
                stat = path.stat()
                if _TEMP.match(path.name) and stat.st_mtime > stale:
                    continue  # another run may be writing it now
                path.unlink()
            except FileNotFoundError:
                continue
            size = stat.st_size
            removed.append(path)
            freed += size
        return removed, freed


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return f"{n} B"
