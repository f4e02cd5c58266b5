"""Dataset factories and transcoding, resolved by Kedro, compared with a plain Kedro run."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from kmlc.cli import main
from kmlc.compiler.project import compile_project
from kmlc.config.loader import check_project, load_project

# patterns of Kedro's factory docs: the most specific one wins ("{name}_csv" over "{a}_{b}")
CATALOG: dict[str, Any] = {
    "{name}_csv": {"type": "pandas.CSVDataset", "filepath": "data/{name}.csv"},
    "{layer}_{name}": {"type": "pickle.PickleDataset", "filepath": "data/{layer}/{name}.pkl"},
    # transcoding: one file, two ways to read it
    "table@pandas": {"type": "pandas.CSVDataset", "filepath": "data/table.csv"},
    "table@text": {"type": "text.TextDataset", "filepath": "data/table.csv"},
}

NODES = """\
import pandas as pd


def clean(cars):
    return cars.assign(power=cars.power * 2)


def summarise(cars):
    return pd.DataFrame({"rows": [len(cars)], "power": [cars.power.sum()]})


def count_lines(text):
    return len(text.strip().splitlines())
"""

YAML = """\
version: 1
name: factories
tracking: {disable_for: [__default__]}
datasets:
  "{name}_csv": {type: pandas.CSVDataset, filepath: "data/{name}.csv"}
  "{layer}_{name}": {type: pickle.PickleDataset, filepath: "data/{layer}/{name}.pkl"}
  table@pandas: {type: pandas.CSVDataset, filepath: data/table.csv}
  table@text: {type: text.TextDataset, filepath: data/table.csv}
nodes:
  - {name: clean, func: fnodes.clean, inputs: cars_csv, outputs: primary_cars}
  - {name: summarise, func: fnodes.summarise, inputs: primary_cars, outputs: table@pandas}
  - {name: count, func: fnodes.count_lines, inputs: table@text, outputs: lines_csv_count}
"""


def _project(root: Path, text: str = YAML) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"power": [1.0, 2.0, 3.0]}).to_csv(root / "data" / "cars.csv", index=False)
    (root / "fnodes.py").write_text(NODES)
    (root / "mlproject.yml").write_text(text)
    return root / "mlproject.yml"


def _kedro_run(root: Path) -> dict[str, Any]:
    from kedro.io import DataCatalog
    from kedro.pipeline import Pipeline, node
    from kedro.runner import SequentialRunner

    _project(root)
    sys.path.insert(0, str(root))
    try:
        fnodes = importlib.import_module("fnodes")
    finally:
        sys.path.remove(str(root))
    catalog = DataCatalog.from_config({
        name: {**cfg, "filepath": str(root / cfg["filepath"])} for name, cfg in CATALOG.items()})
    pipe = Pipeline([node(fnodes.clean, "cars_csv", "primary_cars", name="clean"),
                     node(fnodes.summarise, "primary_cars", "table@pandas", name="summarise"),
                     node(fnodes.count_lines, "table@text", "lines_csv_count", name="count")])
    SequentialRunner().run(pipe, catalog)
    return {name: type(catalog.get(name)).__name__
            for name in ("cars_csv", "primary_cars", "lines_csv_count")} | {
        "table": (root / "data/table.csv").read_text(),
        "lines": catalog.load("lines_csv_count"),
        "primary": pd.read_pickle(root / "data/primary/cars.pkl")}


def test_factories_and_transcoding_run_as_under_kedro(tmp_path: Path) -> None:
    reference = _kedro_run(tmp_path / "kedro")
    path = _project(tmp_path / "kmlc")
    result = CliRunner().invoke(main, ["validate", "-f", str(path)])
    assert result.exit_code == 0, result.output
    assert "dataset 'cars_csv' is made by the factory '{name}_csv'" in result.output
    assert "dataset 'primary_cars' is made by the factory '{layer}_{name}'" in result.output
    # Kedro's precedence: "lines_csv_count" matches both, the more specific one wins
    assert "'lines_csv_count' is made by the factory '{layer}_{name}'" in result.output
    compiled = compile_project(load_project(path))
    catalog = compiled.catalog()
    assert {name: type(catalog.get(name)).__name__
            for name in ("cars_csv", "primary_cars", "lines_csv_count")} == {
        k: v for k, v in reference.items() if k.endswith(("_csv", "_cars", "_count"))}
    result = CliRunner().invoke(main, ["run", "-f", str(path)])
    assert result.exit_code == 0, result.output
    root = path.parent
    assert (root / "data/table.csv").read_text() == reference["table"]
    assert pd.read_pickle(root / "data/lines/csv_count.pkl") == reference["lines"] == 2
    pd.testing.assert_frame_equal(pd.read_pickle(root / "data/primary/cars.pkl"),
                                  reference["primary"])


def test_a_name_no_factory_matches_keeps_did_you_mean(tmp_path: Path) -> None:
    text = YAML.replace('"{layer}_{name}"', '"{layer}_{name}_pkl"').replace(
        "inputs: cars_csv", "inputs: cars_cvs")
    result = check_project(_project(tmp_path, text))
    [error] = result.errors
    assert (error.code, error.path) == ("KMLC303", "nodes[0].inputs")
    assert error.hint == "no dataset factory matches it: {layer}_{name}_pkl, {name}_csv"
    # "{layer}_{name}" would match any a_b name, as in Kedro: without it, a close name
    close = check_project(_project(tmp_path, text.replace("cars_cvs", "cars_csv").replace(
        "inputs: primary_cars", "inputs: primary_cats"))).errors
    assert [(e.code, e.hint) for e in close] == [
        ("KMLC303", "did you mean 'primary_cars', the output of node 'clean' that no node "
                    "reads?")]


def test_a_factory_whose_entry_uses_an_unknown_placeholder_is_located(tmp_path: Path) -> None:
    text = YAML.replace('filepath: "data/{name}.csv"', 'filepath: "data/{nmae}.csv"')
    [error] = check_project(_project(tmp_path, text)).errors
    assert (error.code, error.path, error.line) == ("KMLC315", "datasets.{name}_csv", 5)
    assert "{placeholder}" in (error.hint or "")


def test_a_factory_naming_credentials_is_checked_and_matches_carry_them(tmp_path: Path) -> None:
    """A pattern's ``credentials:`` name is looked up in the credentials file like any
    entry's (found by the schema fuzzer: Kedro's resolver raised a KeyError traceback)."""
    text = YAML.replace('"{name}_csv": {type: pandas.CSVDataset, ',
                        '"{name}_csv": {type: pandas.CSVDataset, credentials: store, ')
    assert "credentials: store" in text
    text = text.replace("version: 1\n", "version: 1\ncredentials: creds.yml\n", 1)
    path = _project(tmp_path, text)
    (tmp_path / "creds.yml").write_text("other: {key: 1}\n")
    [error] = check_project(path).errors
    assert (error.code, error.path) == ("KMLC121", "datasets.{name}_csv.credentials")
    (tmp_path / "creds.yml").write_text("store: {key: 1}\n")
    spec = load_project(path)
    assert spec.datasets["cars_csv"].config["credentials"] == "store"
    assert spec.credentials["store"] == {"key": 1}
    assert compile_project(spec).catalog().exists("cars_csv")


@pytest.mark.slow
def test_validate_lists_the_factory_datasets_in_file_order_on_every_call(
        tmp_path: Path) -> None:
    """The "made by the factory" lines come out in the same (file) order whatever the
    process's string hash seed (a set's order used to decide it)."""
    import os
    import subprocess

    outputs = ", ".join(f"{layer}_{name}" for layer, name in (
        ("zeta", "a"), ("alpha", "b"), ("mid", "c"), ("beta", "d"), ("omega", "e")))
    path = _project(tmp_path, YAML + "  - {name: spread, func: fnodes.spread, inputs: "
                    f"primary_cars, outputs: [{outputs}]}}\n")
    (tmp_path / "fnodes.py").write_text(NODES + "\n\ndef spread(cars):\n"
                                        "    return cars, cars, cars, cars, cars\n")
    seen = set()
    for seed in ("1", "2", "3", "4"):
        done = subprocess.run([sys.executable, "-c", "from kmlc.cli import main; main()",
                               "validate", "-f", str(path)],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        seen.add(done.stdout)
    assert len(seen) == 1, seen
    made = [line.split("'")[1] for line in seen.pop().splitlines()
            if "made by the factory" in line]
    assert made == ["cars_csv", "primary_cars", "lines_csv_count", "zeta_a", "alpha_b",
                    "mid_c", "beta_d", "omega_e"]
