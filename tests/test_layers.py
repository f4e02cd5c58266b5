"""The house rules import-linter cannot state on its own.

import-linter's contracts (``lint-imports``, run by CI) see the imports Python runs. Two
ways of depending on a module hide from them: naming it in a string that is imported at
run time (``"kmlc.model.build:log_pipeline_model"``), and importing it inside a function
so that a cycle does not fail at import time. These tests fail on either, and on any
import cycle among kmlc's modules.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

import kmlc

PACKAGE = Path(kmlc.__file__).parent
# The entry points import the heavy layers on first use, so that `import kmlc` and
# `kmlc validate` stay light: downward imports inside their functions are the point.
ENTRY_POINTS = ("__init__.py", "cli/")
# Downward imports kept lazy on purpose, each promised by a test: (module, imported).
LAZY_BY_DESIGN = {
    # a run without the cache imports none of it (tests/run/test_cache.py::
    # test_without_the_cache_nothing_is_imported_hashed_or_written)
    ("run.py", "kmlc.cache"),
    # Jinja is imported only for a file that has templates (tests/run/test_refusals.py::
    # test_a_refusal_that_needs_only_the_file_imports_neither_kedro_nor_mlflow)
    ("config/loader.py", "kmlc.config.render"),
}
_DOTTED = re.compile(r"^kmlc(\.[A-Za-z_]\w*)+(:[A-Za-z_][\w.]*)?$")


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        yield name, ast.parse(path.read_text("utf-8"), filename=str(path))


def _dotted(name: str) -> str:
    """kmlc/model/runtime.py -> kmlc.model.runtime (a module may name itself)."""
    return "kmlc." + name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _is_module(dotted: str) -> bool:
    parts = dotted.split(".")[1:]
    target = PACKAGE.joinpath(*parts)
    return target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()


def _names_an_attribute(dotted: str) -> bool:
    """``kmlc.tracking.datasets.MlflowMetricDataset``: a module of two parts or more, then
    a name in it (a tag such as ``kmlc.sweep.trial`` has a one-part prefix)."""
    parts = dotted.split(".")
    return any(_is_module(".".join(parts[:end])) for end in range(3, len(parts)))


def _dict_keys(tree: ast.Module) -> set[int]:
    """ids of the string constants used as dict keys (MLflow tag names such as
    ``kmlc.sweep``), which name no module however they read."""
    return {id(key) for node in ast.walk(tree) if isinstance(node, ast.Dict)
            for key in node.keys if isinstance(key, ast.Constant)}


def _named_modules(tree: ast.Module, itself: str = "") -> list[tuple[int, str]]:
    keys = _dict_keys(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values:  # f"kmlc.sweep.{name}"
            head = node.values[0]
            if isinstance(head, ast.Constant) and str(head.value).startswith("kmlc."):
                found.append((node.lineno, str(head.value) + "{...}"))
            continue
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        match = _DOTTED.match(node.value)
        if match is None:
            continue
        module = node.value.split(":")[0]
        by_reference = ":" in node.value or module.count(".") >= 2 or id(node) not in keys
        named = _is_module(module) and by_reference and module != itself
        if named or (":" not in module and _names_an_attribute(module)):  # or a class path
            found.append((node.lineno, node.value))
    return found


def _function_imports(tree: ast.Module) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                names = [inner.module]
            elif isinstance(inner, ast.Import):
                names = [alias.name for alias in inner.names]
            else:
                continue
            found += [(inner.lineno, name) for name in names
                      if name == "kmlc" or name.startswith("kmlc.")]
    return found


def test_no_kmlc_module_is_named_in_a_string() -> None:
    named = [f"kmlc/{name}:{line}: {text!r}" for name, tree in _sources()
             for line, text in _named_modules(tree, _dotted(name))]
    assert named == [], "import the module (import-linter then sees it):\n" + "\n".join(named)


def test_no_kmlc_import_inside_a_function_outside_the_entry_points() -> None:
    hidden = [f"kmlc/{name}:{line}: import of {module} inside a function"
              for name, tree in _sources() if not name.startswith(ENTRY_POINTS)
              for line, module in _function_imports(tree)
              if (name, module) not in LAZY_BY_DESIGN]
    assert hidden == [], ("import it at module level (a function-level import is for a "
                          "heavy third-party package only):\n" + "\n".join(hidden))


def test_no_import_cycle_among_kmlc_modules() -> None:
    graph = grimp.build_graph("kmlc")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported == "kmlc" or imported == module:
                continue  # the package root re-exports; a module is its own
            if graph.chain_exists(imported, module):
                chain = graph.find_shortest_chain(imported, module) or ()
                cycles.append(" -> ".join((module, *chain)))
    assert cycles == [], "import cycles:\n" + "\n".join(sorted(set(cycles)))


@pytest.mark.parametrize("text, named", [
    ('x = "kmlc.config.loader:load_project"', True),
    ('importlib.import_module("kmlc.errors")', True),
    ('importlib.import_module(f"kmlc.sweep.{name}")', True),
    ('LAZY = {"load": "kmlc.importer"}', True),
    ('TYPES = {"mlflow.metric": "kmlc.tracking.datasets.MlflowMetricDataset"}', True),
    ('tags = {"kmlc.sweep": "grid"}', False),          # a tag key names no module
    ('tags = {"kmlc.sweep.trial": "3"}', False),       # no such module
    ('"""See ``kmlc.model.build`` for the rest."""', False),
])
def test_the_string_rule_tells_a_module_from_a_tag(text: str, named: bool) -> None:
    assert bool(_named_modules(ast.parse(text))) is named
