"""The digest of a run's dataset inputs is kmlc's content hash, the run cache's."""

from __future__ import annotations

from pathlib import Path

from kmlc.cache.index import CacheIndex
from kmlc.tracking.lineage import content_digest


def test_the_digest_is_the_run_caches_content_hash(tmp_path: Path) -> None:
    file = tmp_path / "data.csv"
    file.write_bytes(b"id,x\n1,2\n" * 1000)
    folder = tmp_path / "parts"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.json").write_text('{"a": 1}')
    (folder / "sub" / "b.json").write_text('{"b": 2}')
    index = CacheIndex(tmp_path / "index.json")
    for path in (file, folder):
        assert content_digest(path) == index.content_hash(path) is not None
    assert content_digest(tmp_path / "missing.csv") is None
    before = content_digest(folder)
    (folder / "sub" / "b.json").write_text('{"b": 3}')
    assert content_digest(folder) != before
