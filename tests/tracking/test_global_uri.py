"""The autouse fixture ``_mlflow_global_uri`` (tests/conftest.py) really restores."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"

pytest_plugins = ["pytester"]


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
