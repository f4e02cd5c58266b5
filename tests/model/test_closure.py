"""The table of installed distributions the model's requirements are read from."""

from __future__ import annotations

import collections
import decimal
import fractions
import os
import pickle
import time
from importlib import metadata
from pathlib import Path

import pytest

from kmlc.model.closure import (
    distribution_table,
    distributions,
    module_closure,
    pickled_modules,
    pinned,
    ship_modules,
)


def _install(folder: Path, name: str, module: str) -> None:
    """A distribution as pip leaves it: its module and a dist-info folder naming it."""
    (folder / f"{module}.py").write_text("VALUE = 1\n")
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "top_level.txt").write_text(f"{module}\n")
    (info / "RECORD").write_text(f"{module}.py,,\n")


def test_the_table_follows_installs_not_a_projects_outputs(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    site = tmp_path / "site"
    site.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.syspath_prepend(str(site))
    _install(site, "kmlc-probe-one", "kmlc_probe_one")
    assert distributions(["kmlc_probe_one"]) == ["kmlc-probe-one"]
    first = distribution_table()
    monkeypatch.syspath_prepend(str(project))  # a project's code folder, as a run adds it
    (project / "output.csv").write_text("x\n1\n")  # its outputs change the folder
    assert distribution_table() == first
    time.sleep(0.01)  # a later modification time for the install below
    _install(site, "kmlc-probe-two", "kmlc_probe_two")  # installed while the process lives
    assert distributions(["kmlc_probe_two"]) == ["kmlc-probe-two"]


def test_the_closure_follows_from_pkg_import_sub_and_relative_imports(tmp_path: Path) -> None:
    """The inference module reaches ``pkg.sub`` only through ``from pkg import sub`` and
    ``pkg.deep.leaf`` only through ``from .deep import leaf``: both are shipped, with the
    package ``__init__`` files Python runs first; a module nothing imports is not."""
    code = tmp_path / "src"
    (code / "pkg" / "deep").mkdir(parents=True)
    (code / "infer.py").write_text("import numpy\nfrom pkg import sub\n")
    (code / "pkg" / "__init__.py").write_text("")
    (code / "pkg" / "sub.py").write_text("from .deep import leaf\nfrom . import *\n")
    (code / "pkg" / "deep" / "__init__.py").write_text("")
    (code / "pkg" / "deep" / "leaf.py").write_text("import json\nVALUE = 1\n")
    (code / "pkg" / "unused.py").write_text("import requests\n")
    closure = module_closure(["infer"], [code])
    assert sorted(closure.local) == ["infer", "pkg", "pkg.deep", "pkg.deep.leaf", "pkg.sub"]
    assert closure.local["pkg.sub"] == code / "pkg" / "sub.py"
    assert closure.local["pkg"] == code / "pkg" / "__init__.py"
    assert {"numpy", "json"} <= closure.external and "requests" not in closure.external
    assert "pkg" not in closure.external and "infer" not in closure.external
    dest = tmp_path / "shipped"
    tops = ship_modules(closure, [code], dest)
    assert sorted(tops) == [dest / "infer.py", dest / "pkg"]
    shipped = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert shipped == ["infer.py", "pkg/__init__.py", "pkg/deep/__init__.py",
                       "pkg/deep/leaf.py", "pkg/sub.py"]


# data strings that look like module names, beside values whose classes the pickle names
_PICKLED = ("os", ["subprocess", decimal.Decimal(1)], {"shutil": (fractions.Fraction(1, 2),)},
            [decimal.Decimal(3)], collections.Counter("ab"))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_pickle_names_the_modules_of_its_classes_not_its_strings(
        tmp_path: Path, protocol: int) -> None:
    """What unpickling would import (``GLOBAL``, or ``STACK_GLOBAL`` through the memo),
    read from the opcodes: never a string the data holds."""
    path = tmp_path / "value.pkl"
    data = pickle.dumps(_PICKLED, protocol=protocol)
    path.write_bytes(data)
    assert pickled_modules(path) == {"collections", "decimal", "fractions"}
    path.write_bytes(data[: len(data) // 2])  # cut short: what was read before the cut
    assert pickled_modules(path) <= {"collections", "decimal", "fractions"}
    assert "decimal" in pickled_modules(path)


def test_what_is_not_a_pickle_names_no_module(tmp_path: Path) -> None:
    (tmp_path / "old.pkl").write_bytes(pickle.dumps(decimal.Decimal(1), protocol=0))
    (tmp_path / "text.pkl").write_bytes(b"decimal\n")
    assert pickled_modules(tmp_path / "old.pkl") == set()  # protocol 0/1: not read
    assert pickled_modules(tmp_path / "text.pkl") == set()
    assert pickled_modules(tmp_path / "missing.pkl") == set()


def test_pinned_names_each_installed_distribution_once_and_never_kmlc() -> None:
    pytest_pin = f"pytest=={metadata.version('pytest')}"
    assert pinned(["pytest", "kmlc", "KMLC", "kmlc-no-such-dist", "pytest"]) == [pytest_pin]
    assert distributions(["os", "__future__", "pytest", "kmlc_probe_none"], local=["pytest"]) \
        == []


def test_the_closure_adds_parent_packages_resolves_relative_imports_and_ends_on_cycles(
        tmp_path: Path) -> None:
    """``import pkg.deep.leaf`` runs ``pkg`` and ``pkg.deep`` first; ``from . import x``
    in an ``__init__`` is relative to that package, ``from ..util import tool`` two levels
    up; a cycle (util imports helper, helper imports util) is followed once; a file that
    does not parse, or is not UTF-8, is shipped without its imports."""
    code = tmp_path / "src"
    (code / "pkg" / "deep").mkdir(parents=True)
    (code / "infer.py").write_text("import pkg.deep.leaf\nimport pkg.broken, pkg.latin\n")
    (code / "pkg" / "__init__.py").write_text("")
    (code / "pkg" / "deep" / "__init__.py").write_text("from . import helper\n")
    (code / "pkg" / "deep" / "leaf.py").write_text("VALUE = 1\n")
    (code / "pkg" / "deep" / "helper.py").write_text("from ..util import tool\n")
    (code / "pkg" / "util.py").write_text("from .deep import helper\nimport yaml\n\n"
                                          "def tool():\n    return helper\n")
    (code / "pkg" / "broken.py").write_text("import json\ndef oops(:\n")
    (code / "pkg" / "latin.py").write_bytes("import csv\n# caf\xe9\n".encode("latin-1"))
    closure = module_closure(["infer"], [code])
    assert sorted(closure.local) == ["infer", "pkg", "pkg.broken", "pkg.deep",
                                     "pkg.deep.helper", "pkg.deep.leaf", "pkg.latin",
                                     "pkg.util"]
    assert closure.external == {"yaml"}  # not json or csv: their files did not parse


def _text(value: str) -> bytes:
    """A pickle's SHORT_BINUNICODE opcode pushing ``value``."""
    data = value.encode()
    return b"\x8c" + bytes([len(data)]) + data


# pickles as other picklers may write them: the module name reaches STACK_GLOBAL only
# through the memo, stored after a MARK region (APPENDS, TUPLE, POP_MARK) or a POP of a MARK
_THROUGH_THE_MEMO = {
    "memoize after appends": (b"\x80\x04" + _text("decimal") + b"](" + _text("x") + _text("y")
                              + b"e0\x94" + b"0(0h\x00" + _text("Decimal") + b"\x93."),
    "binput after appends": (b"\x80\x04" + _text("fractions") + b"](" + _text("x")
                             + b"e0q\x05" + b"0h\x05" + _text("Fraction") + b"\x93."),
    "memoize after a tuple": (b"\x80\x04" + _text("collections") + b"(" + _text("a")
                              + _text("b") + b"t0\x94" + b"0h\x00" + _text("Counter")
                              + b"\x93."),
    "memoize after pop_mark": (b"\x80\x04" + _text("string") + b"(" + _text("a") + b"1\x94"
                               + b"0h\x00" + _text("Template") + b"\x93."),
}


@pytest.mark.parametrize("name", sorted(_THROUGH_THE_MEMO))
def test_a_module_name_read_back_from_the_memo_is_found(tmp_path: Path, name: str) -> None:
    path = tmp_path / "value.pkl"
    data = _THROUGH_THE_MEMO[name]
    path.write_bytes(data)
    expected = {"memoize after appends": "decimal", "binput after appends": "fractions",
                "memoize after a tuple": "collections", "memoize after pop_mark": "string"}
    assert pickled_modules(path) == {expected[name]}


def test_a_pickled_class_an_inst_opcode_and_a_name_first_seen_as_data(tmp_path: Path) -> None:
    path = tmp_path / "value.pkl"
    path.write_bytes(pickle.dumps(decimal.Decimal, protocol=4))  # the class alone: 2 strings
    assert pickled_modules(path) == {"decimal"}
    path.write_bytes(b"\x80\x02(cfractions\nFraction\nidecimal\nDecimal\n.")  # GLOBAL, INST
    assert pickled_modules(path) == {"fractions", "decimal"}
    for protocol in (4, 5):  # the string 'fractions' memoized as data, then the class
        path.write_bytes(pickle.dumps(["fractions", fractions.Fraction(1, 3)],
                                      protocol=protocol))
        assert pickled_modules(path) == {"fractions"}
    for broken in (b"\x80\x04\x94.", b"\x80\x04q\x00.", b"\x80\x04(0\x93.",
                   # STACK_GLOBAL on a stack emptied by a POP, a TUPLE or a bottom MARK region
                   b"\x80\x04" + _text("fractions") + b"0" + _text("Fraction") + b"\x93.",
                   b"\x80\x04(" + _text("decimal") + b"]t0" + _text("Decimal") + b"\x93.",
                   b"\x80\x04(" + _text("x") + b"t01" + _text("decimal") + _text("Decimal")
                   + b"\x93."):
        path.write_bytes(broken)  # memo or STACK_GLOBAL on an empty stack: nothing, no crash
        assert pickled_modules(path) == set()


def test_imports_of_names_submodules_but_never_a_star(tmp_path: Path) -> None:
    from kmlc.model.closure import imports_of

    file = tmp_path / "mod.py"
    file.write_text("from pkg import *\nfrom pkg import sub as alias, other\n"
                    "from . import sibling\nimport a.b, c\n")
    assert list(imports_of(file, "top.mod")) == [
        "pkg", "pkg", "pkg.sub", "pkg.other", "top", "top.sibling", "a.b", "c"]


def test_a_namespace_package_is_followed_and_shipped_and_the_code_folder_is_no_module(
        tmp_path: Path) -> None:
    """``ns`` and ``ns/deep`` have no ``__init__.py``: their modules are shipped in folders
    made on the way, and the modules imported beside them are still followed; a code folder
    that holds an ``__init__.py`` is not itself a module of the closure."""
    code = tmp_path / "src"
    (code / "ns" / "deep").mkdir(parents=True)
    (code / "__init__.py").write_text("")
    (code / "infer.py").write_text("import helper\nimport ns\nimport ns.deep.leaf\n")
    (code / "helper.py").write_text("import yaml\n")
    (code / "ns" / "deep" / "leaf.py").write_text("VALUE = 1\n")
    closure = module_closure(["infer"], [code])
    assert sorted(closure.local) == ["helper", "infer", "ns.deep.leaf"]
    assert closure.external == {"yaml"}
    dest = tmp_path / "out" / "shipped"  # not there yet, nor its parent
    tops = ship_modules(closure, [code], dest)
    assert sorted(tops) == [dest / "helper.py", dest / "infer.py", dest / "ns"]
    assert (dest / "ns" / "deep" / "leaf.py").read_text() == "VALUE = 1\n"


def test_pinned_skips_a_distribution_that_is_not_installed_and_goes_on() -> None:
    pin = f"pytest=={metadata.version('pytest')}"
    assert pinned(["kmlc-no-such-dist", "kmlc", "pytest"]) == [pin]


def test_the_table_follows_installs_into_the_current_folder_and_egg_info_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``''`` on ``sys.path`` is the current folder (``python -c``); a folder whose
    distributions are all ``.egg-info`` counts as one that holds distributions."""
    here = tmp_path / "here"
    here.mkdir()
    (here / "kmlc_probe_seed.py").write_text("VALUE = 1\n")
    (here / "kmlc_probe_seed-1.0.dist-info").mkdir()  # a folder of installs
    monkeypatch.chdir(here)
    monkeypatch.syspath_prepend("")
    assert distributions(["kmlc_probe_cwd"]) == []
    time.sleep(0.01)
    _install(here, "kmlc-probe-cwd", "kmlc_probe_cwd")
    assert distributions(["kmlc_probe_cwd"]) == ["kmlc-probe-cwd"]
    eggs = tmp_path / "eggs"
    eggs.mkdir()
    monkeypatch.syspath_prepend(str(eggs))
    (eggs / "kmlc_probe_egg.py").write_text("VALUE = 1\n")
    info = eggs / "kmlc_probe_egg-1.0.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: kmlc-probe-egg\nVersion: 1.0\n")
    (info / "top_level.txt").write_text("kmlc_probe_egg\n")
    assert distributions(["kmlc_probe_egg"]) == ["kmlc-probe-egg"]
    time.sleep(0.01)
    (eggs / "kmlc_probe_egg2.py").write_text("VALUE = 1\n")
    info = eggs / "kmlc_probe_egg2-1.0.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: kmlc-probe-egg2\n"
                                   "Version: 1.0\n")
    (info / "top_level.txt").write_text("kmlc_probe_egg2\n")
    assert distributions(["kmlc_probe_egg2"]) == ["kmlc-probe-egg2"]


def test_the_table_is_read_once_while_no_folder_of_installs_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading every distribution's files is slow: the table is read once and kept until a
    folder of installs on ``sys.path`` has another modification time (an install or an
    uninstall gives it one). Files edited inside a distribution are not read again."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    _install(site, "kmlc-probe-first", "kmlc_probe_first")
    assert distributions(["kmlc_probe_first"]) == ["kmlc-probe-first"]
    (site / "kmlc-probe-first-1.0.dist-info" / "top_level.txt").write_text("kmlc_probe_moved\n")
    assert distributions(["kmlc_probe_moved"]) == []  # the table as it was read
    stamp = site.stat()
    os.utime(site, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
    assert distributions(["kmlc_probe_moved"]) == ["kmlc-probe-first"]


def test_a_distribution_installing_a_standard_module_name_is_never_required(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution that installs a module under a name of the standard library (as the
    ``enum34`` and ``typing`` backports did) is no requirement of a model importing that
    name: the names of the standard library are never looked up."""
    site = tmp_path / "site"
    info = site / "kmlc_probe_enum-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kmlc-probe-enum\n"
                                   "Version: 1.0\n")
    (info / "top_level.txt").write_text("enum\n")
    monkeypatch.syspath_prepend(str(site))
    assert "kmlc-probe-enum" in distribution_table()["enum"]
    assert distributions(["enum", "__future__"]) == []
