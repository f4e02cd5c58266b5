"""The autouse fixture ``_mlflow_global_uri`` (tests/conftest.py) really restores."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"

pytest_plugins = ["pytester"]


@pytest.mark.slow
def test_set_tracking_uri_does_not_leak_into_the_next_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(mini_project=(CONFTEST.parent / "mini_project.py").read_text())
    pytester.makepyfile(test_leak='''
import os
import mlflow


def test_a_sets_it(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'x.db'}")
    os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///also-set-by-kmlc-predict.db"


def test_b_sees_the_default():
    from mlflow.tracking._tracking_service import utils
    assert utils._tracking_uri is None
    assert "MLFLOW_TRACKING_URI" not in os.environ
''')
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-q")
    result.assert_outcomes(passed=2)


@pytest.mark.slow
def test_a_run_left_active_fails_its_test_and_not_the_next(pytester: pytest.Pytester) -> None:
    """The autouse fixture ``_no_active_mlflow_run``: a run left on MLflow's active-run stack
    fails the test that left it, and the next test starts with an empty stack."""
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(mini_project=(CONFTEST.parent / "mini_project.py").read_text())
    pytester.makepyfile(test_leak='''
import mlflow


def test_a_leaves_a_run_active(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'x.db'}")
    mlflow.start_run()


def test_b_finds_none_active():
    assert mlflow.active_run() is None


def test_c_ends_its_run(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'y.db'}")
    with mlflow.start_run():
        pass
''')
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-q")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR*test_a_leaves_a_run_active*",
                                 "*left MLflow run(s)*active*"])
