"""``runner:`` in the file and what a remote Dask scheduler asks of the storage."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kmlc.cli import main
from kmlc.config.loader import check_project, load_project
from kmlc.config.runner import is_remote_address
from kmlc.errors import RunError

IRIS = Path(__file__).resolve().parents[2] / "examples" / "iris" / "mlproject.yml"


@pytest.mark.parametrize(("address", "remote"), [
    (None, False), ("tcp://127.0.0.1:8786", False), ("localhost:8786", False),
    ("tcp://[::1]:8786", False), ("inproc://10.0.0.1/1/2", False), ("127.0.0.2", False),
    ("tcp://10.0.0.5:8786", True), ("tls://scheduler.internal:8786", True),
    ("scheduler:8786", True), ("tcp://[2001:db8::1]:8786", True),
])
def test_remote_address(address: str | None, remote: bool) -> None:
    assert is_remote_address(address) is remote


def _codes(result) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(e.code, ".".join(map(str, e.key_path))) for e in [*result.errors, *result.warnings]]


def test_remote_scheduler_refuses_relative_paths_and_a_relative_sqlite_store() -> None:
    result = check_project(IRIS, runner="dask", address="tcp://10.0.0.5:8786")
    codes = _codes(result)
    assert ("KMLC362", "") in codes  # tracking.uri is not set: the default sqlite file
    relative = {path for code, path in codes if code == "KMLC361"}
    assert relative == {f"datasets.{n}.filepath" for n in (
        "instances", "labels", "scaler", "classifier", "confusion_matrix", "predictions")}
    assert "would resolve it on their own disks" in result.errors[-1].message


@pytest.mark.parametrize("address", [None, "tcp://127.0.0.1:8786"])
def test_local_cluster_takes_relative_paths(address: str | None) -> None:
    spec = load_project(IRIS, runner="dask", address=address)
    # the command line's, resolved once as the project loads (it was: the file's, with the
    # command line's applied again at run time)
    assert (spec.runner.type, spec.runner.address) == ("dask", address)


def test_the_file_runner_and_a_tracking_server(tmp_path: Path) -> None:
    text = IRIS.read_text().replace("datasets:", "runner: {type: dask, workers: 3}\ndatasets:")
    for rel in ("data/01_raw/instances.csv", "data/01_raw/labels.csv"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((IRIS.parent / rel).read_bytes())
    (tmp_path / "iris_nodes.py").write_bytes((IRIS.parent / "iris_nodes.py").read_bytes())
    (tmp_path / "mlproject.yml").write_text(text)
    spec = load_project(tmp_path / "mlproject.yml")
    assert (spec.runner.type, spec.runner.workers, spec.runner.address) == ("dask", 3, None)
    remote = check_project(tmp_path / "mlproject.yml", address="tcp://10.0.0.5:8786",
                           tracking_uri="http://mlflow.internal:5000")
    assert {code for code, _ in _codes(remote)} == {"KMLC361"}  # no complaint on tracking
    absolute = check_project(tmp_path / "mlproject.yml", address="tcp://10.0.0.5:8786",
                             tracking_uri="sqlite:////mnt/shared/mlflow.db")
    assert ("KMLC363", "runner") in _codes(absolute)
    assert [w.severity for w in absolute.warnings if w.code == "KMLC363"] == ["warning"]


def test_cli_address_means_dask_and_clashes_with_another_runner() -> None:
    out = CliRunner().invoke(main, ["validate", "-f", str(IRIS), "--address",
                                    "tcp://10.0.0.5:8786"])
    assert out.exit_code == 1 and "[KMLC361]" in out.output, out.output
    out = CliRunner().invoke(main, ["run", "-f", str(IRIS), "--runner", "thread",
                                    "--address", "tcp://10.0.0.5:8786"])
    assert out.exit_code == 2
    assert "--address is for --runner dask, not --runner thread" in out.output


def test_without_distributed_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from kmlc.runners.dask import DaskRunner

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(RunError) as info:
        DaskRunner()
    assert 'pip install "kmlc[dask]"' in str(info.value.hint)


def test_validate_runner_option_checks_the_file_for_that_runner() -> None:
    remote = ["validate", "-f", str(IRIS), "--address", "tcp://10.0.0.5:8786"]
    out = CliRunner().invoke(main, [*remote, "--runner", "dask"])
    assert out.exit_code == 1 and "relative local path 'data/01_raw/instances.csv'" in out.output
    out = CliRunner().invoke(main, [*remote, "--runner", "thread"])
    assert out.exit_code == 2 and "--address is for --runner dask" in out.output, out.output
    out = CliRunner().invoke(main, ["validate", "-f", str(IRIS), "--runner", "dask"])
    assert out.exit_code == 0, out.output  # a local cluster takes relative paths
    assert ": valid: " in out.stdout and "relative local path" not in out.output
