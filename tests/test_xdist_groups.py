"""The suite's parallel run shares its costly fixtures: under ``-n N --dist loadgroup`` the
tests that use one module-scoped fixture run on one worker, which builds it once.

pytest-xdist groups by a suffix it writes into each test's node id; a pytest that no longer
reads that attribute (9.2 with xdist 3.8) silently ungroups everything, and every worker
trains the example projects again. This runs a real pytest with xdist on a small module
whose tests share a module fixture, with kmlc's own grouping hook (tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = '''
import os
from pathlib import Path

import pytest

import pytest

LOG = Path(__file__).parent / "log.txt"


@pytest.fixture(scope="module")
def shared():
    with LOG.open("a") as f:
        f.write(f"setup {os.environ['PYTEST_XDIST_WORKER']}\\n")
    return 1


@pytest.mark.parametrize("i", range(8))
def test_reads_the_shared_fixture(shared, i):
    with LOG.open("a") as f:
        f.write(f"test {os.environ['PYTEST_XDIST_WORKER']}\\n")


@pytest.mark.parametrize("i", range(8))
def test_alone(i):
    pass
'''


@pytest.mark.slow
def test_the_tests_of_a_module_fixture_run_on_one_worker_which_builds_it_once(
        tmp_path: Path) -> None:
    tests = Path(__file__).resolve().parent
    (tmp_path / "test_grouped.py").write_text(MODULE, encoding="utf-8")
    # kmlc's grouping hook, as the suite's conftest declares it
    (tmp_path / "conftest.py").write_text(
        "import importlib.util\nimport sys\n"
        f"sys.path.insert(0, {str(tests)!r})\n"
        f"spec = importlib.util.spec_from_file_location('suite', {str(tests / 'conftest.py')!r})\n"
        "suite = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(suite)\n"
        "pytest_collection_modifyitems = suite.pytest_collection_modifyitems\n",
        encoding="utf-8")
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", os.devnull,
         str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "16 passed" in done.stdout
    lines = (tmp_path / "log.txt").read_text().splitlines()
    setups = [line for line in lines if line.startswith("setup")]
    workers = {line.split()[1] for line in lines if line.startswith("test")}
    assert len(setups) == 1, lines
    assert len(workers) == 1, lines
    assert len(lines) == 9

