"""Every dependency of the model's code is an import the contracts see: no kmlc module
named in a string, no kmlc import hidden inside a function (which once hid a cycle
between model/build.py and model/promote.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import kmlc

PACKAGE = Path(kmlc.__file__).parent
MODULE_FUNCTION = re.compile(r"kmlc(\.\w+)+:\w+")


def _functions(tree: ast.AST) -> list[ast.AST]:
    return [node for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_no_kmlc_import_inside_a_function_of_the_model() -> None:
    found = []
    for path in sorted((PACKAGE / "model").glob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for function in _functions(tree):
            for node in ast.walk(function):
                names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                         else [a.name for a in node.names] if isinstance(node, ast.Import)
                         else [])
                found += [f"{path.name}:{node.lineno} {name}" for name in names
                          if name == "kmlc" or name.startswith("kmlc.")]
    assert found == []


def test_no_kmlc_function_named_in_a_string_nor_imported_by_name() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and MODULE_FUNCTION.fullmatch(node.value)):
                found.append(f"{where}:{node.lineno} {node.value!r}")
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
                    and node.args and isinstance(node.args[0], ast.Constant)
                    and str(node.args[0].value).startswith("kmlc")):
                found.append(f"{where}:{node.lineno} import_module({node.args[0].value!r})")
    assert found == []
