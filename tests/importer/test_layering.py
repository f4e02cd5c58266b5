"""The importer sits on top: nothing of config, compiler, tracking or model imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kmlc"


@pytest.mark.parametrize("layer", ["config", "compiler", "tracking", "model"])
def test_lower_layers_do_not_import_the_importer(layer: str) -> None:
    found = []
    for file in sorted((PACKAGE / layer).glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text("utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{file.name}: {n}" for n in names if n.startswith("kmlc.importer")]
    assert (PACKAGE / layer / "__init__.py").exists()
    assert found == []
