"""Modular pipelines (Kedro's ``pipeline(..., namespace=...)``), node namespaces and names.

The reference is plain Kedro: the spaceflights tutorial's namespaced pipelines built with
Kedro's own API and run by its SequentialRunner (``spaceflights_project.kedro_reference``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from spaceflights_project import (
    CANDIDATE,
    SPACEFLIGHTS_YAML,
    kedro_reference,
    write_spaceflights,
)

from kmlc.cli import main
from kmlc.compiler.project import compile_project
from kmlc.config.loader import check_project, load_project
from kmlc.config.selection import Selection

NAMESPACES = ("active_modelling_pipeline", "candidate_modelling_pipeline")
UNTRACKED = SPACEFLIGHTS_YAML.replace(
    "parameters:\n", "tracking: {disable_for: [__default__]}\nparameters:\n", 1)


def _metrics(root: Path, namespace: str) -> dict[str, float]:
    return json.loads((root / "data/08_reporting" / namespace / "metrics.json").read_text())


@pytest.mark.slow
def test_modular_pipelines_run_as_under_kedro(tmp_path: Path) -> None:
    reference = kedro_reference(tmp_path / "kedro")
    path = write_spaceflights(tmp_path / "kmlc")
    compiled = compile_project(load_project(path))
    for ns in NAMESPACES:
        assert sorted(n.name for n in compiled.pipelines[ns].nodes) == [
            name for name in reference["nodes"] if name.startswith(ns + ".")]
    # the copies join __default__ beside the template nodes, as a summed registry would
    default = {n.name for n in compiled.pipelines["__default__"].nodes}
    assert set(reference["nodes"]) < default and "train_model_node" in default
    result = CliRunner().invoke(main, ["run", "-f", str(path)])
    assert result.exit_code == 0, result.output
    for ns in NAMESPACES:
        assert _metrics(path.parent, ns) == reference["metrics"][ns]
    # the node's own logger line, as `kedro run` shows it
    assert result.output.count("Model has a coefficient R^2 of") == 3
    assert "Loading data from" not in result.output
    client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("spaceflights").experiment_id])[0]
    assert {"model_options", "active_modelling_pipeline.model_options",
            "candidate_modelling_pipeline.model_options"} == set(run.data.params)
    assert json.loads(run.data.params["candidate_modelling_pipeline.model_options"]
                      .replace("'", '"')) == CANDIDATE


def test_namespace_option_runs_one_namespace(tmp_path: Path) -> None:
    reference = kedro_reference(tmp_path / "kedro", namespaces=NAMESPACES[1:])
    path = write_spaceflights(tmp_path / "kmlc", UNTRACKED)
    result = CliRunner().invoke(main, ["run", "-f", str(path), "-q",
                                       "--namespace", "candidate_modelling_pipeline"])
    assert result.exit_code == 0, result.output
    assert _metrics(path.parent, NAMESPACES[1]) == reference["metrics"][NAMESPACES[1]]
    assert not (path.parent / "data/08_reporting" / NAMESPACES[0]).exists()
    assert "Model has a coefficient" not in result.output  # -q hides node logs
    result = CliRunner().invoke(main, ["run", "-f", str(path), "--namespace", "candidate"])
    assert result.exit_code == 1 and "namespace 'candidate'" in result.output
    assert "candidate_modelling_pipeline" in result.output


def _errors(tmp_path: Path, text: str) -> list[tuple[str, str, int, str]]:
    path = write_spaceflights(tmp_path, text)
    result = check_project(path)
    return [(e.code, e.path, e.line, e.message + " | " + (e.hint or "")) for e in result.errors]


def test_a_mapping_key_that_is_not_a_free_input_is_located(tmp_path: Path) -> None:
    text = SPACEFLIGHTS_YAML.replace("inputs: {model_input_table: model_input_table}",
                                     "inputs: {model_input_tabel: model_input_table}")
    [(code, path, line, message)] = _errors(tmp_path, text)
    assert (code, path) == ("KMLC314", "pipelines.candidate_modelling_pipeline.inputs."
                                       "model_input_tabel")
    assert line == text.splitlines().index(
        "    inputs: {model_input_tabel: model_input_table}") + 1
    assert "did you mean 'model_input_table'?" in message


def test_names_are_checked_through_the_mapping(tmp_path: Path) -> None:
    # a namespaced parameter that is missing points at the template node's input
    text = SPACEFLIGHTS_YAML.replace("  candidate_modelling_pipeline:\n    model_options:",
                                     "  candidate_modelling_pipeline:\n    model_opts:")
    [(code, path, line, message)] = _errors(tmp_path, text)
    assert (code, path) == ("KMLC304", "nodes[0].inputs[1]")
    assert line == text.splitlines().index(
        "    inputs: [model_input_table, params:model_options]") + 1
    assert "'candidate_modelling_pipeline.model_options' is not defined" in message
    # a parameter renamed by the mapping points at the mapping entry
    text = SPACEFLIGHTS_YAML.replace(
        "    tags: [candidate]\n",
        "    tags: [candidate]\n    parameters: {model_options: candidate_options}\n")
    [(code, path, _, message)] = _errors(tmp_path, text)
    assert (code, path) == ("KMLC304", "pipelines.candidate_modelling_pipeline.parameters."
                                       "model_options")
    assert "'candidate_options' is not defined" in message
    # and the same mapping, Kedro's parameters=, once the parameter exists
    fixed = text.replace("parameters:\n  model_options:",
                         f"parameters:\n  candidate_options: {json.dumps(CANDIDATE)}\n"
                         "  model_options:", 1)
    spec = load_project(write_spaceflights(tmp_path, fixed))
    split = next(n for n in spec.nodes if n.name == f"{NAMESPACES[1]}.split_data_node")
    assert split.inputs == ("model_input_table", "params:candidate_options")
    assert set(split.tags) == {"modelling", "candidate"}
    assert spec.namespaces == NAMESPACES


def test_a_namespaced_pipeline_selecting_an_unknown_node_is_located(tmp_path: Path) -> None:
    text = SPACEFLIGHTS_YAML.replace("nodes: [split_data_node, train_model_node,",
                                     "nodes: [split_data_node, train_modle_node,")
    errors = _errors(tmp_path, text)
    assert [(c, p) for c, p, _, _ in errors] == [
        ("KMLC312", "pipelines.candidate_modelling_pipeline.nodes[1]")]
    assert "did you mean 'train_model_node'?" in errors[0][3]


NAMELESS = """\
version: 1
name: nameless
parameters: {factor: 3}
nodes:
  - func: steps.double
    inputs: numbers
    outputs: doubled
    tags: prep
  - func: steps.scale
    namespace: post
    inputs: [doubled, params:factor]
    outputs: scaled
datasets:
  numbers: {type: json.JSONDataset, filepath: numbers.json}
  scaled: {type: json.JSONDataset, filepath: scaled.json}
"""

STEPS = """\
def double(numbers):
    return [2 * n for n in numbers]


def scale(doubled, factor):
    return [factor * n for n in doubled]
"""


def test_nameless_nodes_get_kedros_names_and_a_node_namespace(tmp_path: Path) -> None:
    import importlib
    import sys

    from kedro.io import DataCatalog
    from kedro.pipeline import Pipeline, node
    from kedro.runner import SequentialRunner

    (tmp_path / "steps.py").write_text(STEPS)
    (tmp_path / "numbers.json").write_text("[1, 2, 3]")
    path = tmp_path / "mlproject.yml"
    path.write_text(NAMELESS.replace("name: nameless\n",
                                     "name: nameless\ntracking: {disable_for: [__default__]}\n"))
    spec = load_project(path)
    sys.path.insert(0, str(tmp_path))
    try:
        steps = importlib.import_module("steps")
    finally:
        sys.path.remove(str(tmp_path))
    kedro = Pipeline([node(steps.double, "numbers", "doubled", tags="prep"),
                      node(steps.scale, ["doubled", "params:factor"], "scaled",
                           namespace="post")])
    assert [n.name for n in spec.nodes] == [n.name for n in kedro.nodes]
    assert spec.nodes[0].tags == ("prep",) and spec.nodes[1].name.startswith("post.scale__")
    catalog = DataCatalog.from_config({"numbers": {"type": "json.JSONDataset",
                                                   "filepath": str(tmp_path / "numbers.json")}})
    catalog["params:factor"] = 3
    SequentialRunner().run(kedro, catalog)
    result = CliRunner().invoke(main, ["run", "-f", str(path), "--namespace", "post",
                                       "--tags", "prep"])
    assert result.exit_code == 1 and "select no node" in result.output  # Kedro's filter: AND
    result = CliRunner().invoke(main, ["run", "-f", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "scaled.json").read_text()) == catalog.load("scaled")


@pytest.mark.parametrize("form", ["tags: [modelling]", "nodes: [train_model_node]"])
def test_copies_join_the_pipelines_their_tags_select(tmp_path: Path, form: str) -> None:
    text = SPACEFLIGHTS_YAML + "  modelling: {tags: [modelling]}\n  cands: {tags: [candidate]}\n"
    if form.startswith("nodes"):
        text = text.replace("    tags: [modelling]\n    inputs: model_input_table",
                            "    nodes: [split_data_node, train_model_node, evaluate_model_node]"
                            "\n    inputs: model_input_table")
    spec = load_project(write_spaceflights(tmp_path, text))
    compiled = compile_project(spec)
    modelling = {n.name for n in compiled.pipelines["modelling"].nodes}
    assert len(modelling) == 9  # templates and both sets of copies
    assert {n.name for n in compiled.pipelines["cands"].nodes} == {
        n.name for n in compiled.pipelines[NAMESPACES[1]].nodes}


def test_a_named_node_namespace_is_read_without_importing_kedro(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    (tmp_path / "steps.py").write_text(STEPS)
    text = NAMELESS.replace("  - func: steps.double\n", "  - func: steps.double\n    name: dbl\n")
    path = tmp_path / "mlproject.yml"
    path.write_text(text.replace("  - func: steps.scale\n",
                                 "  - func: steps.scale\n    name: sc\n"))
    code = textwrap.dedent(f"""
        import sys
        from kmlc.config.loader import load_project
        spec = load_project({str(path)!r})
        print([n.name for n in spec.nodes], spec.namespaces, "kedro" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True, cwd=tmp_path)  # the installed kmlc
    assert out.stdout.strip() == "['dbl', 'post.sc'] ('post',) False"
    compiled = compile_project(load_project(path))
    only = Selection(namespaces=["post"])
    assert [n.name for n in compiled.pipeline("__default__", only).nodes] == ["post.sc"]


@pytest.mark.slow
def test_namespaced_dataset_names_bring_no_kedro_warning(tmp_path: Path) -> None:
    """The README's "{namespace}.metrics", read by a node outside the namespace: Kedro's
    UserWarning about '.' in dataset names is not shown by any command (issue 23, item 14)."""
    import os
    import subprocess

    from mini_project import kmlc_exe

    text = UNTRACKED.replace("pipelines:\n", """\
  - func: ds_nodes.compare
    name: compare_node
    inputs: [active_modelling_pipeline.metrics, candidate_modelling_pipeline.metrics]
    outputs: comparison
pipelines:
""", 1)
    path = write_spaceflights(tmp_path, text)
    with (tmp_path / "ds_nodes.py").open("a") as handle:
        handle.write("\n\ndef compare(a, b):\n    return max(a['r2_score'], b['r2_score'])\n")
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
           "PYTHONWARNINGS": "default"}
    for command in (["validate"], ["plan", "--format", "text"], ["graph"], ["run", "-q"]):
        done = subprocess.run([kmlc_exe(), *command, "-f", str(path)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "contain '.' characters" not in done.stdout + done.stderr, command
        assert "UserWarning" not in done.stderr, (command, done.stderr)


MLFLOW_METRICS = SPACEFLIGHTS_YAML.replace(
    '''  "{namespace}.metrics":
    type: json.JSONDataset
    filepath: "data/08_reporting/{namespace}/metrics.json"
''', '''  "{namespace}.metrics": {type: mlflow.metrics}
''')


def test_each_namespaced_copy_logs_its_metrics_under_its_namespace(tmp_path: Path) -> None:
    path = write_spaceflights(tmp_path / "kmlc", MLFLOW_METRICS)
    result = CliRunner().invoke(main, ["run", "-f", str(path), "--namespace",
                                       ",".join(NAMESPACES)])
    assert result.exit_code == 0, result.output
    client = MlflowClient(f"sqlite:///{path.parent / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("spaceflights").experiment_id])[0]
    names = ("r2_score", "mae", "max_error")
    assert set(run.data.metrics) == {f"{ns}.{m}" for ns in NAMESPACES for m in names}
    reference = kedro_reference(tmp_path / "kedro")
    for ns in NAMESPACES:  # each candidate's own values, none overwritten by the other
        assert run.data.metrics[f"{ns}.r2_score"] == pytest.approx(
            reference["metrics"][ns]["r2_score"])
    # a prefix the dataset sets itself is kept
    spec = load_project(write_spaceflights(tmp_path / "own", MLFLOW_METRICS.replace(
        "{type: mlflow.metrics}", '{type: mlflow.metrics, prefix: "{namespace}_m"}')))
    assert spec.datasets[f"{NAMESPACES[0]}.metrics"].config["prefix"] == f"{NAMESPACES[0]}_m"


def test_two_datasets_writing_one_metric_key_are_refused_with_both_locations(
        tmp_path: Path) -> None:
    text = MLFLOW_METRICS.replace("{type: mlflow.metrics}", "{type: mlflow.metrics, "
                                  "prefix: test}")
    [(code, path, line, message)] = _errors(tmp_path / "a", text)
    lines = text.splitlines()
    assert (code, path) == ("KMLC316", "pipelines.candidate_modelling_pipeline")
    assert line == lines.index("  candidate_modelling_pipeline:", lines.index("pipelines:")) + 1
    first = lines.index("  active_modelling_pipeline:", lines.index("pipelines:")) + 1
    assert ("metric datasets 'active_modelling_pipeline.metrics' and "
            "'candidate_modelling_pipeline.metrics' would both write the keys 'test.*' in "
            "one run (the first is at ") in message and f"mlproject.yml:{first}:3)" in message
    assert "`prefix:`" in message
    # two mlflow.metric datasets with one key, each at its own line
    text = SPACEFLIGHTS_YAML.replace("datasets:\n", "datasets:\n"
                                     "  score_a: {type: mlflow.metric, key: score}\n"
                                     "  score_b: {type: mlflow.metric, key: score}\n", 1)
    text = text.replace("pipelines:\n", (
        "  - {name: a, func: extra.score, inputs: model_input_table, outputs: score_a}\n"
        "  - {name: b, func: extra.score, inputs: model_input_table, outputs: score_b}\n"
        "pipelines:\n"), 1)
    path = write_spaceflights(tmp_path / "b", text)
    (path.parent / "extra.py").write_text("def score(table):\n    return len(table)\n")
    errors = check_project(path).errors
    assert [(e.code, e.path) for e in errors] == [("KMLC316", "datasets.score_b")]
    first = text.splitlines().index("  score_a: {type: mlflow.metric, key: score}") + 1
    assert "would both write key 'score' in one run (the first is at " in errors[0].message
    assert f"mlproject.yml:{first}:3)" in errors[0].message


def _templates(text: str) -> str:
    """The spaceflights nodes marked `template: true`, without the un-namespaced
    `model_options` they needed until then."""
    for name in ("split_data_node", "train_model_node", "evaluate_model_node"):
        text = text.replace(f"    name: {name}\n", f"    name: {name}\n    template: true\n")
    lines = text.splitlines(keepends=True)
    del lines[lines.index("parameters:\n") + 1]  # the top-level model_options
    return "".join(lines)


def test_template_nodes_run_only_as_their_copies_and_need_no_unnamespaced_params(
        tmp_path: Path) -> None:
    text = _templates(UNTRACKED)
    assert "\n  model_options:" not in text
    path = write_spaceflights(tmp_path / "kmlc", text)
    result = check_project(path)
    assert result.errors == [] and not [w for w in result.warnings if w.code == "KMLC304"]
    compiled = compile_project(load_project(path))
    reference = kedro_reference(tmp_path / "kedro", namespaces=NAMESPACES)
    copies = sorted(n for n in reference["nodes"] if n.startswith(NAMESPACES))
    assert len(copies) == 6
    for pipeline in compiled.pipelines.values():  # no pipeline holds a template
        assert all(n.name.startswith(NAMESPACES) for n in pipeline.nodes)
    assert sorted(n.name for n in compiled.pipelines["__default__"].nodes) == copies
    run = CliRunner().invoke(main, ["run", "-f", str(path)])
    assert run.exit_code == 0, run.output
    assert run.output.count("Model has a coefficient R^2 of") == 2  # the copies only
    for ns in NAMESPACES:
        assert _metrics(path.parent, ns) == reference["metrics"][ns]


def test_a_template_no_namespaced_pipeline_copies_is_refused(tmp_path: Path) -> None:
    text = _templates(SPACEFLIGHTS_YAML).replace(
        "    nodes: [split_data_node, train_model_node, evaluate_model_node]\n",
        "    nodes: [split_data_node, train_model_node]\n").replace(
        "    tags: [modelling]\n    inputs: model_input_table\n",
        "    nodes: [split_data_node, train_model_node]\n    inputs: model_input_table\n")
    errors = _errors(tmp_path, text)
    assert [(c, p) for c, p, _, _ in errors] == [("KMLC317", "nodes[2].template")]
    assert errors[0][2] == text.splitlines().index("    template: true", text.splitlines()
                                                   .index("    name: evaluate_model_node")) + 1
    assert "node 'evaluate_model_node' is a template (`template: true`) but no namespaced " \
           "pipeline copies it" in errors[0][3]
    assert "active_modelling_pipeline, candidate_modelling_pipeline" in errors[0][3]
