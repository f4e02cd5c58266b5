"""The logged model installs from its own requirements, where kmlc is not installed.

The test installs the spaceflights model's ``requirements.txt`` from the package index
into a new environment once, through ``mlflow models serve --env-manager uv`` (``uv venv``
on the logged Python version + ``uv pip install``: seconds on uv's warm cache, where
``--env-manager virtualenv``'s pyenv + ``python -m venv`` + pip took two minutes of the
suite on 2 cores), then serves from it and predicts in it. uv only reads the package index:
it may not download a Python (``UV_PYTHON_DOWNLOADS=never``); the interpreter is the
machine's, found on PATH.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from tools import which

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

PREDICT = textwrap.dedent('''
    import importlib.util, json, sys
    import mlflow.pyfunc
    from mlflow.models import Model

    path = sys.argv[1]
    example = Model.load(path).load_input_example(path)
    model = mlflow.pyfunc.load_model(path)
    out = [model.predict(example) for _ in range(2)]
    print(json.dumps({"kmlc": importlib.util.find_spec("kmlc") is not None,
                      "same": out[0].equals(out[1]), "rows": out[0].to_dict("split")}))
''')


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _expected(model_dir: Path) -> dict:
    import mlflow.pyfunc
    from mlflow.models import Model

    example = Model.load(str(model_dir)).load_input_example(str(model_dir))
    return mlflow.pyfunc.load_model(str(model_dir)).predict(example).to_dict("split")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_fresh_environment_installs_the_requirements_serves_and_predicts(
        spaceflights_model, tmp_path: Path) -> None:
    """One install, two checks: ``mlflow models serve --env-manager uv`` makes a new venv
    (the machine's interpreter of the logged Python version) and installs the model's
    ``requirements.txt`` into it from the package index; the served predictions are kmlc's,
    and in that same fresh environment, where kmlc is not installed, the model loads and
    predicts the same in a new process."""
    which("uv", reason="MLflow's uv environment manager needs uv (the test extra installs it)")
    import pandas as pd
    from mlflow.models import Model

    _, model_dir = spaceflights_model
    port = _free_port()
    env = _clean_env()
    env["MLFLOW_ENV_ROOT"] = str(tmp_path / "envs")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["UV_PYTHON_DOWNLOADS"] = "never"  # the package index is the only network
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir),
         "--env-manager", "uv", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 1000  # the environment is built first
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    text = (tmp_path / "serve.log").read_text(errors="replace")
                    raise AssertionError(f"the model server did not start: {text[-3000:]}"
                                         ) from None
                time.sleep(2)
        example = Model.load(str(model_dir)).load_input_example(str(model_dir))
        body = json.dumps({"dataframe_split": example.to_dict(orient="split")}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.loads(response.read())["predictions"]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        log.close()
    served = pd.DataFrame(predictions)
    expected = pd.DataFrame(**_expected(model_dir))
    assert served["shuttle_id"].tolist() == expected["shuttle_id"].tolist()
    assert served["price"].tolist() == pytest.approx(expected["price"].tolist())
    # the environment MLflow made from the requirements: the model alone, in a new process
    (python,) = (tmp_path / "envs").glob("*/bin/python")
    done = subprocess.run([str(python), "-c", PREDICT, str(model_dir)], capture_output=True,
                          text=True, cwd=tmp_path, env=_clean_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["kmlc"] is False and report["same"]
    assert report["rows"] == json.loads(json.dumps(_expected(model_dir)))
