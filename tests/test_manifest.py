"""``kmlc plan``: the manifest of a project, built without running or importing MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from kmlc.cli import main
from kmlc.config.loader import load_project
from kmlc.inspect.manifest import build_manifest, manifest_json

SCHEMA = Path(__file__).parents[1] / "schemas" / "manifest.schema.json"


def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _plan(file: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["plan", "-f", str(file), "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_iris_manifest_follows_its_schema_and_kedro_order(iris_file: Path) -> None:
    manifest = _plan(iris_file)
    errors = sorted(_validator().iter_errors(manifest), key=str)
    assert not errors, errors[0].message
    training = manifest["pipelines"]["training"]["nodes"]
    assert training[0] == "clean" and training[-1] == "evaluate"
    written: set[str] = set(manifest["pipelines"]["training"]["inputs"])
    for name in training:  # every node runs after whatever writes its inputs
        node = manifest["nodes"][name]
        inputs = node["inputs"]
        names = ([inputs] if isinstance(inputs, str) else
                 list(inputs.values()) if isinstance(inputs, dict) else inputs)
        assert set(names) <= written, (name, set(names) - written)
        outputs = node["outputs"]
        written.update([outputs] if isinstance(outputs, str) else
                       outputs.values() if isinstance(outputs, dict) else outputs)
    assert manifest["nodes"]["fit_classifier"]["params"] == {"params:model.c": 1.0,
                                                             "params:model.max_iter": 500}
    logged = manifest["pipelines"]["training"]["logged"]["params"]
    assert logged["model.c"] == "1.0" and logged["split"] == "{'test_size': 0.3, 'seed': 7}"
    data = manifest["datasets"]
    assert data["scaler"]["packed_in_model"] and data["scaler"]["kind"] == "persisted"
    assert data["scaler"]["filepath"] == "data/06_models/scaler.pkl"
    assert data["x_train"]["kind"] == "memory" and data["accuracy"]["kind"] == "mlflow"
    assert data["confusion_matrix"]["track"] == {"artifact_path": "reports"}
    model = manifest["model"]
    assert [s["name"] for s in model["inference_plan"]["steps"]] == ["clean", "predict"]
    assert any(r.startswith("scikit-learn==") for r in model["requirements"])
    # stable text: the same project gives byte-identical manifests
    assert manifest_json(manifest) == manifest_json(_plan(iris_file))


def test_plan_imports_no_mlflow(iris_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "target" / "manifest.json"
    code = ("import sys; from kmlc.cli import main\n"
            "try:\n"
            f"    main(['plan', '-f', {str(iris_file)!r}, '-o', {str(out)!r}])\n"
            "except SystemExit as exc:\n"
            "    assert not exc.code, exc.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True, cwd=tmp_path)  # the installed kmlc
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "manifest written to" in result.stdout
    assert json.loads(out.read_text())["project"]["name"] == "iris"


def test_a_parameter_change_changes_only_the_nodes_that_read_it(
        mini: Callable[..., Path]) -> None:
    file = mini()
    before = build_manifest(load_project(file))
    after = build_manifest(load_project(file, params=("model.c=2.0",)))
    changed = {n for n in before["nodes"]
               if before["nodes"][n]["hash"] != after["nodes"][n]["hash"]}
    assert changed == {"fit"}
    assert after["pipelines"]["training"]["logged"]["params"]["model.c"] == "2.0"


def test_a_code_change_changes_the_hash_of_the_module_nodes(
        mini: Callable[..., Path]) -> None:
    file = mini()
    before = build_manifest(load_project(file))
    for module in [m for m in sys.modules if m == "mini_nodes"]:
        del sys.modules[module]
    nodes = file.parent / "mini_nodes.py"
    nodes.write_text(nodes.read_text() + "\n# a comment changes the module\n")
    after = build_manifest(load_project(file))
    sys.modules.pop("mini_nodes", None)
    assert all(before["nodes"][n]["hash"] != after["nodes"][n]["hash"] for n in before["nodes"])


def test_secrets_are_masked(mini: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from mini_project import MINI_YAML

    monkeypatch.setenv("KMLC_TEST_TOKEN", "s3cr3t-value")
    text = MINI_YAML.replace("tags: {team: tests}",
                             "tags: {team: tests, token: \"{{ env('KMLC_TEST_TOKEN', "
                             "secret=true) }}\"}\n  registry_uri: "
                             "\"sqlite:///reg.db?t={{ env('KMLC_TEST_TOKEN', secret=true) }}\"")
    file = mini(text)
    out = _plan(file)
    sys.modules.pop("mini_nodes", None)
    assert "s3cr3t-value" not in json.dumps(out)
    assert out["tracking"]["tags"]["token"] == "***"
    assert out["tracking"]["registry_uri"] == "sqlite:///reg.db?t=***"


def test_one_pipeline_and_a_bad_name(iris_file: Path) -> None:
    manifest = _plan(iris_file, "inference")
    assert list(manifest["pipelines"]) == ["inference"]
    assert set(manifest["nodes"]) == {"clean", "predict"}
    assert "x_train" not in manifest["datasets"]
    result = CliRunner().invoke(main, ["plan", "-f", str(iris_file), "infrence"])
    assert result.exit_code == 1
    assert "pipeline 'infrence' does not exist" in result.output
    assert "did you mean 'inference'" in result.output
    assert "Traceback" not in result.output


def test_text_summary(iris_file: Path) -> None:
    result = CliRunner().invoke(main, ["plan", "-f", str(iris_file), "--format", "text"])
    assert result.exit_code == 0, result.output
    assert "pipeline training: 5 nodes" in result.output
    assert "model: instances -> clean -> predict -> predictions; packs classifier, scaler" \
        in result.output


def test_the_promotion_gate_is_in_the_manifest(mini: Callable[..., Path]) -> None:
    from mini_project import MINI_YAML

    file = mini(MINI_YAML.replace(
        "model:\n  input: instances\n",
        "model:\n  input: instances\n  registered_name: mini\n  promote:\n"
        "    alias: champion\n    when: \"metrics['accuracy'] > 0.8\"\n"
        "    better_than_current: {metric: accuracy, mode: min}\n"))
    manifest = json.loads(manifest_json(build_manifest(load_project(file))))
    sys.modules.pop("mini_nodes", None)
    assert not list(_validator().iter_errors(manifest))
    assert manifest["model"]["registered_name"] == "mini"
    assert manifest["model"]["promote"] == {
        "alias": "champion", "when": "metrics['accuracy'] > 0.8",
        "better_than_current": {"metric": "accuracy", "mode": "min"}}


def test_spaceflights_namespaces_and_factories(tmp_path: Path) -> None:
    """Kedro's spaceflights starter (ported in tests/spaceflights_project.py): modular
    pipelines' copies carry their namespace, factory-resolved datasets their pattern."""
    from spaceflights_project import write_spaceflights

    file = write_spaceflights(tmp_path / "sf")
    manifest = _plan(file)
    assert not list(_validator().iter_errors(manifest))
    node = manifest["nodes"]["candidate_modelling_pipeline.train_model_node"]
    assert node["namespace"] == "candidate_modelling_pipeline"
    assert manifest["nodes"]["train_model_node"]["namespace"] is None
    regressor = manifest["datasets"]["active_modelling_pipeline.regressor"]
    assert regressor["factory"] == "{namespace}.regressor" and regressor["kind"] == "persisted"
    assert manifest["datasets"]["{namespace}.regressor"]["kind"] == "factory"
    graph = CliRunner().invoke(main, ["graph", "-f", str(file)]).output
    assert 'subgraph ns_candidate_modelling_pipeline["candidate_modelling_pipeline"]' in graph


@pytest.mark.slow
def test_plan_and_graph_import_no_node_module(iris_file: Path, tmp_path: Path) -> None:
    """The summary and the drawing read the node functions from their source: neither the
    iris nodes nor what they import (scikit-learn, matplotlib, pandas) is imported, and
    each node's hash is the one computed from the imported function."""
    code = ("import json, sys\n"
            "from click.testing import CliRunner\n"
            "from kmlc.cli import main\n"
            "out = {}\n"
            "for args in (['plan', 'training', '--format', 'text'], ['graph', 'training']):\n"
            f"    result = CliRunner().invoke(main, [*args, '-f', {str(iris_file)!r}])\n"
            "    assert result.exit_code == 0, result.output\n"
            "    out[args[0]] = result.output\n"
            "out['imported'] = sorted(m for m in ('iris_nodes', 'sklearn', 'matplotlib',\n"
            "                                     'pandas') if m in sys.modules)\n"
            "print(json.dumps(out))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["imported"] == []
    assert "fit_classifier" in out["graph"]
    from kmlc.compiler.fingerprint import node_fingerprint
    from kmlc.compiler.project import compile_project
    from kmlc.config.functions import code_path

    spec = load_project(iris_file)
    with code_path(spec.code):
        compiled = compile_project(spec)  # imported, as a run has them
        for node in compiled.pipeline("training").nodes:
            assert f"{node.name} [iris_nodes.{node.name}] " \
                   f"{node_fingerprint(node, spec)[7:19]}" in out["plan"]
