"""Run stage, cache side: the cache index beside the project, and content hashes of files.

The index (``.kmlc/cache.json``) maps a node's key to what the run that computed it left:
its run id, the content hash of each persisted output and the values of its metrics. It
also keeps a stat cache, path -> (size, mtime_ns, hash), so that a file is read again only
when it changed. It is written atomically (a temporary file, then ``os.replace``); an
index that cannot be read is ignored with a warning and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["CACHE_VERSION", "INDEX_FILE", "CacheIndex"]

CACHE_VERSION = 1
INDEX_FILE = Path(".kmlc") / "cache.json"
_CHUNK = 1 << 20
# a stat entry is trusted only for a file last modified this long before it was hashed:
# a file rewritten within the file system's timestamp granularity keeps its mtime
_RACY_NS = 2_000_000_000


class CacheIndex:
    """The records and stat cache of one project; ``load`` it, change it, ``save`` it."""

    def __init__(self, path: Path, records: dict[str, Any] | None = None,
                 files: dict[str, list[Any]] | None = None, warning: str | None = None):
        self.path = path
        self.records: dict[str, Any] = records or {}
        self.files: dict[str, list[Any]] = files or {}
        self.warning = warning
        self._new: dict[str, Any] = {}

    @classmethod
    def load(cls, path: Path) -> CacheIndex:
        """The index at ``path``; empty (with ``warning`` set) if it is unreadable."""
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            return cls(path, warning=f"the cache index {path} cannot be read ({exc}); "
                                     "it is rebuilt, every node runs")
        if (not isinstance(data, dict) or data.get("version") != CACHE_VERSION
                or not isinstance(data.get("records"), dict)
                or not isinstance(data.get("files", {}), dict)):
            return cls(path, warning=f"the cache index {path} is not a kmlc cache index of "
                                     f"version {CACHE_VERSION}; it is rebuilt, every node runs")
        return cls(path, data["records"], data.get("files", {}))

    def record(self, key: str, value: dict[str, Any]) -> None:
        self.records[key] = value
        self._new[key] = value

    def save(self) -> None:
        """Write the index atomically, keeping records another run wrote meanwhile (and
        leaving out those ``kmlc cache prune`` removed meanwhile)."""
        on_disk = CacheIndex.load(self.path)
        self.write({**on_disk.records, **self._new}, {**on_disk.files, **self.files})

    def write(self, records: dict[str, Any], files: dict[str, list[Any]]) -> None:
        """Write exactly these records and stat entries, atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": CACHE_VERSION, "records": records, "files": files},
                          indent=1, sort_keys=True)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".cache-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def content_hash(self, path: Path) -> str | None:
        """``sha256:…`` of a file's bytes, or of a folder's sorted file list and contents;
        None when nothing is there."""
        try:
            if path.is_dir():
                digest = hashlib.sha256()
                for file in sorted(p for p in path.rglob("*") if p.is_file()):
                    rel = file.relative_to(path).as_posix()
                    digest.update(f"{rel}\0{self._file_hash(file)}\n".encode())
                return "sha256:" + digest.hexdigest()
            return self._file_hash(path)
        except FileNotFoundError:
            return None

    def _file_hash(self, path: Path) -> str:
        stat = path.stat()
        key = str(path)
        entry = self.files.get(key)
        if (isinstance(entry, list) and len(entry) == 4 and entry[0] == stat.st_size
                and entry[1] == stat.st_mtime_ns and stat.st_mtime_ns < entry[3] - _RACY_NS):
            return str(entry[2])
        now = time.time_ns()
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        value = "sha256:" + digest.hexdigest()
        self.files[key] = [stat.st_size, stat.st_mtime_ns, value, now]
        return value
