"""The kept memory values (``kmlc.cache.objects``): named by content, checked when read,
refused over the limit, and only the store's own files ever removed."""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import tempfile
import time
from pathlib import Path

import pytest

from kmlc.cache.objects import DEFAULT_LIMIT, ObjectStore, _size, object_hash

DIGITS = "ab" * 32


def test_object_references_are_sha256_and_64_lowercase_hex_digits(tmp_path: Path) -> None:
    assert object_hash(f"sha256:{DIGITS}") == DIGITS
    for ref in (DIGITS, f"sha256:{DIGITS[:-1]}", f"sha256:{DIGITS}0", f"sha256:{DIGITS.upper()}",
                f"md5:{DIGITS}", None, 7):
        assert object_hash(ref) is None
    store = ObjectStore(tmp_path)
    assert store.path(f"sha256:{DIGITS}") == tmp_path / f"{DIGITS}.pkl"
    assert store.path("sha256:zz") is None
    assert store.check("sha256:zz") == "'sha256:zz' is not an object reference"
    assert store.limit == DEFAULT_LIMIT == 256 * 1024 * 1024


def test_a_value_is_kept_once_by_content_and_read_back(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    value = {"rows": [1, 2, 3], "name": "x"}
    ref, why = store.put(value)
    assert why is None and ref is not None
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    assert ref == "sha256:" + hashlib.sha256(data).hexdigest()
    assert store.put({"rows": [1, 2, 3], "name": "x"}) == (ref, None)
    assert [p.name for p in store.files()] == [f"{object_hash(ref)}.pkl"]
    assert store.check(ref) is None
    assert store.get(ref) == (value, None)


def test_a_damaged_or_missing_value_is_reported_and_a_damaged_one_replaced(
        tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    ref, _ = store.put([1, 2])
    assert ref is not None
    path = store.path(ref)
    assert path is not None
    path.write_bytes(path.read_bytes() + b"x")
    problem = f"its kept value {path.name} is corrupt (its bytes do not match its name)"
    assert store.check(ref) == problem
    assert store.get(ref) == (None, problem)
    assert store.put([1, 2]) == (ref, None)  # kept again, intact
    assert store.get(ref) == ([1, 2], None)
    path.unlink()
    assert store.check(ref).startswith(f"its kept value {path.name} cannot be read (")
    assert store.check(ref) == (f"its kept value {path.name} cannot be read "
                                "(No such file or directory)")
    assert store.get(ref)[0] is None


def test_a_value_whose_class_is_gone_cannot_be_unpickled(tmp_path: Path) -> None:
    data = b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x10kmlc_no_such_mod\x94\x8c\x01C" \
           b"\x94\x93\x94)\x81\x94."
    digits = hashlib.sha256(data).hexdigest()
    (tmp_path / f"{digits}.pkl").write_bytes(data)
    value, problem = ObjectStore(tmp_path).get(f"sha256:{digits}")
    assert value is None
    assert problem == (f"its kept value {digits}.pkl cannot be unpickled "
                       f"(ModuleNotFoundError: No module named 'kmlc_no_such_mod')")


class _FailsWhenRead:
    def __reduce__(self) -> tuple:
        return (int, ("not a number " + "x" * 200,))  # unpickling calls int() on it


def test_why_a_value_cannot_be_unpickled_is_cut_to_a_line(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    ref, _ = store.put(_FailsWhenRead())
    assert ref is not None
    error = "invalid literal for int() with base 10: 'not a number " + "x" * 200 + "'"
    assert store.get(ref) == (None, f"its kept value {object_hash(ref)}.pkl cannot be "
                                    f"unpickled (ValueError: {error[:120]})")


class _Refuses:
    def __reduce__(self) -> tuple:
        raise TypeError("no pickling of me" + "!" * 200)


def test_what_cannot_be_kept_says_why_and_leaves_no_file(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    assert store.put(_Refuses()) == (
        None, "cannot be pickled (TypeError: " + ("no pickling of me" + "!" * 200)[:120] + ")")
    value = list(range(50))
    size = len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    small = ObjectStore(tmp_path, limit=size - 1)
    assert small.put(value) == (None, f"larger than the cache's limit of {size - 1} B")
    assert list(tmp_path.iterdir()) == []
    exact = ObjectStore(tmp_path, limit=size)  # the limit itself fits
    ref, why = exact.put(value)
    assert why is None and exact.get(str(ref)) == (value, None)


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (10, "10 B"), (1023, "1023 B"), (1024, "1.0 KB"), (1536, "1.5 KB"),
    (1024 * 1024 - 1, "1024.0 KB"), (1024 * 1024, "1.0 MB"), (5 * 1024**3, "5.0 GB"),
    (2 * 1024**4, "2048.0 GB"),
])
def test_sizes_are_written_in_the_largest_unit_below_1024(n: int, text: str) -> None:
    assert _size(n) == text


def test_prune_removes_only_unnamed_objects_and_stale_temporary_files(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    assert store.files() == [] and store.prune([]) == ([], 0)  # no folder yet
    keep, _ = store.put("keep")
    drop, _ = store.put("drop" * 10)
    assert keep is not None and drop is not None
    folder = tmp_path / "objects"
    fresh = folder / ".object-abc_1.tmp"
    fresh.write_bytes(b"12345")
    stale = folder / ".object-old.tmp"
    stale.write_bytes(b"123")
    hour_ago = time.time() - 3600 - 60
    os.utime(stale, (hour_ago, hour_ago))
    mine = [folder / "notes.txt", folder / f"{DIGITS}.pkl.bak", folder / ".object-x.tmp.bak"]
    for path in mine:
        path.write_text("mine")
    (folder / f"{'cd' * 32}.pkl").mkdir()  # a folder by an object's name: not a file of it
    assert store.files() == sorted([folder / f"{object_hash(keep)}.pkl",
                                    folder / f"{object_hash(drop)}.pkl", fresh, stale])
    dropped = folder / f"{object_hash(drop)}.pkl"
    size = dropped.stat().st_size
    removed, freed = store.prune([keep, "not a reference"])
    assert sorted(removed) == sorted([dropped, stale])
    assert freed == size + 3
    assert store.get(keep) == ("keep", None)
    assert fresh.exists() and all(p.exists() for p in mine)


def test_a_value_is_written_through_a_file_beside_it_not_the_system_temp_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    store = ObjectStore(tmp_path / "objects")
    ref, why = store.put([1, 2, 3])
    assert why is None and store.get(str(ref)) == ([1, 2, 3], None)


class _KillsItsProcess:
    def __reduce__(self) -> tuple:
        os.kill(os.getpid(), signal.SIGKILL)  # the run dies while the value is written
        return (int, ())


def test_a_value_half_written_by_a_killed_run_is_removed_once_stale(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    kept, _ = store.put("kept")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child dies inside put
        try:
            store.put(["some", "rows", _KillsItsProcess()])
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    (left,) = [p for p in (tmp_path / "objects").iterdir() if not p.name.endswith(".pkl")]
    assert store.files() == sorted([store.path(str(kept)), left])
    assert store.prune([str(kept)]) == ([], 0)  # it may be another run's, still writing
    hour_ago = time.time() - 3600 - 60
    os.utime(left, (hour_ago, hour_ago))
    size = left.stat().st_size
    assert store.prune([str(kept)]) == ([left], size)
    assert store.files() == [store.path(str(kept))]


def test_the_limit_bounds_the_whole_value_not_each_piece_pickle_writes(tmp_path: Path) -> None:
    value = [f"row {i}" for i in range(40_000)]  # pickled in frames of about 64 KB
    size = len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    assert size > 3 * 100_000
    store = ObjectStore(tmp_path, limit=100_000)
    assert store.put(value) == (None, "larger than the cache's limit of 97.7 KB")
    assert list(tmp_path.iterdir()) == []


class _Interrupted:
    def __reduce__(self) -> tuple:
        raise KeyboardInterrupt  # Ctrl-C while the value is pickled


def test_an_interrupt_while_a_value_is_written_goes_on_and_leaves_no_file(
        tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        store.put(["rows", _Interrupted()])
    assert list(tmp_path.iterdir()) == []
