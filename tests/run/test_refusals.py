"""`kmlc run` refuses what needs only the file before it imports Kedro or MLflow.

An unknown pipeline, a filter naming a node, dataset, tag or namespace the pipeline
does not have (``--force-nodes`` too), a ``--load-versions`` dataset that is not
versioned, a misspelt ``--params`` or ``--env`` and an invalid file are refused
before the tracking worker starts and before ``kmlc.run``, Kedro's runners or MLflow
are imported. Each refusal runs in one fresh interpreter (the modules a test process
imported elsewhere do not count), which reports what it had imported after each.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# in a fresh interpreter: each refusal through the CLI, then what sys.modules holds
PROBE = """\
import json, sys
from click.testing import CliRunner
from kmlc.cli import main
WATCHED = ("mlflow", "kedro", "kedro.runner", "kmlc.run", "kmlc.tracking.worker", "pandas",
           "jinja2", "packaging.requirements")
out = []
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(main, args)
    out.append({"code": result.exit_code, "output": result.output,
                "imported": sorted(m for m in WATCHED if m in sys.modules)})
print(json.dumps(out))
"""

REFUSALS = {
    "pipeline": (["trainig"], "error: pipeline 'trainig' does not exist "
                              "(did you mean 'training'?) [KMLC602]"),
    "nodes": (["training", "--nodes", "clean,fitt"],
              "error: --nodes: node 'fitt' is not in pipeline 'training' "
              "(did you mean 'fit'?) [KMLC603]"),
    "from-nodes": (["training", "--from-nodes", "evalute"],
                   "error: --from-nodes: node 'evalute' is not in pipeline 'training' "
                   "(did you mean 'evaluate'?) [KMLC603]"),
    "to-nodes": (["inference", "--to-nodes", "fit"],
                 "error: --to-nodes: node 'fit' is not in pipeline 'inference' "
                 "(nodes: clean, predict) [KMLC603]"),
    "from-inputs": (["training", "--from-inputs", "feature"],
                    "error: --from-inputs: dataset 'feature' is not used by pipeline "
                    "'training' (did you mean 'features'?) [KMLC603]"),
    "to-outputs": (["training", "--to-outputs", "predictions"],
                   "error: --to-outputs: dataset 'predictions' is not used by pipeline "
                   "'training'"),
    "tags": (["--tags", "inference,trainig"],
             "error: --tags: no node of pipeline '__default__' has tag 'trainig' "
             "(did you mean 'training'?) [KMLC603]"),
    "namespace": (["--namespace", "post"],
                  "error: --namespace: no node of pipeline '__default__' is in namespace "
                  "'post' (this pipeline has no namespaced node) [KMLC603]"),
    "force-nodes": (["training", "--force-nodes", "evaluat"],
                    "error: --force-nodes: node 'evaluat' is not in pipeline 'training' "
                    "(did you mean 'evaluate'?) [KMLC603]"),
    "load-versions": (["training", "--load-versions", "classifer:2026-01-31T10.00.00.000Z"],
                      "error: --load-versions: 'classifer' is not a versioned dataset (set "
                      "`versioned: true` on the dataset) [KMLC604]"),
    "params": (["training", "--params", "model.cc=2"],
               "error: parameters.model.cc: parameter 'model.cc' is not defined in "
               "`parameters` (did you mean 'model.c'?) [KMLC111]"),
    "params type": (["training", "--params", "model.c=abc"],
                    "error: parameters.model.c: parameter 'model.c' is a number in the file "
                    "(0.5), but --params gives text (\"abc\") (to replace it with text: "
                    "--params model.c:=abc) [KMLC116]"),
    "env": (["training", "--env", "prod"], "environment 'prod' is not defined"),
    "file": (["training", "-f", "broken.yml"],
             "error: datasests: unknown key 'datasests' (did you mean 'datasets'?)"),
}


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    from mini_project import MINI_NODES, MINI_YAML, write_mini

    path = write_mini(tmp_path_factory.mktemp("refusals") / "proj", MINI_YAML, MINI_NODES)
    (path.parent / "broken.yml").write_text(MINI_YAML.replace("datasets:", "datasests:"))
    argv = [["run", *(["-f", str(path)] if "-f" not in args else []), *args]
            for args, _ in REFUSALS.values()]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], cwd=path.parent,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(zip(REFUSALS, json.loads(done.stdout.splitlines()[-1]), strict=True))


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_a_refusal_that_needs_only_the_file_imports_neither_kedro_nor_mlflow(
        refused: dict[str, dict[str, object]], kind: str) -> None:
    result = refused[kind]
    assert result["code"] == 1, result
    assert REFUSALS[kind][1] in str(result["output"]), result["output"]
    assert "Traceback" not in str(result["output"])
    # no tracking worker, no run module, no Kedro (the mini file needs none to be
    # checked), no MLflow, no node module's pandas; no Jinja and no requirement parser
    # either: the mini file has no template and names no requirement
    assert result["imported"] == [], result


@pytest.mark.slow
def test_a_run_that_passes_the_checks_imports_them(mini: object, tmp_path: Path) -> None:
    """The probe sees the imports when they happen: a run that is not refused."""
    path = mini()  # type: ignore[operator]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(
        [["run", "inference", "-f", str(path), "--nodes", "clean",
          "--tracking-uri", f"sqlite:///{tmp_path / 'store.db'}"]])],
        cwd=path.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] == 0, result["output"]
    assert {"kedro", "kedro.runner", "kmlc.run", "kmlc.tracking.worker"} <= set(
        result["imported"])


def test_a_node_name_the_user_gave_the_start_of_is_suggested(tmp_path: Path) -> None:
    """`kmlc run training --nodes fit` on iris (fit_scaler, fit_classifier): no name is
    close enough for difflib, the ones it begins are suggested (issue 27's trial)."""
    import shutil

    from click.testing import CliRunner

    from kmlc.cli import main

    project = tmp_path / "iris"
    shutil.copytree(Path(__file__).parents[2] / "examples" / "iris", project,
                    ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts", ".kmlc"))
    result = CliRunner().invoke(main, ["run", "training", "--nodes", "fit",
                                       "-f", str(project / "mlproject.yml")])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: --nodes: node 'fit' is not in pipeline 'training' (did you mean "
        "'fit_classifier' or 'fit_scaler'?) [KMLC603]")
