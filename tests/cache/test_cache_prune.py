"""``kmlc cache prune`` (``kmlc.cache.prune``): the records and kept values it removes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmlc.cache.index import INDEX_FILE, CacheIndex
from kmlc.cache.objects import OBJECTS_DIR, ObjectStore
from kmlc.cache.prune import prune_cache
from kmlc.errors import RunError


def _kept(root: Path, value: object) -> tuple[str, int]:
    ref, _ = ObjectStore(root / OBJECTS_DIR).put(value)
    assert ref is not None
    return ref, (root / OBJECTS_DIR / f"{ref.split(':')[1]}.pkl").stat().st_size


def _project(root: Path) -> dict[str, tuple[str, int]]:
    """Three records, oldest to newest: old keeps a, mid keeps b and a, new keeps c."""
    values = {name: _kept(root, name * (20 * (i + 1))) for i, name in enumerate("abc")}
    records = {
        "k-old": {"node": "old", "time": 100, "memory": {"x": values["a"][0]}},
        "k-mid": {"node": "mid", "time": 200,
                  "memory": {"y": values["b"][0], "z": values["a"][0], "n": "not a ref"}},
        "k-new": {"node": "new", "time": 300, "memory": {"w": values["c"][0]}},
        "k-none": {"node": "files", "outputs": {"f": "sha256:1"}},  # no time, no memory
    }
    CacheIndex(root / INDEX_FILE).write(records, {"f": [1, 2, "sha256:1", 3]})
    return values


def _left(root: Path) -> list[str]:
    return sorted(json.loads((root / INDEX_FILE).read_text())["records"])


def test_without_a_bound_only_values_no_record_names_go(tmp_path: Path) -> None:
    values = _project(tmp_path)
    _, stray_size = _kept(tmp_path, "stray")
    result = prune_cache(tmp_path)
    kept_bytes = sum(size for _, size in values.values())
    assert result.records_dropped == 0
    assert (result.objects_removed, result.bytes_freed) == (1, stray_size)
    assert (result.objects_kept, result.bytes_kept) == (3, kept_bytes)
    assert _left(tmp_path) == ["k-mid", "k-new", "k-none", "k-old"]


def test_a_bound_keeps_the_newest_records_whose_values_fit(tmp_path: Path) -> None:
    values = _project(tmp_path)
    size = {name: s for name, (_, s) in values.items()}
    # new (c) fits, mid (b + a) fits too: old shares a with mid, so it costs nothing
    result = prune_cache(tmp_path, max_bytes=size["a"] + size["b"] + size["c"])
    assert (result.records_dropped, result.objects_removed) == (0, 0)
    # c fits, mid's b and a do not: mid goes; old's a alone (smaller than b) still fits
    result = prune_cache(tmp_path, max_bytes=size["b"] + size["c"])
    assert result.records_dropped == 1
    assert _left(tmp_path) == ["k-new", "k-none", "k-old"]
    assert (result.objects_removed, result.bytes_freed) == (1, size["b"])
    assert (result.objects_kept, result.bytes_kept) == (2, size["a"] + size["c"])
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    assert index["files"] == {"f": [1, 2, "sha256:1", 3]}  # the stat cache kept


def test_a_bound_of_exactly_the_newest_records_values_keeps_it(tmp_path: Path) -> None:
    values = _project(tmp_path)
    result = prune_cache(tmp_path, max_bytes=values["c"][1])
    assert result.records_dropped == 2 and _left(tmp_path) == ["k-new", "k-none"]
    result = prune_cache(tmp_path, max_bytes=values["c"][1] - 1)
    assert result.records_dropped == 1 and _left(tmp_path) == ["k-none"]
    assert (result.objects_kept, result.bytes_kept) == (0, 0)


def test_nothing_to_drop_leaves_the_index_file_untouched(tmp_path: Path) -> None:
    _project(tmp_path)
    before = (tmp_path / INDEX_FILE).stat().st_ino  # a rewrite replaces the file
    assert prune_cache(tmp_path, max_bytes=10**9).records_dropped == 0
    assert (tmp_path / INDEX_FILE).stat().st_ino == before


def test_an_unreadable_index_removes_nothing(tmp_path: Path) -> None:
    values = _project(tmp_path)
    (tmp_path / INDEX_FILE).write_text("{broken")
    with pytest.raises(RunError) as caught:
        prune_cache(tmp_path)
    assert caught.value.code == "KMLC630"
    assert caught.value.message.startswith(f"the cache index {tmp_path / INDEX_FILE} cannot "
                                           "be read (")
    assert caught.value.message.endswith("): nothing was removed")
    assert caught.value.hint == "`kmlc run --cache` rebuilds it; then prune"
    assert len(list((tmp_path / OBJECTS_DIR).glob("*.pkl"))) == len(values)


def test_damaged_records_values_gone_and_records_without_a_time(tmp_path: Path) -> None:
    """A record that is not a mapping names no value and is never dropped; a value
    a record names but that is gone from disk takes no room; a record without a time
    counts as the oldest."""
    (a, size_a), (b, size_b) = _kept(tmp_path, "a" * 30), _kept(tmp_path, "b" * 30)
    gone = "sha256:" + "f" * 64
    records = {"k-untimed": {"node": "untimed", "memory": {"x": a}},
               "k-timed": {"node": "timed", "time": 1, "memory": {"y": b, "z": gone}},
               "k-text": "a damaged record", "k-list": [a]}
    CacheIndex(tmp_path / INDEX_FILE).write(records, {})
    result = prune_cache(tmp_path, max_bytes=size_b)  # exactly the newest record's values
    assert result.records_dropped == 1
    assert _left(tmp_path) == ["k-list", "k-text", "k-timed"]
    assert (result.objects_removed, result.bytes_freed) == (1, size_a)
    assert (result.objects_kept, result.bytes_kept) == (1, size_b)
    CacheIndex(tmp_path / INDEX_FILE).write(records, {})
    assert prune_cache(tmp_path).objects_removed == 0  # a went before: nothing to remove


def test_a_bound_adds_up_every_record_kept_and_counts_a_shared_value_once(
        tmp_path: Path) -> None:
    (a, size_a), (b, size_b), (c, size_c) = (_kept(tmp_path, v * 30) for v in "abc")
    records = {"k3": {"node": "n3", "time": 3, "memory": {"x": a}},
               "k2": {"node": "n2", "time": 2, "memory": {"x": b}},
               "k1": {"node": "n1", "time": 1, "memory": {"x": a}},  # shares a with k3
               "k0": {"node": "n0", "time": 0, "memory": {"x": c}}}
    CacheIndex(tmp_path / INDEX_FILE).write(records, {})
    result = prune_cache(tmp_path, max_bytes=size_a + size_b)
    assert result.records_dropped == 1 and _left(tmp_path) == ["k1", "k2", "k3"]
    assert (result.objects_removed, result.bytes_freed) == (1, size_c)


def test_a_record_without_a_time_is_older_than_one_of_the_first_second(
        tmp_path: Path) -> None:
    """(``time`` is seconds since 1970: a record written without one goes first, even
    beside one of time 1 whose key sorts after it.)"""
    (a, size_a), (b, size_b) = _kept(tmp_path, "a" * 30), _kept(tmp_path, "b" * 30)
    CacheIndex(tmp_path / INDEX_FILE).write(
        {"k-a": {"node": "untimed", "memory": {"x": a}},
         "k-b": {"node": "first", "time": 1, "memory": {"x": b}}}, {})
    result = prune_cache(tmp_path, max_bytes=max(size_a, size_b))
    assert result.records_dropped == 1 and _left(tmp_path) == ["k-b"]
