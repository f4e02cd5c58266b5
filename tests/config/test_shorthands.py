"""The registry of dataset-type shorthands: the schema, the catalog's classes and the
stages that read it agree with it, and ``config`` stays the plain-data bottom layer."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import grimp
import pytest
from kedro.io import AbstractDataset

from kmlc.compiler.catalog import catalog_config
from kmlc.config.loader import load_project
from kmlc.config.schema import load_schema
from kmlc.config.shorthands import MLFLOW_TYPES, SHORTHANDS
from kmlc.config.target import tracking_target
from kmlc.tracking.datasets import SHORTHAND_CLASSES

ROOT = Path(__file__).resolve().parents[2]


def _type_schema() -> dict[str, Any]:
    return dict(load_schema()["$defs"]["dataset"])


def test_the_schema_offers_exactly_the_registry_s_shorthands() -> None:
    dataset = _type_schema()
    offered = [e for e in dataset["properties"]["type"]["examples"] if e.startswith("mlflow.")]
    assert offered == list(MLFLOW_TYPES)
    branches = [rule["if"]["properties"]["type"] for rule in dataset["allOf"]]
    consts = [b["const"] for b in branches if "const" in b]
    assert consts == list(MLFLOW_TYPES)  # one branch of arguments per shorthand
    others = [b["not"]["enum"] for b in branches if "not" in b]
    assert others == [list(MLFLOW_TYPES)]  # and the arguments of every other type
    description = dataset["properties"]["type"]["description"]
    assert all(name in description for name in MLFLOW_TYPES)


def test_every_tracking_shorthand_has_its_class_and_no_other() -> None:
    assert set(SHORTHAND_CLASSES) == set(MLFLOW_TYPES)
    assert all(issubclass(cls, AbstractDataset) for cls in SHORTHAND_CLASSES.values())


def test_the_catalog_builds_each_shorthand_s_class_with_its_name_default(
        write_project, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    text = """\
version: 1
name: shorthands
datasets:
  raw: {type: pandas.CSVDataset, filepath: data/raw.csv}
  score: {type: mlflow.metric}
  curve: {type: mlflow.metric_history}
  report: {type: mlflow.metrics}
  fitted: {type: mlflow.model, flavor: mlflow.sklearn}
nodes:
  - {name: fit, func: demo_nodes.fit, inputs: raw, outputs: [score, curve, report, fitted]}
"""
    nodes = "def fit(raw):\n    return 1.0, [1.0], {'a': 1.0}, None\n"
    spec = load_project(write_project(text, nodes))
    target = tracking_target(spec)
    config = catalog_config(spec, target=target)
    for name, ds in spec.datasets.items():
        kind = SHORTHANDS.get(ds.type)
        if kind is None:
            assert config[name]["type"] == "pandas.CSVDataset"
            continue
        assert config[name]["type"] is SHORTHAND_CLASSES[ds.type]  # a class, not a path
        assert config[name]["tracking_uri"] == target.uri
        if kind.name_key is not None:
            assert config[name][kind.name_key] == name


def _strongly_connected(graph: grimp.ImportGraph, package: str) -> list[set[str]]:
    modules = sorted(m for m in graph.modules if m.startswith(package + "."))
    reach = {m: {m2 for m2 in modules if m2 != m and graph.chain_exists(m, m2)}
             for m in modules}
    return [{m, *(o for o in reach[m] if m in reach[o])} for m in modules
            if any(m in reach[o] for o in reach[m])]


def test_config_has_no_import_cycle() -> None:
    """Function-level imports included. That no import hides in a function to dodge a cycle
    is tests/test_layers.py's rule, for every module of kmlc (with its documented lazy
    imports)."""
    graph = grimp.build_graph("kmlc")  # function-level and TYPE_CHECKING imports included
    assert _strongly_connected(graph, "kmlc.config") == []


@pytest.mark.parametrize("module", ["kmlc.config.spec", "kmlc.config.shorthands"])
def test_spec_and_the_registry_are_plain_data_naming_no_kmlc_module(module: str) -> None:
    path = ROOT / Path(*module.split(".")).with_suffix(".py")
    strings = [n.value for n in ast.walk(ast.parse(path.read_text("utf-8")))
               if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert [s for s in strings if "kmlc." in s and not s.startswith(("``", " "))
            and "\n" not in s] == []
