"""The digest of a run's dataset inputs is kmlc's content hash, the run cache's."""

from __future__ import annotations

import json
from pathlib import Path

from kmlc.cache.index import CacheIndex
from kmlc.tracking.lineage import content_digest


def test_the_digest_is_the_run_caches_content_hash(tmp_path: Path) -> None:
    file = tmp_path / "data.csv"
    file.write_bytes(b"id,x\n1,2\n" * 1000)
    folder = tmp_path / "parts"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.json").write_text('{"a": 1}')
    (folder / "sub" / "b.json").write_text('{"b": 2}')
    index = CacheIndex(tmp_path / "index.json")
    for path in (file, folder):
        assert content_digest(path) == index.content_hash(path) is not None
    assert content_digest(tmp_path / "missing.csv") is None
    before = content_digest(folder)
    (folder / "sub" / "b.json").write_text('{"b": 3}')
    assert content_digest(folder) != before


def test_an_input_with_integer_columns_is_logged_without_mlflows_signature_hint(
        tmp_path: Path) -> None:
    """MLflow's schema inference warns "Hint: Inferred schema contains integer column(s)"
    (advice for a model's signature): about a dataset input kmlc logs on its own, the user
    saw it under `kmlc run -q` (issue 27's trial). The schema is still logged."""
    import warnings

    import pandas as pd

    from kmlc.tracking.client import open_client
    from kmlc.tracking.lineage import log_dataset_inputs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = open_client(uri)
    run = client.create_run(client.create_experiment("lineage"))
    data = tmp_path / "houses.csv"
    data.write_text("id,rooms\n1,3\n2,4\n")
    record = {"name": "houses", "path": str(data), "source": data.as_uri(),
              "config_hash": "sha256:0", "type": "pandas.CSVDataset",
              "sample": pd.read_csv(data), "profile": {"num_rows": 2, "num_elements": 4},
              "context": "training"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log_dataset_inputs(tracking_uri=uri, run_id=run.info.run_id, records=[record])
    assert not [w for w in caught if "Inferred schema" in str(w.message)], caught
    (logged,) = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert json.loads(logged.dataset.schema)["mlflow_colspec"][1] == {
        "type": "long", "name": "rooms", "required": True}
    client.set_terminated(run.info.run_id)
