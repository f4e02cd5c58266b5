"""Run stage, cache side: ``kmlc cache prune``, the bound on what the cache keeps.

It removes only what the cache made: the kept memory values (``.kmlc/objects/``) that
no record of the index names, and, with a size bound, the oldest records whose kept
values do not fit in it (those nodes run again next time). Files a node wrote for the
project, the index's other records and anything else in ``.kmlc`` are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kmlc.cache.index import INDEX_FILE, CacheIndex
from kmlc.cache.objects import OBJECTS_DIR, ObjectStore, object_hash
from kmlc.errors import RunError

__all__ = ["PruneResult", "prune_cache"]


@dataclass(frozen=True)
class PruneResult:
    records_dropped: int
    objects_removed: int
    bytes_freed: int
    objects_kept: int
    bytes_kept: int


def _refs(record: Any) -> list[str]:
    memory = record.get("memory") if isinstance(record, dict) else None
    return [r for r in memory.values() if object_hash(r)] if isinstance(memory, dict) else []


def prune_cache(root: Path, max_bytes: int | None = None) -> PruneResult:
    """Prune the cache of the project in ``root``; see the module docstring."""
    index = CacheIndex.load(root / INDEX_FILE)
    if index.warning:
        raise RunError(f"{index.warning.split(';')[0]}: nothing was removed",
                       hint="`kmlc run --cache` rebuilds it; then prune", code="KMLC630")
    store = ObjectStore(root / OBJECTS_DIR)
    sizes = {p.stem: p.stat().st_size for p in store.files() if p.suffix == ".pkl"}
    records = dict(index.records)
    dropped = 0
    if max_bytes is not None:  # newest first: keep the records whose values still fit
        kept: set[str] = set()
        total = 0
        newest = sorted(records, key=lambda k: -int(records[k].get("time", 0))
                        if isinstance(records[k], dict) else 0)
        for key in newest:
            new = {d for d in map(object_hash, _refs(records[key])) if d} - kept
            size = sum(sizes.get(d, 0) for d in new)
            if total + size > max_bytes:
                del records[key]
                dropped += 1
                continue
            kept |= new
            total += size
        if dropped:
            index.write(records, index.files)
    removed, freed = store.prune(r for rec in records.values() for r in _refs(rec))
    left = [p for p in store.files() if p.suffix == ".pkl"]
    return PruneResult(dropped, len(removed), freed, len(left),
                       sum(p.stat().st_size for p in left))
