"""The table of installed distributions the model's requirements are read from."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kmlc.model.closure import distribution_table, distributions, module_closure, ship_modules


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
