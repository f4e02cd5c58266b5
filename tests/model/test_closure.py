"""The table of installed distributions the model's requirements are read from."""

from __future__ import annotations

import collections
import decimal
import fractions
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
