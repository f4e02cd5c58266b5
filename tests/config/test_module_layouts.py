"""Dataset types and node functions in the project's own code, whatever its module layout.

A dataset class of the project (``type: my_project.extras.datasets.ImageDataset`` under
``src/``, nothing installed) is found in the ``code:`` folders as node functions are, and
no layout (namespace packages, missing folders, files named like packages, empty parts,
unicode, a module that raises on import) ends in anything but an answer: hypothesis
builds the layouts and compares the answer with Python's own rules.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from project_text import WriteProject, edit_text

from kmlc.cli import main
from kmlc.config.dataset_types import type_problem
from kmlc.config.loader import check_project

IMAGE_DATASET = '''\
from kedro.io import AbstractDataset


class ImageDataset(AbstractDataset):
    def __init__(self, filepath):
        self._filepath = filepath

    def _load(self):
        return open(self._filepath).read()

    def _save(self, data):
        open(self._filepath, "w").write(data)

    def _describe(self):
        return {"filepath": self._filepath}
'''


@pytest.fixture(autouse=True)
def _forget_the_projects_modules() -> Iterator[None]:
    """``kmlc plan`` and ``graph`` import a project's modules in this process, as a run
    does, and leave them imported; each test's project is in its own folder, so a package
    of one (``zq_ns``, regular in one test, a namespace in the next) must not answer for
    the next test's folder in the same worker."""
    yield
    for name in [m for m in sys.modules if m.split(".")[0].startswith("zq")]:
        del sys.modules[name]


def _validate(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.chdir(path.parent)
    result = CliRunner().invoke(main, ["validate", "-f", str(path)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_a_dataset_class_of_the_project_is_found_in_its_code_folders(
        write_project: WriteProject, demo_yaml: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = edit_text(demo_yaml, ("name: demo\n", "name: demo\ncode: [., src]\n"),
                     ("{type: pickle.PickleDataset, filepath: data/model.pkl}",
                      "{type: my_project.extras.datasets.ImageDataset, filepath: data/m.txt}"))
    path = write_project(text, files={
        "src/my_project/__init__.py": "",
        "src/my_project/extras/__init__.py": "",
        "src/my_project/extras/datasets/__init__.py": IMAGE_DATASET})
    assert "my_project" not in sys.modules
    code, output = _validate(path, monkeypatch)
    assert code == 0, output
    # a misspelt module in the same folders is still unknown
    path.write_text(text.replace("my_project.extras.datasets", "my_project.extra.datasets"),
                    "utf-8")
    code, output = _validate(path, monkeypatch)
    assert code == 1
    assert "unknown dataset type 'my_project.extra.datasets.ImageDataset'" in output
    assert "[KMLC331]" in output


@pytest.mark.parametrize("layout", ["namespace_top", "namespace_middle"])
def test_a_namespace_package_on_the_way_is_followed(
        write_project: WriteProject, demo_yaml: str, monkeypatch: pytest.MonkeyPatch,
        layout: str) -> None:
    """A folder without ``__init__.py`` (a namespace package) on the module path."""
    files = {"src/zq_ns/extras/datasets.py": IMAGE_DATASET}
    if layout == "namespace_middle":
        files["src/zq_ns/__init__.py"] = ""
    text = edit_text(demo_yaml, ("name: demo\n", "name: demo\ncode: [., src]\n"),
                     ("{type: pickle.PickleDataset, filepath: data/model.pkl}",
                      "{type: zq_ns.extras.datasets.ImageDataset, filepath: data/m.txt}"))
    path = write_project(text, files=files)
    code, output = _validate(path, monkeypatch)
    assert code == 0, output
    for command in (["plan", "--format", "json"], ["graph"]):
        result = CliRunner().invoke(main, [*command, "-f", str(path)])
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output


def test_a_namespace_package_on_sys_path_is_followed(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The layout that raised ``KeyError`` from importlib's PathFinder: a namespace package
    found through ``sys.path``, its parent never imported."""
    (tmp_path / "zq_nsp" / "inner").mkdir(parents=True)
    (tmp_path / "zq_nsp" / "inner" / "data.py").write_text(IMAGE_DATASET, "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert type_problem("zq_nsp.inner.data.ImageDataset") is None
    assert type_problem("zq_nsp.inner.nothing.ImageDataset") is not None
    assert "zq_nsp" not in sys.modules


# ----------------------------------------------------------------- fuzzing the layouts

# a name part: ascii, unicode or a keyword-free identifier; "zq" keeps it clear of installed
# packages
PART = st.sampled_from(["a", "b", "pkg", "datasets", "é", "données", "ß", "x1"]).map(
    lambda s: f"zq{s}")
KIND = st.sampled_from(["package", "namespace", "module", "raising_package", "raising_module",
                        "bare_file", "missing"])


@st.composite
def layouts(draw: st.DrawFn) -> list[tuple[tuple[str, ...], str]]:
    """Entries ``(path parts, kind)`` under the code folder, parents before children."""
    entries: list[tuple[tuple[str, ...], str]] = []
    folders: list[tuple[str, ...]] = [()]
    for _ in range(draw(st.integers(1, 7))):
        parent = draw(st.sampled_from(folders))
        if len(parent) >= 3:
            continue
        part = draw(PART)
        kind = draw(KIND)
        entries.append(((*parent, part), kind))
        if kind in ("package", "namespace", "raising_package"):
            folders.append((*parent, part))
    return entries


def _write_layout(root: Path, entries: list[tuple[tuple[str, ...], str]]) -> None:
    marker = root.parent / "imported"
    raising = f"open({str(marker)!r}, 'w').close()\nraise RuntimeError('imported')\n"
    for parts, kind in entries:
        try:  # a later entry clashing with an earlier one (a file where a folder goes) is left
            _write_entry(root.joinpath(*parts), kind, raising)
        except (FileExistsError, NotADirectoryError):
            continue


def _write_entry(target: Path, kind: str, raising: str) -> None:
    if kind == "missing":
        return
    if kind in ("package", "namespace", "raising_package"):
        target.mkdir(parents=True, exist_ok=True)
        if kind != "namespace":
            body = raising if kind == "raising_package" else ""
            (target / "__init__.py").write_text(body, "utf-8")
    elif kind in ("module", "raising_module"):
        target.parent.mkdir(parents=True, exist_ok=True)
        path = target.with_suffix(".py")
        if not path.exists():
            path.write_text(raising if kind == "raising_module" else "X = 1\n", "utf-8")
    else:  # a file named like a package, without .py
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.write_text("not python\n", "utf-8")


def _python_finds(root: Path, parts: list[str]) -> bool:
    """Python's rule for one path entry: a package (folder with ``__init__.py``), else a
    module ``NAME.py``, else a namespace package (a folder); a module has no submodules."""
    where = root
    for index, part in enumerate(parts):
        if not part.isidentifier():
            return False
        if (where / part / "__init__.py").is_file():
            where = where / part
        elif (where / part).with_suffix(".py").is_file():
            return index == len(parts) - 1
        elif (where / part).is_dir():
            where = where / part
        else:
            return False
    return True


FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(entries=layouts(), extra=st.lists(st.sampled_from(["", "zqa", "zqé", " ", "1x", "zqpkg"]),
                                         max_size=2), data=st.data())
def test_module_paths_over_odd_layouts_answer_as_python_would(
        tmp_path_factory: pytest.TempPathFactory, entries: list[tuple[tuple[str, ...], str]],
        extra: list[str], data: st.DataObject) -> None:
    base = tmp_path_factory.mktemp("layout")
    root = base / "src"
    root.mkdir()
    _write_layout(root, entries)
    names = [list(parts) for parts, _ in entries]
    candidates = [*names, *([*n, *extra] for n in names), extra]
    parts = data.draw(st.sampled_from([c for c in candidates if c]) if any(candidates)
                      else st.just(["zqa"]))
    type_name = ".".join([*parts, "ImageDataset"])
    before = set(sys.modules)
    problem = type_problem(type_name, [root])
    assert not (base / "imported").exists(), "a module was imported"
    assert not {m for m in set(sys.modules) - before if m.startswith("zq")}
    expected_found = _python_finds(root, parts)
    assert (problem is None) == expected_found, (type_name, entries, problem)


def test_the_layout_fuzzer_reaches_every_kind(tmp_path: Path) -> None:
    """The oracle above agrees with importlib itself on a layout of every kind at once."""
    root = tmp_path / "src"
    root.mkdir()
    kinds = ["package", "namespace", "module", "raising_package", "raising_module",
             "bare_file", "missing"]
    entries = [((f"zq{k}",), k) for k in kinds]
    entries += [((f"zq{k}", "zqchild"), "module") for k in ("package", "namespace")]
    _write_layout(root, entries)
    for parts in itertools.chain(([f"zq{k}"] for k in kinds),
                                 ([f"zq{k}", "zqchild"] for k in kinds)):
        found = type_problem(".".join([*parts, "C"]), [root]) is None
        assert found == _python_finds(root, parts), parts
    assert type_problem("zqnamespace.zqchild.C", [root]) is None
    assert type_problem("zqraising_package.C", [root]) is None
    assert not (tmp_path / "imported").exists()


@pytest.mark.parametrize("func", ["zq_ns.nodes.clean", "zq_raising.clean", "zq_file.clean",
                                  "zq_ns..clean", "zq_ns.nodes.clean.deeper", "zqé.clean"])
def test_odd_node_function_paths_end_in_located_errors(
        write_project: WriteProject, demo_yaml: str, monkeypatch: pytest.MonkeyPatch,
        func: str) -> None:
    files = {"src/zq_ns/nodes.py": "def clean(instances):\n    return instances\n",
             "src/zq_raising/__init__.py": "raise RuntimeError('boom')\n",
             "src/zq_file": "not a package\n",
             "src/zqé.py": "def clean(instances):\n    return instances\n"}
    text = edit_text(demo_yaml, ("name: demo\n", "name: demo\ncode: [., src]\n"),
                     ("func: demo_nodes.clean", f"func: {func}"))
    path = write_project(text, files=files)
    code, output = _validate(path, monkeypatch)
    result = check_project(path)
    if func == "zq_ns.nodes.clean":  # (a unicode module name is refused by the schema)
        assert code == 0, output
    else:
        assert code == 1 and result.errors, output
        assert all(e.line for e in result.errors)
