"""``model.keys``: the predictions carry the row keys, so that served output can be joined
to the rows sent. The model is trained for real, loaded by pyfunc in a fresh process and
serialized as MLflow's scoring server does; ``kmlc predict`` writes the keys too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mini_project import MINI_YAML, write_mini

from kmlc.model.runtime import with_keys

KEYED = MINI_YAML.replace("model:\n  input: instances\n", "model:\n  input: instances\n"
                          "  keys: [id]\n")

SERVE = """
import io, json, sys
import mlflow, pandas as pd
from mlflow.pyfunc.scoring_server import predictions_to_json
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
rows = pd.read_csv(sys.argv[3]).sample(frac=1, random_state=3)  # any order
out = io.StringIO()
predictions_to_json(model.predict(rows), out)  # what `mlflow models serve` answers
print(json.dumps({"sent": rows["id"].tolist(), "served": json.loads(out.getvalue()),
                  "inputs": [c.name for c in model.metadata.get_output_schema().inputs]}))
"""


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The mini project with ``model.keys: [id]``, trained: (file, store uri, model uri)."""
    from kmlc import RunOptions, load_project, run_pipeline

    path = write_mini(tmp_path_factory.mktemp("keys") / "proj", KEYED)
    result = run_pipeline(load_project(path), "training", RunOptions(progress=False))
    assert result.status == "FINISHED" and result.model_uri
    return path, str(result.tracking_uri), str(result.model_uri)


@pytest.mark.slow
def test_served_predictions_carry_the_row_key(keyed) -> None:
    path, uri, model_uri = keyed
    done = subprocess.run([sys.executable, "-c", SERVE, uri, model_uri,
                           str(path.parent / "data/01_raw/instances.csv")],
                          capture_output=True, text=True, timeout=300, cwd=path.parent.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    served = pd.DataFrame(out["served"]["predictions"])
    assert list(served.columns) == ["id", "proba", "label"]
    assert served["id"].tolist() == out["sent"]  # the rows' own ids, in the order sent
    assert out["inputs"] == ["id", "proba", "label"]  # the signature says so too
    # joined back to the rows sent, each prediction is the one for its row
    expected = _predict_by_hand(path).set_index("id")
    joined = served.set_index("id").loc[expected.index]
    assert joined["label"].tolist() == expected["label"].tolist()


def _predict_by_hand(path: Path) -> pd.DataFrame:
    import pickle

    rows = pd.read_csv(path.parent / "data/01_raw/instances.csv")
    with open(path.parent / "data/06_models/classifier.pkl", "rb") as handle:
        classifier = pickle.load(handle)
    features = rows.set_index("id")[["x1", "x2"]].astype(float)
    proba = classifier.predict_proba(features)[:, 1]
    return pd.DataFrame({"id": features.index, "label": (proba > 0.5).astype(int)})


@pytest.mark.slow
def test_kmlc_predict_writes_the_row_key(keyed, tmp_path: Path) -> None:
    path, uri, model_uri = keyed
    rows = pd.read_csv(path.parent / "data/01_raw/instances.csv").iloc[::-1]
    sent = tmp_path / "rows.csv"
    rows.to_csv(sent, index=False)
    out = tmp_path / "pred.csv"
    done = subprocess.run([str(Path(sys.executable).parent / "kmlc"), "predict", "-m",
                           model_uri, "-i", str(sent), "-o", str(out), "--tracking-uri", uri],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["id", "proba", "label"]
    assert frame["id"].tolist() == rows["id"].tolist()


def test_keys_come_from_the_rows_when_inference_dropped_them() -> None:
    rows = pd.DataFrame({"id": [7, 3, 5], "region": ["a", "b", "c"], "x": [1.0, 2.0, 3.0]})
    output = pd.Series([0.1, 0.2, 0.3], name="score")
    keyed = with_keys(output, rows, ["id", "region"])
    assert keyed.to_dict(orient="list") == {"id": [7, 3, 5], "region": ["a", "b", "c"],
                                            "score": [0.1, 0.2, 0.3]}
    with pytest.raises(KeyError, match="'user' is neither a column or index"):
        with_keys(output, rows, ["user"])
    with pytest.raises(ValueError, match="3 rows in, 2 predictions out"):
        with_keys(output.iloc[:2], rows, ["id"])
