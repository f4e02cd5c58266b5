"""Where runs go: ``--tracking-uri``, the file's ``tracking.uri`` (after ``--env``),
``MLFLOW_TRACKING_URI``, then ``sqlite:///mlflow.db`` beside the file; the registry:
``tracking.registry_uri``, ``MLFLOW_REGISTRY_URI``, else the tracking store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from kmlc.cli import main
from kmlc.config.loader import load_project
from kmlc.config.target import tracking_target
from kmlc.errors import TrackingError
from kmlc.tracking.session import RunSession

_FILE_URI = "sqlite:///from-file.db"
_ENV_URI = "sqlite:////env/from-env.db"
_CLI_URI = "sqlite:///from-cli.db"


def _project(write_project, tracking: str = "", envs: str = "") -> Path:
    # the root conftest's DEMO_YAML, by path: `import conftest` may name another folder's
    import importlib.util

    root = Path(__file__).resolve().parent.parent / "conftest.py"
    found = importlib.util.spec_from_file_location("kmlc_tests_root_conftest", root)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    text = module.DEMO_YAML.replace("name: demo\n", f"name: demo\n{tracking}{envs}", 1)
    return write_project(text,
                         files={"data/instances.csv": "x\n1\n2\n3\n"})


# (file sets tracking.uri, env var set, --tracking-uri) -> (source, uri relative to root)
_TABLE = [
    (False, False, False, "default", "mlflow.db"),
    (False, True, False, "MLFLOW_TRACKING_URI", None),
    (True, False, False, "tracking.uri", "from-file.db"),
    (True, True, False, "tracking.uri", "from-file.db"),
    (False, False, True, "--tracking-uri", "from-cli.db"),
    (False, True, True, "--tracking-uri", "from-cli.db"),
    (True, False, True, "--tracking-uri", "from-cli.db"),
    (True, True, True, "--tracking-uri", "from-cli.db"),
]


@pytest.mark.parametrize(("in_file", "in_env", "on_cli", "source", "rel"), _TABLE)
def test_the_tracking_uri_precedence_table(write_project, monkeypatch, in_file, in_env,
                                           on_cli, source, rel) -> None:
    if in_env:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", _ENV_URI)
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = _project(write_project, f"tracking: {{uri: {_FILE_URI}}}\n" if in_file else "")
    spec = load_project(path)
    target = tracking_target(spec, _CLI_URI if on_cli else None)
    assert target.source == source
    expected = _ENV_URI if rel is None else f"sqlite:///{(path.parent / rel).resolve()}"
    assert target.uri == expected
    assert target.registry_uri is None and target.registry_source is None
    # the run's session uses the same answer
    loaded = load_project(path, tracking_uri=_CLI_URI if on_cli else None)
    session = RunSession(loaded, "__default__")
    assert (session.uri, session.target.source) == (expected, source)


def test_env_overlay_sets_the_file_uri_which_beats_the_variable(write_project,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _ENV_URI)
    path = _project(write_project)
    path.write_text(path.read_text().replace(
        "tracking: {experiment: demo-prod}",
        "tracking: {experiment: demo-prod, uri: 'sqlite:///prod.db'}"))
    assert tracking_target(load_project(path)).source == "MLFLOW_TRACKING_URI"
    target = tracking_target(load_project(path, env="prod"))
    assert (target.source, target.given) == ("tracking.uri", "sqlite:///prod.db")


def test_a_relative_sqlite_path_in_the_variable_resolves_against_the_current_folder(
        write_project, monkeypatch, tmp_path: Path) -> None:
    here = tmp_path / "elsewhere"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///rel.db")
    target = tracking_target(load_project(_project(write_project)))
    assert target.uri == f"sqlite:///{(here / 'rel.db').resolve()}"


@pytest.mark.parametrize(("in_file", "in_env", "source", "expected"), [
    (False, False, None, None),
    (False, True, "MLFLOW_REGISTRY_URI", "sqlite:////env/registry.db"),
    (True, False, "tracking.registry_uri", "reg-file.db"),
    (True, True, "tracking.registry_uri", "reg-file.db"),
])
def test_the_registry_uri_precedence_table(write_project, monkeypatch, in_file, in_env,
                                           source, expected) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    if in_env:
        monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////env/registry.db")
    else:
        monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    path = _project(write_project,
                    "tracking: {registry_uri: 'sqlite:///reg-file.db'}\n" if in_file else "")
    target = tracking_target(load_project(path))
    assert target.registry_source == source
    if expected is not None and not expected.startswith("sqlite:"):
        expected = f"sqlite:///{(path.parent / expected).resolve()}"
    assert target.registry_uri == expected
    assert target.source == "default"


def test_plan_says_where_the_uri_came_from(write_project, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _ENV_URI)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////env/registry.db")
    path = _project(write_project)
    result = CliRunner().invoke(main, ["plan", "-f", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    tracking = json.loads(result.output)["tracking"]
    assert (tracking["uri"], tracking["uri_from"]) == (_ENV_URI, "MLFLOW_TRACKING_URI")
    assert (tracking["registry_uri"], tracking["registry_uri_from"]) == (
        "sqlite:////env/registry.db", "MLFLOW_REGISTRY_URI")
    result = CliRunner().invoke(main, ["plan", "-f", str(path), "--format", "text"])
    assert f"tracking: {_ENV_URI} (from MLFLOW_TRACKING_URI)" in result.output
    assert "registry: sqlite:////env/registry.db (from MLFLOW_REGISTRY_URI)" in result.output


@pytest.mark.slow
def test_a_run_goes_where_the_variable_says_and_its_summary_says_so(
        write_project, monkeypatch, tmp_path: Path) -> None:
    store = tmp_path / "env-store" / "runs.db"
    store.parent.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    path = _project(write_project)
    result = CliRunner().invoke(main, ["run", "-f", str(path)])
    assert result.exit_code == 0, result.output
    assert f"tracking: sqlite:///{store} (from MLFLOW_TRACKING_URI)" in result.output
    run_id = result.output.split("run ", 1)[1].split()[0]
    assert MlflowClient(f"sqlite:///{store}").get_run(run_id).info.status == "FINISHED"
    assert not (path.parent / "mlflow.db").exists()


def test_a_file_store_in_the_variable_is_refused_naming_the_variable(write_project,
                                                                     monkeypatch) -> None:
    from kmlc.errors import TrackingError

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:./mlruns")  # MLflow 2's habit
    with pytest.raises(TrackingError, match=r"is a file store.*\(from MLFLOW_TRACKING_URI\)"):
        tracking_target(load_project(_project(write_project)))
    # the file's own URI comes first: the variable is not read
    path = _project(write_project, f"tracking: {{uri: {_FILE_URI}}}\n")
    assert tracking_target(load_project(path)).source == "tracking.uri"


def test_the_loaded_project_carries_its_target_resolved_once(write_project,
                                                             monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _ENV_URI)
    path = _project(write_project)
    spec = load_project(path, tracking_uri=_CLI_URI)
    assert spec.target is not None and spec.target.source == "--tracking-uri"
    # the same command line (or none) and environment: the loaded value, not a new one
    assert tracking_target(spec, _CLI_URI) is spec.target
    assert tracking_target(spec) is spec.target
    assert RunSession(spec, "__default__").target is spec.target
    # what the resolution read changed: resolved again, by the same rule
    assert tracking_target(spec, _FILE_URI).given == _FILE_URI
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_target(load_project(path)).source == "default"
    spec = load_project(path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _ENV_URI)
    assert tracking_target(spec).source == "MLFLOW_TRACKING_URI"
    # a store the rule refuses leaves no target: the run that uses it says why
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:./mlruns")
    assert load_project(path).target is None


def test_a_refused_tracking_uri_option_is_refused_where_the_store_is_needed(
        write_project, monkeypatch) -> None:
    """The project keeps the --tracking-uri it was loaded with even when the store it
    names is refused: the run refuses it, never falls back to the file's store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = _project(write_project, f"tracking: {{uri: {_FILE_URI}}}\n")
    spec = load_project(path, tracking_uri="./mlruns")
    assert spec.target is None and spec.tracking_uri_option == "./mlruns"
    with pytest.raises(TrackingError, match=r"file store.*\(from --tracking-uri\)"):
        RunSession(spec, "__default__")
    result = CliRunner().invoke(main, ["run", "-f", str(path), "--tracking-uri", "./mlruns"])
    assert result.exit_code == 1, result.output
    assert "file store" in result.output and "(from --tracking-uri)" in result.output
    assert not (path.parent / "from-file.db").exists()
