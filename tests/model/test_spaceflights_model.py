"""The logged model of a public Kedro project behaves as its inference pipeline under Kedro.

The project is kedro-starters' spaceflights-pandas (tests/data/spaceflights, node code
unchanged, see its README): inference takes raw shuttle rows that
``preprocess_shuttles`` cleans in place, and packs the raw companies table (a training
*input*) that ``preprocess_companies`` changes in place.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


# Run in a fresh process, outside the project: the model, then the same nodes under Kedro.
CHECK = textwrap.dedent('''
    import json, pickle, sys
    from pathlib import Path

    import mlflow.pyfunc
    import pandas as pd

    model_dir, project = Path(sys.argv[1]), Path(sys.argv[2])
    raw = pd.read_excel(project / "data/01_raw/shuttles.xlsx", engine="openpyxl").iloc[:60]
    untouched = raw.copy()
    model = mlflow.pyfunc.load_model(str(model_dir))
    results = [model.predict(raw) for _ in range(3)]
    inner = model.unwrap_python_model()
    results.append(inner.predict(None, raw))  # no pyfunc schema step in between
    same = all(r.equals(results[0]) for r in results)
    caller_unchanged = raw.equals(untouched)

    # the same nodes under Kedro: the starter's own data_processing pipeline, a runner,
    # a catalog of in-memory datasets (Kedro copies what each node is given)
    sys.path.insert(0, str(project / "src"))
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import Node, Pipeline
    from kedro.runner import SequentialRunner
    from spaceflights.pipelines.data_processing import create_pipeline
    import price_model

    latest = sorted((project / "data/06_models/regressor.pickle").iterdir())[-1]
    with open(latest / "regressor.pickle", "rb") as handle:
        regressor = pickle.load(handle)
    options = {"test_size": 0.2, "random_state": 3,
               "features": ["engines", "passenger_capacity", "crew", "d_check_complete",
                            "moon_clearance_complete", "iata_approved", "company_rating",
                            "review_scores_rating"]}
    catalog = DataCatalog({
        "shuttles": MemoryDataset(raw.copy()),
        "companies": MemoryDataset(pd.read_csv(project / "data/01_raw/companies.csv")),
        "reviews": MemoryDataset(pd.read_csv(project / "data/01_raw/reviews.csv")),
        "regressor": MemoryDataset(regressor),
        "params:model_options": MemoryDataset(options),
        "price_predictions": MemoryDataset(),
    })
    pipeline = create_pipeline() + Pipeline([Node(
        price_model.predict_price, ["regressor", "model_input_table", "params:model_options"],
        "price_predictions")])
    SequentialRunner().run(pipeline, catalog)
    under_kedro = catalog.load("price_predictions")
    pd.testing.assert_frame_equal(results[0], under_kedro)
    try:
        inner.predict(None, raw, params={"model_options.tests_size": 0.5})
        unknown = None
    except Exception as exc:
        unknown = str(exc)
    print(json.dumps({"same": same, "caller_unchanged": caller_unchanged,
                      "rows": len(results[0]), "unknown": unknown}))
''')


def test_model_predicts_like_kedro_call_after_call(spaceflights_model: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    project, model_dir = spaceflights_model
    done = subprocess.run([sys.executable, "-c", CHECK, str(model_dir), str(project)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["same"] and report["caller_unchanged"]
    assert report["rows"] > 0
    assert report["unknown"] is not None and "model_options.tests_size" in report["unknown"]
    assert "model_options.test_size" in report["unknown"]  # the known ones are listed


def test_plan_copies_only_what_the_nodes_change(spaceflights_model: tuple[Path, Path]) -> None:
    _, model_dir = spaceflights_model
    plan = json.loads((model_dir / "artifacts" / "kmlc_plan.json").read_text())
    copies = {step["name"]: step["copies"] for step in plan["steps"]}
    assert copies == {"preprocess_companies_node": {"companies": "copy"},
                      "preprocess_shuttles_node": {"shuttles": "copy"},
                      "create_model_input_table_node": {}, "predict_price_node": {}}
    packed = {a["name"]: a["produced"] for a in plan["artifacts"]}
    assert packed == {"companies": False, "reviews": False, "regressor": True}


def test_signature_and_example_are_the_raw_rows(spaceflights_model: tuple[Path, Path]) -> None:
    import pandas as pd
    from mlflow.models import Model

    project, model_dir = spaceflights_model
    meta = Model.load(str(model_dir))
    inputs = {col.name: col.type.name for col in meta.signature.inputs.inputs}
    assert inputs["d_check_complete"] == "string" and inputs["price"] == "string"
    assert [col.name for col in meta.signature.outputs.inputs] == ["shuttle_id", "price"]
    params = {p.name: p.default for p in meta.signature.params.params}
    assert params["model_options.test_size"] == 0.2
    assert params["model_options.features"][0] == "engines"
    example = meta.load_input_example(str(model_dir))
    raw = pd.read_excel(project / "data/01_raw/shuttles.xlsx", engine="openpyxl")
    assert list(example["price"]) == list(raw["price"].iloc[:len(example)])
    assert example["price"].iloc[0].startswith("$")


def test_requirements_and_code_are_what_inference_needs(spaceflights_model: tuple[Path, Path]
                                                        ) -> None:
    _, model_dir = spaceflights_model
    lines = (model_dir / "requirements.txt").read_text().split()
    names = {line.split("==")[0].lower() for line in lines if "==" in line}
    assert "kmlc" not in names
    # only the regressor's pickle names sklearn: no inference module imports it
    assert {"scikit-learn", "pandas", "kedro", "kedro-datasets", "mlflow"} <= names
    assert not names & {"matplotlib", "plotly", "seaborn"}  # the reporting nodes' imports
    shipped = sorted(str(p.relative_to(model_dir / "code"))
                     for p in (model_dir / "code").rglob("*") if p.is_file())
    assert shipped == ["price_model.py", "spaceflights/__init__.py",
                       "spaceflights/pipelines/__init__.py",
                       "spaceflights/pipelines/data_processing/__init__.py",
                       "spaceflights/pipelines/data_processing/nodes.py",
                       "spaceflights/pipelines/data_processing/pipeline.py"]
