#!/bin/sh
# Records what kedro-mlflow's own model of this project predicts on stand_in.RAW_ROWS, once:
# golden_predictions.json, read by tests/importer/test_kedro_mlflow_tutorial.py.
#
# Run from this folder, with a venv holding kedro-mlflow and the project's dependencies
# (not kmlc's: kedro-mlflow is no dependency of kmlc). The one used:
#   python3 -m venv /work/venv-kmf
#   /work/venv-kmf/bin/pip install kedro-mlflow==2.0.3 kedro==1.7.0 \
#       "kedro-datasets[pandas-parquetdataset]==9.6.0" xgboost-cpu==3.2.0 \
#       keras-preprocessing==1.1.2 scikit-learn==1.9.1 matplotlib==3.11.2 pandas==3.1.1 \
#       numpy==2.4.6 mlflow==3.17.2 pyyaml datasets==5.2.0
#   VENV=/work/venv-kmf sh make_golden.sh
set -eu
VENV=${VENV:?the venv holding kedro-mlflow}
HERE=$(pwd)
WORK=$(mktemp -d)
cp -r conf src data pyproject.toml "$WORK/"
"$VENV/bin/python" stand_in.py "$WORK"
mkdir -p "$WORK/conf/local"
cat > "$WORK/conf/local/mlflow.yml" <<YML
server:
  mlflow_tracking_uri: sqlite:///$WORK/mlflow.db
tracking:
  experiment:
    name: kedro_mlflow_tutorial
YML
(cd "$WORK" && DO_NOT_TRACK=1 KEDRO_DISABLE_TELEMETRY=true \
    "$VENV/bin/kedro" run --pipeline training)
# a fresh process, outside the project: the model as kedro-mlflow logged it, called 3 times.
# kedro-mlflow's model refers to the project's functions by module: it loads only where the
# project's package is importable (the tutorial pip-installs it: its conda_env names it),
# hence PYTHONPATH, for this process only
cd "$(mktemp -d)"
PYTHONPATH="$WORK/src" "$VENV/bin/python" - "$WORK" "$HERE" <<'PY'
import json, sys
from pathlib import Path

import kedro_mlflow
import mlflow
import pandas as pd

work, here = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(here))
from stand_in import RAW_ROWS  # noqa: E402

mlflow.set_tracking_uri(f"sqlite:///{work}/mlflow.db")
experiment = mlflow.get_experiment_by_name("kedro_mlflow_tutorial")
(logged,) = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id],
                                        output_format="list")
model = mlflow.pyfunc.load_model(f"models:/{logged.model_id}")
calls = [[str(v) for v in model.predict(pd.DataFrame({"text": RAW_ROWS}))]
         for _ in range(3)]
assert calls[0] == calls[1] == calls[2], calls
golden = {"kedro_mlflow": kedro_mlflow.__version__, "model_name": logged.name,
          "rows": RAW_ROWS, "predictions": calls[0]}
(here / "golden_predictions.json").write_text(json.dumps(golden, indent=2) + "\n")
print(json.dumps(golden, indent=2))
PY
