"""A port of the Kedro spaceflights tutorial's modular pipelines, node code unchanged.

The node functions are ``src/{{ cookiecutter.python_package }}/pipelines/data_science/
nodes.py`` of kedro-org/kedro-starters, spaceflights-pandas, at commit
7350687ba69dd7811bb2d9b90485db9ade9f9008, written into the project as data. The
pipelines are those of the Kedro docs' "namespace pipelines" tutorial: the same three
nodes run as ``active_modelling_pipeline`` and ``candidate_modelling_pipeline``.
``kedro_reference`` runs them under plain Kedro (its own ``pipeline(...)``, ``DataCatalog``
and ``SequentialRunner``), the reference every test compares kmlc with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# the starter's own file, as tests/data/kedro_starters keeps it (one copy in the tests)
DS_NODES = (Path(__file__).resolve().parent / "data" / "kedro_starters" / "spaceflights-pandas"
            / "template" / "src" / "{{ cookiecutter.python_package }}" / "pipelines"
            / "data_science" / "nodes.py").read_text(encoding="utf-8")

FEATURES = ["engines", "passenger_capacity", "crew", "d_check_complete",
            "moon_clearance_complete", "iata_approved", "company_rating",
            "review_scores_rating"]

OPTIONS = {"test_size": 0.2, "random_state": 3, "features": FEATURES}
CANDIDATE = {"test_size": 0.25, "random_state": 8, "features": FEATURES[:5]}

SPACEFLIGHTS_YAML = """\
version: 1
name: spaceflights
parameters:
  model_options: OPTIONS_JSON
  active_modelling_pipeline:
    model_options: OPTIONS_JSON
  candidate_modelling_pipeline:
    model_options: CANDIDATE_JSON
datasets:
  model_input_table: {type: pandas.CSVDataset, filepath: data/03_primary/model_input_table.csv}
  "{namespace}.regressor":
    type: pickle.PickleDataset
    filepath: "data/06_models/{namespace}/regressor.pickle"
  "{namespace}.metrics":
    type: json.JSONDataset
    filepath: "data/08_reporting/{namespace}/metrics.json"
nodes:
  - func: ds_nodes.split_data
    name: split_data_node
    inputs: [model_input_table, params:model_options]
    outputs: [X_train, X_test, y_train, y_test]
    tags: modelling
  - func: ds_nodes.train_model
    name: train_model_node
    inputs: [X_train, y_train]
    outputs: regressor
    tags: [modelling]
  - func: ds_nodes.evaluate_model
    name: evaluate_model_node
    inputs: [regressor, X_test, y_test]
    outputs: metrics
    tags: [modelling]
pipelines:
  active_modelling_pipeline:
    namespace: active_modelling_pipeline
    tags: [modelling]
    inputs: model_input_table
  candidate_modelling_pipeline:
    namespace: candidate_modelling_pipeline
    nodes: [split_data_node, train_model_node, evaluate_model_node]
    inputs: {model_input_table: model_input_table}
    tags: [candidate]
""".replace("OPTIONS_JSON", json.dumps(OPTIONS)).replace("CANDIDATE_JSON",
                                                       json.dumps(CANDIDATE))


def model_input_table() -> str:
    """A small model input table with the columns the nodes read, made deterministically."""
    rows = [",".join([*FEATURES, "price"])]
    for i in range(60):
        engines, capacity, crew = 1 + i % 4, 2 + (i * 7) % 9, 1 + (i * 5) % 6
        d_check, moon, iata = i % 2 == 0, i % 3 == 0, i % 5 != 0
        rating, reviews = ((i * 13) % 100) / 100, 50 + (i * 11) % 50
        price = (1000 * engines + 310 * capacity + 120 * crew + 250 * d_check + 90 * rating
                 + 7 * reviews + (i * 37) % 23)
        rows.append(",".join(str(v) for v in (engines, capacity, crew, d_check, moon, iata,
                                              rating, reviews, price)))
    return "\n".join(rows) + "\n"


def write_spaceflights(root: Path, text: str = SPACEFLIGHTS_YAML) -> Path:
    (root / "data" / "03_primary").mkdir(parents=True, exist_ok=True)
    (root / "data" / "03_primary" / "model_input_table.csv").write_text(model_input_table())
    (root / "ds_nodes.py").write_text(DS_NODES)
    path = root / "mlproject.yml"
    path.write_text(text)
    return path


def kedro_reference(root: Path, namespaces: tuple[str, ...] = (
        "active_modelling_pipeline", "candidate_modelling_pipeline")) -> dict[str, Any]:
    """The tutorial run by plain Kedro in ``root``: ``{namespace: metrics}`` and node names."""
    import importlib
    import sys

    from kedro.io import DataCatalog
    from kedro.pipeline import Node, Pipeline, pipeline
    from kedro.runner import SequentialRunner

    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "model_input_table.csv").write_text(model_input_table())
    (root / "ref_ds_nodes.py").write_text(DS_NODES)
    sys.path.insert(0, str(root))
    try:
        nodes = importlib.import_module("ref_ds_nodes")
    finally:
        sys.path.remove(str(root))
    instance = Pipeline([
        Node(nodes.split_data, ["model_input_table", "params:model_options"],
             ["X_train", "X_test", "y_train", "y_test"], name="split_data_node"),
        Node(nodes.train_model, ["X_train", "y_train"], "regressor", name="train_model_node"),
        Node(nodes.evaluate_model, ["regressor", "X_test", "y_test"], "metrics",
             name="evaluate_model_node"),
    ])
    pipe = sum((pipeline(instance, inputs="model_input_table", namespace=ns)
                for ns in namespaces), Pipeline([]))
    catalog = DataCatalog.from_config({
        "model_input_table": {"type": "pandas.CSVDataset",
                              "filepath": str(root / "data" / "model_input_table.csv")},
        "{namespace}.metrics": {"type": "json.JSONDataset",
                                "filepath": str(root / "data" / "{namespace}" / "metrics.json")},
    })
    params = {"active_modelling_pipeline": OPTIONS, "candidate_modelling_pipeline": CANDIDATE}
    for ns in namespaces:
        catalog[f"params:{ns}.model_options"] = params[ns]
    SequentialRunner().run(pipe, catalog)
    return {"nodes": sorted(n.name for n in pipe.nodes),
            "metrics": {ns: json.loads((root / "data" / ns / "metrics.json").read_text())
                        for ns in namespaces}}
