"""Shared fixtures: a quiet environment and small projects written into ``tmp_path``."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

try:
    import forkserver
except ImportError:  # this file copied into another folder by a pytester test: no servers
    forkserver = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parent.parent
IRIS = REPO / "examples" / "iris" / "mlproject.yml"

# A small valid project; line numbers are relied upon by the tests, edit with care.
DEMO_YAML = """\
version: 1
name: demo
parameters:
  alpha: 0.5
  split: {ratio: 0.2, seed: 7}
datasets:
  instances: {type: pandas.CSVDataset, filepath: data/instances.csv}
  model_file: {type: pickle.PickleDataset, filepath: data/model.pkl}
  score: {type: mlflow.metric}
  predictions: {type: pandas.CSVDataset, filepath: data/predictions.csv}
nodes:
  - name: clean
    func: demo_nodes.clean
    inputs: instances
    outputs: features
    tags: [training, inference]
  - name: fit
    func: demo_nodes.fit
    inputs: [features, params:alpha, params:split]
    outputs: model_file
    tags: [training]
  - name: evaluate
    func: demo_nodes.evaluate
    inputs: {model: model_file, features: features}
    outputs: score
    tags: [training]
  - name: predict
    func: demo_nodes.predict
    inputs: [model_file, features]
    outputs: predictions
    tags: [inference]
pipelines:
  etl: {tags: [training]}
model:
  input: instances
environments:
  prod:
    parameters: {alpha: 0.9}
    tracking: {experiment: demo-prod}
"""

DEMO_NODES = '''\
"""Node functions of the demo project: no third-party imports."""

CONSTANT = 3


def clean(instances):
    return instances


def fit(features, alpha, split):
    return (features, alpha, split)


def evaluate(model, features):
    return 1.0


def predict(model_file, features):
    return features


def no_args():
    return 1
'''

WriteProject = Callable[..., Path]


@pytest.fixture(autouse=True)
def _quiet_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No telemetry, and no ``__pycache__`` folders in the projects under test."""
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """The process environment as the test found it: libraries called in process leave
    variables behind (Kedro's bootstrap adds the project's ``src`` to ``PYTHONPATH``,
    Dask's multiprocessing scheduler sets ``PYTHONHASHSEED``), which the next test's
    subprocesses would inherit."""
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _mlflow_global_uri() -> Iterator[None]:
    """A test that sets MLflow's process-wide tracking URI gets it restored after."""
    from mini_project import mlflow_uri_restored

    with mlflow_uri_restored():
        yield


@pytest.fixture(autouse=True)
def _no_active_mlflow_run() -> Iterator[None]:
    """MLflow's active-run stack is process-wide (per thread): a run a test leaves active
    would become the parent of the next test's runs. After each test the stack is emptied,
    and a test that left a run active fails, naming it (kmlc must pop every run it starts).
    """
    yield
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is None:  # the test never imported MLflow: nothing can be active
        return
    leaked = [run.info.run_id for stack in fluent._active_run_stack.get_all_thread_values()
              .values() for run in stack]
    for stack in fluent._active_run_stack.get_all_thread_values().values():
        stack.clear()
    fluent._last_active_run_id.set(None)
    if leaked:
        pytest.fail(f"the test left MLflow run(s) {leaked} active (never ended nor popped)",
                    pytrace=False)


@pytest.fixture
def demo_yaml() -> str:
    return DEMO_YAML


@pytest.fixture
def demo_nodes() -> str:
    return DEMO_NODES


@pytest.fixture
def iris_file() -> Path:
    return IRIS


@pytest.fixture
def write_project(tmp_path: Path) -> WriteProject:
    """``write_project(text=DEMO_YAML, nodes=DEMO_NODES, name="mlproject.yml", files=None)``.

    Writes the project file, ``demo_nodes.py`` and any extra ``files`` (relative path ->
    text or bytes) into ``tmp_path`` and returns the project file's path.
    """

    def write(text: str | bytes = DEMO_YAML, nodes: str | None = DEMO_NODES,
              name: str = "mlproject.yml", files: dict[str, str | bytes] | None = None) -> Path:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        if nodes is not None:
            (tmp_path / "demo_nodes.py").write_text(nodes, encoding="utf-8")
        for rel, content in (files or {}).items():
            target = tmp_path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        return path

    return write


@pytest.fixture
def mini(tmp_path: Path) -> Callable[..., Path]:
    """``mini(text=MINI_YAML, nodes=MINI_NODES)`` writes tmp_path/proj; returns its file."""
    from mini_project import MINI_NODES, MINI_YAML, write_mini

    def write(text: str = MINI_YAML, nodes: str = MINI_NODES) -> Path:
        return write_mini(tmp_path / "proj", text, nodes)

    return write


def pytest_configure(config: pytest.Config) -> None:
    """The fork servers of ``tests/forkserver.py``: started by the session's first process
    (the xdist workers inherit their folder), then this process's ``kmlc`` commands and
    tracking workers routed through them. ``KMLC_TEST_FORKSERVER=0``: none."""
    if forkserver is None or os.environ.get(forkserver.ENV) == "0":
        return
    if not hasattr(config, "workerinput") and not os.environ.get(forkserver.ENV):
        folder = Path(tempfile.mkdtemp(prefix="kmlc-fs-"))
        config.stash[_SERVERS] = forkserver.Servers(folder, folder / "servers.log")
        os.environ[forkserver.ENV] = str(folder)
    forkserver.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    servers = config.stash.get(_SERVERS, None)
    if servers is not None:
        worker = sys.modules.get("kmlc.tracking.worker")
        remote = getattr(worker, "_remote", None)
        if remote is not None:  # this process's tracking worker, forked by a server
            remote.close()
        servers.close()
        log = os.environ.get("KMLC_TEST_FORKSERVER_LOG")  # where to keep the servers' log
        if log:
            shutil.copyfile(servers.folder / "servers.log", log)
        shutil.rmtree(servers.folder, ignore_errors=True)
        os.environ.pop("KMLC_TEST_FORKSERVER", None)


_SERVERS = pytest.StashKey["forkserver.Servers"]()
_BUILTIN_SCOPED = {"tmp_path_factory", "worker_id", "testrun_uid", "monkeysession"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``-n N --dist loadgroup``), a costly shared fixture is made once:
    the tests that use a session-scoped fixture of ours (a trained project, the MLflow
    servers) go to one worker per fixture, those that use a module-scoped one to one worker
    per file; every other test is handed to whichever worker is free."""
    server_dir = Path(__file__).resolve().parent / "server"
    groups: dict[str, str | None] = {}
    for item in items:
        path = Path(str(item.path)).resolve()
        if server_dir in path.parents:
            group = "server"
        else:
            info = getattr(item, "_fixtureinfo", None)
            defs = info.name2fixturedefs if info is not None else {}
            group = None
            for name in getattr(item, "fixturenames", ()):
                if name in _BUILTIN_SCOPED or name not in defs:
                    continue
                scope = defs[name][-1].scope
                if scope == "session":
                    group = f"session:{name}"
                    break
                if scope in ("module", "package") and group is None:
                    group = f"file:{path}"
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        groups[item.nodeid] = group
    if getattr(config.option, "numprocesses", None):
        # the long groups are handed out first, so that they never start last and alone
        # (a stable sort: each group and file keeps its order)
        items.sort(key=lambda item: _GROUP_ORDER.get(
            (groups[item.nodeid] or "").partition(":")[0], 3))


_GROUP_ORDER = {"server": 0, "session": 1, "file": 2}
