"""The cache index (``kmlc.cache.index``): what it loads, keeps, writes and hashes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import pytest

from kmlc.cache.index import CACHE_VERSION, CacheIndex

RACY_NS = 2_000_000_000  # the stat-cache window of kmlc.cache.index


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_missing_index_is_empty_without_a_warning(tmp_path: Path) -> None:
    index = CacheIndex.load(tmp_path / ".kmlc" / "cache.json")
    assert (index.records, index.files, index.warning) == ({}, {}, None)
    assert index.path == tmp_path / ".kmlc" / "cache.json"


@pytest.mark.parametrize(("text", "says"), [
    ("{not json", "cannot be read"),
    ("[1, 2]", "is not a kmlc cache index of version 1"),
    ('{"version": 2, "records": {}}', "is not a kmlc cache index of version 1"),
    ('{"version": 1, "records": []}', "is not a kmlc cache index of version 1"),
    ('{"version": 1, "records": {}, "files": []}', "is not a kmlc cache index of version 1"),
])
def test_an_index_that_is_not_one_is_empty_with_a_warning(tmp_path: Path, text: str,
                                                          says: str) -> None:
    path = tmp_path / "cache.json"
    path.write_text(text)
    index = CacheIndex.load(path)
    assert (index.records, index.files) == ({}, {})
    assert index.path == path  # rebuilt in its place
    assert index.warning is not None
    assert index.warning.startswith(f"the cache index {path} {says}")
    assert index.warning.endswith("; it is rebuilt, every node runs")


def test_an_index_that_cannot_be_read_names_the_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.mkdir()  # a folder where the file should be: an OSError, not a crash
    index = CacheIndex.load(path)
    assert index.warning is not None and "cannot be read (" in index.warning


def test_records_and_stat_entries_round_trip_and_files_may_be_absent(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text(json.dumps({"version": CACHE_VERSION, "records": {"k": {"node": "a"}},
                                "files": {"f": [1, 2, "sha256:x", 3]}}))
    index = CacheIndex.load(path)
    assert index.warning is None
    assert index.records == {"k": {"node": "a"}}
    assert index.files == {"f": [1, 2, "sha256:x", 3]}
    path.write_text(json.dumps({"version": CACHE_VERSION, "records": {"k": {}}}))
    index = CacheIndex.load(path)
    assert (index.records, index.files, index.warning) == ({"k": {}}, {}, None)


def test_save_keeps_what_another_run_recorded_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / ".kmlc" / "cache.json"
    mine = CacheIndex.load(path)
    mine.record("a", {"node": "a", "v": 1})
    assert mine.records == {"a": {"node": "a", "v": 1}}
    other = CacheIndex.load(path)
    other.record("b", {"node": "b"})
    other.files["other.csv"] = [1, 2, "sha256:o", 3]
    other.save()
    mine.files["mine.csv"] = [4, 5, "sha256:m", 6]
    mine.save()  # b stays; a record loaded but not made here is not written back over b
    data = json.loads(path.read_text())
    assert data["version"] == CACHE_VERSION
    assert data["records"] == {"a": {"node": "a", "v": 1}, "b": {"node": "b"}}
    assert data["files"] == {"other.csv": [1, 2, "sha256:o", 3],
                             "mine.csv": [4, 5, "sha256:m", 6]}
    # a record removed on disk meanwhile (kmlc cache prune) is not written back
    loaded = CacheIndex.load(path)
    assert loaded.records == data["records"]
    CacheIndex(path).write({}, {})
    loaded.save()
    assert json.loads(path.read_text())["records"] == {}
    assert [p.name for p in path.parent.iterdir()] == ["cache.json"]  # no temporary left


def test_save_takes_this_runs_stat_entry_over_the_one_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    CacheIndex(path).write({}, {"f": [1, 1, "sha256:old", 1]})
    index = CacheIndex.load(path)
    index.files["f"] = [2, 2, "sha256:new", 2]
    index.save()
    assert json.loads(path.read_text())["files"] == {"f": [2, 2, "sha256:new", 2]}


def test_a_failed_write_leaves_the_old_index_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.mkdir()
    (path / "keep").write_text("x")  # os.replace cannot put a file over a non-empty folder
    with pytest.raises(OSError):
        CacheIndex(path).write({"k": {}}, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.json"]
    assert (path / "keep").read_text() == "x"


def test_content_hash_of_a_file_a_folder_and_nothing(tmp_path: Path) -> None:
    index = CacheIndex(tmp_path / "cache.json")
    big = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 5)  # over several read chunks
    big.write_bytes(data)
    assert index.content_hash(big) == _sha(data)
    folder = tmp_path / "parts"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("bee")
    (folder / "sub" / "a.txt").write_text("ay")
    expected = hashlib.sha256(f"b.txt\0{_sha(b'bee')}\nsub/a.txt\0{_sha(b'ay')}\n".encode())
    assert index.content_hash(folder) == "sha256:" + expected.hexdigest()
    assert index.content_hash(tmp_path / "missing") is None


def test_the_stat_cache_is_trusted_only_for_a_file_older_than_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"abc")
    old = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(old, old))
    index = CacheIndex(tmp_path / "cache.json")
    before = time.time_ns()
    assert index.content_hash(path) == _sha(b"abc")
    size, mtime, value, hashed_at = index.files[str(path)]
    assert (size, mtime, value) == (3, old, _sha(b"abc"))
    assert before <= hashed_at <= time.time_ns()
    # same size and modification time, long before it was hashed: not read again
    path.write_bytes(b"xyz")
    os.utime(path, ns=(old, old))
    assert index.content_hash(path) == _sha(b"abc")
    # the modification time within the window before the hash: read again
    index.files[str(path)] = [3, old, "sha256:stale", old + RACY_NS]
    assert index.content_hash(path) == _sha(b"xyz")
    index.files[str(path)] = [3, old, "sha256:stale", old + RACY_NS + 1]
    assert index.content_hash(path) == "sha256:stale"
    # another size, another time, or an entry of another shape: read again
    for entry in ([4, old, "sha256:stale", old + RACY_NS + 1],
                  [3, old + 1, "sha256:stale", old + RACY_NS + 2],
                  [3, old, "sha256:stale"], "sha256:stale"):
        index.files[str(path)] = entry  # type: ignore[assignment]
        assert index.content_hash(path) == _sha(b"xyz")


def test_the_index_is_written_through_a_file_beside_it_not_the_system_temp_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.replace`` is atomic only within one file system, and the system's temporary
    folder may be elsewhere, full or gone: the index never goes through it."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    path = tmp_path / ".kmlc" / "cache.json"
    CacheIndex(path).write({"k": {"node": "a"}}, {})
    assert json.loads(path.read_text())["records"] == {"k": {"node": "a"}}
