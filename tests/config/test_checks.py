"""Stage 5, checks: names, the graph, paths, dataset types, functions and the model binding."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from project_text import WriteProject, edit_text

from kmlc.config.checks import run_checks
from kmlc.config.loader import LoadResult, check_project
from kmlc.config.nodes import node_io
from kmlc.config.source import parse_text
from kmlc.errors import BindingError, ConfigError


@pytest.fixture
def check(write_project: WriteProject, demo_yaml: str) -> Callable[..., LoadResult]:
    """``check(*(old, new), nodes=...)``: validate the demo project edited by the pairs."""

    def run(*pairs: tuple[str, str], nodes: str | None = None, extra: str = "",
            files: dict[str, str] | None = None) -> LoadResult:
        kwargs = {"nodes": nodes} if nodes is not None else {}
        path = write_project(edit_text(demo_yaml, *pairs) + extra, files=files, **kwargs)
        return check_project(path)

    return run


def _only(result: LoadResult, code: str) -> ConfigError:
    matching = [e for e in result.errors if e.code == code]
    assert len(matching) == 1, [str(e) for e in result.errors]
    return matching[0]


def _where(err: ConfigError) -> tuple[str, int, int, str]:
    return (err.code, err.line, err.column, err.path)


# ----------------------------------------------------------------- node_io


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("a", [("a", ())]),
        (["a", "b"], [("a", (0,)), ("b", (1,))]),
        ({"x": "a", "y": "b"}, [("a", ("x",)), ("b", ("y",))]),
    ],
)
def test_node_io(value: object, expected: list[tuple[str, tuple[object, ...]]]) -> None:
    assert node_io(value) == expected


def test_run_checks_on_a_valid_document(demo_yaml: str, write_project: WriteProject) -> None:
    path = write_project(demo_yaml)
    result = run_checks(parse_text(demo_yaml, "m.yml"), path.parent, [path.parent])
    assert result.errors == []
    assert result.warnings == []


def test_valid_demo(check: Callable[..., LoadResult]) -> None:
    result = check()
    assert result.errors == [] and result.warnings == []
    assert result.spec is not None


# ----------------------------------------------------------------- names


def test_duplicate_node_name(check: Callable[..., LoadResult]) -> None:
    err = _only(check(("name: fit\n", "name: clean\n")), "KMLC301")
    assert _where(err) == ("KMLC301", 17, 11, "nodes[1].name")
    assert err.message == "node name 'clean' is already used by nodes[0]"
    assert err.hint == "node names must be unique"


def test_dataset_produced_twice(check: Callable[..., LoadResult]) -> None:
    err = _only(check(("outputs: score", "outputs: model_file")), "KMLC302")
    assert _where(err) == ("KMLC302", 25, 14, "nodes[2].outputs")
    assert err.message == "dataset 'model_file' is already produced by node 'fit'"
    assert err.hint == "each dataset is produced by at most one node"


@pytest.mark.parametrize("output", ["params:alpha", "parameters"])
def test_parameters_are_read_only(check: Callable[..., LoadResult], output: str) -> None:
    err = _only(check(("outputs: score", f"outputs: [{output}]")), "KMLC302")
    assert _where(err) == ("KMLC302", 25, 15, "nodes[2].outputs[0]")
    assert err.message == f"'{output}' cannot be an output: parameters are read-only"


def test_undeclared_input_with_suggestion(check: Callable[..., LoadResult]) -> None:
    err = _only(check(("{model: model_file,", "{model: model_fil,")), "KMLC303")
    assert _where(err) == ("KMLC303", 24, 21, "nodes[2].inputs.model")
    assert err.message == "input 'model_fil' is not a declared dataset nor any node's output"
    assert err.hint == "did you mean 'model_file'?"


def test_undeclared_input_without_suggestion(check: Callable[..., LoadResult]) -> None:
    err = _only(check(("inputs: instances", "inputs: zzz")), "KMLC303")
    assert _where(err) == ("KMLC303", 14, 13, "nodes[0].inputs")
    assert err.hint == ("list it in the outputs of the node that makes it, or declare it "
                        "under `datasets:`")


def test_a_misspelt_output_read_in_several_places_is_one_error_at_the_output(
        check: Callable[..., LoadResult]) -> None:
    """`features` misspelt where it is made: one error at the output, not one per reader
    suggesting the misspelling."""
    result = check(("outputs: features", "outputs: featrues"))
    assert [(e.code, e.line, e.column, e.path) for e in result.errors] == [
        ("KMLC303", 15, 14, "nodes[0].outputs")]
    err = result.errors[0]
    assert err.message == ("output 'featrues' of node 'clean' is read by no node, while "
                           "'features' is read by nodes 'fit', 'evaluate', 'predict' and made "
                           "by none")
    assert err.hint == "did you mean 'features'?"
    assert result.warnings == []


def test_a_misspelt_output_read_once_suggests_it_not_another_name(
        check: Callable[..., LoadResult]) -> None:
    """x_test made as x_tset: the reader's error suggests x_tset, never y_test (a name that
    exists and is fine), and x_tset gets no warning of its own."""
    result = check(("outputs: model_file", "outputs: [model_file, x_tset, y_test]"),
                   ("inputs: {model: model_file, features: features}",
                    "inputs: {model: model_file, features: x_test}"),
                   ("inputs: [model_file, features]", "inputs: [model_file, features, y_test]"))
    errors = [(e.code, e.path, e.message, e.hint) for e in result.errors
              if e.code == "KMLC303"]
    assert errors == [("KMLC303", "nodes[2].inputs.features",
                       "input 'x_test' is not a declared dataset nor any node's output",
                       "did you mean 'x_tset', the output of node 'fit' that no node reads?")]
    assert not [w for w in result.warnings if "x_tset" in w.message]


def test_an_output_nothing_reads_nor_keeps_is_a_located_warning(
        check: Callable[..., LoadResult]) -> None:
    result = check(("outputs: model_file", "outputs: [model_file, history]"))
    assert result.errors == []
    (warning,) = result.warnings
    assert _where(warning) == ("KMLC352", 20, 27, "nodes[1].outputs[1]")
    assert warning.message == ("output 'history' of node 'fit' is read by no node and kept "
                               "nowhere: its value is dropped")
    assert warning.hint == "declare it under `datasets:` to keep it, or remove the output"
    # declared, it is kept: no warning
    declared = check(("outputs: model_file", "outputs: [model_file, history]"),
                     ("  score: {type: mlflow.metric}\n",
                      "  score: {type: mlflow.metric}\n  history: {type: pickle.PickleDataset, "
                      "filepath: data/history.pkl}\n"))
    assert declared.errors == [] and declared.warnings == []


def test_a_misspelt_output_beside_a_declared_file_nobody_makes_is_an_error(
        check: Callable[..., LoadResult]) -> None:
    """model_file (a pickle file) declared and read, made as model_fiel: an error at the
    output, not a warning: the run would drop the model it fits and its readers would load
    whatever data/model.pkl an earlier run left (or fail on a fresh clone)."""
    result = check(("outputs: model_file", "outputs: model_fiel"))
    assert [(e.code, e.line, e.column, e.path) for e in result.errors] == [
        ("KMLC303", 20, 14, "nodes[1].outputs")]
    err = result.errors[0]
    assert err.message == ("output 'model_fiel' of node 'fit' is read by no node, while "
                           "'model_file' (data/model.pkl) is read by nodes 'evaluate', "
                           "'predict' and made by none: they would load the file an earlier "
                           "run left")
    assert err.hint == "did you mean 'model_file'?"
    assert result.warnings == []


def test_a_loosely_similar_output_beside_a_declared_file_stays_a_warning(
        check: Callable[..., LoadResult]) -> None:
    """Only a near-identical name is taken for a misspelling: model_file_backup next to
    model_file is suggested, not refused."""
    result = check(("outputs: model_file", "outputs: model_file_backup"))
    assert result.errors == []
    (warning,) = result.warnings
    assert warning.code == "KMLC352" and "'model_file_backup'" in warning.message
    assert warning.hint == ("did you mean 'model_file', a dataset that nodes read and no "
                            "node makes?")


@pytest.mark.parametrize(
    ("param", "hint"),
    [
        ("params:alpah", "did you mean 'params:alpha'?"),
        ("params:split.rati", "did you mean 'params:split.ratio'?"),
        ("params:alpha.value", "did you mean 'params:alpha'?"),
        ("params:alpha.deeper", None),
        ("params:zzzzzz", None),
    ],
)
def test_missing_parameter(check: Callable[..., LoadResult], param: str,
                           hint: str | None) -> None:
    err = _only(check(("params:alpha,", f"{param},")), "KMLC304")
    assert _where(err) == ("KMLC304", 19, 24, "nodes[1].inputs[1]")
    assert err.message == f"parameter '{param[7:]}' is not defined in `parameters`"
    assert err.hint == hint


def test_unused_dataset_and_parameter_are_warnings(check: Callable[..., LoadResult]) -> None:
    result = check(("  score:", "  orphan: {type: mlflow.metric}\n  score:"),
                   ("  alpha: 0.5\n", "  alpha: 0.5\n  unused: 1\n"))
    assert result.errors == []
    assert result.spec is not None
    assert sorted((w.code, w.line, w.column, w.path, w.severity) for w in result.warnings) == [
        ("KMLC350", 10, 3, "datasets.orphan", "warning"),
        ("KMLC351", 5, 3, "parameters.unused", "warning"),
    ]
    assert sorted(w.message for w in result.warnings) == [
        "dataset 'orphan' is not used by any node",
        "parameter 'unused' is not read by any node",
    ]


def test_reading_all_parameters_uses_every_parameter(check: Callable[..., LoadResult],
                                                     demo_nodes: str) -> None:
    nodes = demo_nodes + "\n\ndef use_all(parameters):\n    return parameters\n"
    result = check(("  alpha: 0.5\n", "  alpha: 0.5\n  unused: 1\n"), nodes=nodes)
    assert [w.code for w in result.warnings] == ["KMLC351"]
    result = check(("  alpha: 0.5\n", "  alpha: 0.5\n  unused: 1\n"),
                   ("  - name: predict", "  - {name: all, func: demo_nodes.use_all, "
                    "inputs: parameters, outputs: p_all}\n  - name: predict"), nodes=nodes)
    assert [w.code for w in result.warnings] == ["KMLC352"]  # p_all itself, read by none


def test_graph_checks_wait_for_clean_names(check: Callable[..., LoadResult]) -> None:
    result = check(("name: fit\n", "name: clean\n"),
                   ("inputs: instances", "inputs: score"))
    assert sorted(e.code for e in result.errors) == ["KMLC301"]


# ----------------------------------------------------------------- graph


def test_cycle(check: Callable[..., LoadResult]) -> None:
    result = check(("inputs: instances", "inputs: score"), ("model:\n  input: instances\n", ""))
    err = _only(result, "KMLC310")
    assert _where(err) == ("KMLC310", 14, 13, "nodes[0].inputs")
    assert err.message == "the nodes form a cycle: clean -> evaluate -> clean"


def test_a_cycle_is_said_once_without_the_unused_warnings_it_brings(
        check: Callable[..., LoadResult]) -> None:
    """clean reading score instead of instances: the cycle is the root; 'instances' left
    unread ("not used by any node") only follows from it (issue 27's trial)."""
    result = check(("inputs: instances", "inputs: score"))
    assert [e.code for e in result.errors] == ["KMLC310"]
    assert result.warnings == []


def test_self_loop(check: Callable[..., LoadResult]) -> None:
    err = _only(check(("[features, params:alpha,", "[model_file, params:alpha,")), "KMLC310")
    assert err.message == "the nodes form a cycle: fit -> fit"
    assert err.path == "nodes[1].inputs"


def test_pipeline_with_unknown_tag(check: Callable[..., LoadResult]) -> None:
    err = _only(check(("etl: {tags: [training]}", "etl: {tags: [trainin]}")), "KMLC312")
    assert _where(err) == ("KMLC312", 33, 16, "pipelines.etl.tags[0]")
    assert (err.message, err.hint) == ("no node has tag 'trainin'", "did you mean 'training'?")


def test_pipeline_with_unknown_node(check: Callable[..., LoadResult]) -> None:
    err = _only(check(("etl: {tags: [training]}", "etl: {nodes: [clena, fit]}")), "KMLC312")
    assert _where(err) == ("KMLC312", 33, 17, "pipelines.etl.nodes[0]")
    assert (err.message, err.hint) == ("no node is named 'clena'", "did you mean 'clean'?")


def test_pipeline_selecting_nothing(check: Callable[..., LoadResult]) -> None:
    err = _only(check(("etl: {tags: [training]}", "etl: {tags: []}")), "KMLC311")
    assert _where(err) == ("KMLC311", 33, 8, "pipelines.etl")
    assert err.message == "pipeline 'etl' selects no node"


def test_tracking_disabled_for_unknown_pipeline(check: Callable[..., LoadResult]) -> None:
    result = check(("model:\n", "tracking: {disable_for: [etl, trainign]}\nmodel:\n"))
    assert result.errors == []
    [warning] = result.warnings
    assert (warning.code, warning.severity, warning.path) == (
        "KMLC313", "warning", "tracking.disable_for[1]")
    assert warning.message == "pipeline 'trainign' does not exist"
    assert warning.hint == "did you mean 'training'?"


# ----------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("filepath", "column"),
    [("../../etc/passwd", 50), ("data/../../x.csv", 50), ("./../x.csv", 50)],
)
def test_relative_path_outside_the_project(check: Callable[..., LoadResult], filepath: str,
                                           column: int) -> None:
    err = _only(check(("filepath: data/instances.csv", f"filepath: {filepath}")), "KMLC320")
    assert _where(err) == ("KMLC320", 7, column, "datasets.instances.filepath")
    assert err.message == f"'{filepath}' resolves outside the project folder"
    assert err.hint and "allow_outside: true" in err.hint


def test_outside_paths_allowed_on_request(check: Callable[..., LoadResult]) -> None:
    result = check(("filepath: data/instances.csv",
                    "filepath: ../shared/instances.csv, allow_outside: true"))
    assert result.errors == []


@pytest.mark.parametrize("filepath", ["s3://bucket/instances.csv", "data/./instances.csv",
                                      "data/sub/../instances.csv"])
def test_urls_and_inner_paths_are_fine(check: Callable[..., LoadResult], filepath: str) -> None:
    assert check(("filepath: data/instances.csv", f"filepath: {filepath}")).errors == []


def test_partitioned_path_outside(check: Callable[..., LoadResult]) -> None:
    result = check(("  score:", "  parts: {type: partitions.PartitionedDataset, path: ../out, "
                    "dataset: pandas.CSVDataset}\n  score:"))
    err = _only(result, "KMLC320")
    assert err.path == "datasets.parts.path"


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("  input: instances\n", "  input: instances\n  artifact_path: a/../../x\n",
         "model.artifact_path"),
        ("filepath: data/model.pkl}", "filepath: data/model.pkl, track: {artifact_path: ../x}}",
         "datasets.model_file.track.artifact_path"),
        ("filepath: data/model.pkl}", "filepath: data/model.pkl, track: {artifact_path: /etc}}",
         "datasets.model_file.track.artifact_path"),
        ("{type: mlflow.metric}", "{type: mlflow.model, flavor: mlflow.sklearn, "
         "artifact_path: x/../../y}", "datasets.score.artifact_path"),
    ],
)
def test_artifact_paths(check: Callable[..., LoadResult], old: str, new: str, path: str) -> None:
    err = _only(check((old, new)), "KMLC321")
    assert err.path == path
    assert err.line >= 8


# ----------------------------------------------------------------- dataset types


@pytest.mark.parametrize(
    ("type_name", "message", "hint"),
    [
        ("pandas.CSVDatset", "unknown dataset type 'pandas.CSVDatset'",
         "did you mean 'pandas.CSVDataset'?"),
        ("pandaz.CSVDataset", "unknown dataset type 'pandaz.CSVDataset'",
         "did you mean 'pandas.CSVDataset'?"),
        ("MemoryDatset", "unknown dataset type 'MemoryDatset'", "did you mean 'MemoryDataset'?"),
        ("kedro_datasets.pandas.NopeDataset", "unknown dataset type "
         "'kedro_datasets.pandas.NopeDataset'", None),
    ],
)
def test_unknown_dataset_types(check: Callable[..., LoadResult], type_name: str, message: str,
                               hint: str | None) -> None:
    err = _only(check(("type: pandas.CSVDataset, filepath: data/instances.csv",
                       f"type: {type_name}, filepath: data/instances.csv")), "KMLC331")
    assert _where(err) == ("KMLC331", 7, 21, "datasets.instances.type")
    assert err.message == message
    if hint:
        assert err.hint == hint


def test_unknown_mlflow_dataset_type(check: Callable[..., LoadResult]) -> None:
    err = _only(check(("{type: mlflow.metric}", "{type: mlflow.metricz}")), "KMLC331")
    assert (err.message, err.hint) == ("unknown MLflow dataset type 'mlflow.metricz'",
                                       "did you mean 'mlflow.metric'?")


@pytest.mark.parametrize("type_name", ["MemoryDataset", "kedro_datasets.pandas.CSVDataset",
                                       "pickle.PickleDataset", "json.JSONDataset"])
def test_known_dataset_types(check: Callable[..., LoadResult], type_name: str) -> None:
    result = check(("type: pandas.CSVDataset, filepath: data/instances.csv",
                    f"type: {type_name}, filepath: data/instances.csv"))
    assert [e for e in result.errors if e.code == "KMLC331"] == []


# ----------------------------------------------------------------- functions


def test_module_not_found(check: Callable[..., LoadResult]) -> None:
    err = _only(check(("func: demo_nodes.clean", "func: demo_node.clean")), "KMLC401")
    assert _where(err) == ("KMLC401", 13, 11, "nodes[0].func")
    assert (err.message, err.hint) == ("module 'demo_node' not found", "did you mean 'demo_nodes'?")


def test_module_not_found_lists_local_modules(check: Callable[..., LoadResult]) -> None:
    err = _only(check(("func: demo_nodes.clean", "func: zzz_qqq.clean")), "KMLC401")
    assert err.hint == "modules in the code folders: demo_nodes"


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("raise RuntimeError('no')\n", "importing module 'demo_nodes' raised RuntimeError: no"),
        ("import kmlc_not_installed_pkg\n", "importing module 'demo_nodes' failed: no module "
         "named 'kmlc_not_installed_pkg'"),
        ("def clean(x)\n", "importing module 'demo_nodes' raised SyntaxError: expected ':'"),
    ],
)
def test_module_import_fails(check: Callable[..., LoadResult], module: str, message: str) -> None:
    result = check(nodes=module)
    errors = [e for e in result.errors if e.code == "KMLC402"]
    assert len(errors) == 1  # once per module, not once per node
    assert _where(errors[0]) == ("KMLC402", 13, 11, "nodes[0].func")
    assert errors[0].message.startswith(message)
    assert errors[0].message.endswith("; nodes using it: clean, fit, evaluate, predict")


def test_module_not_found_once_for_its_nodes(check: Callable[..., LoadResult]) -> None:
    result = check(("func: demo_nodes.clean", "func: demo_node.clean"),
                   ("func: demo_nodes.fit", "func: demo_node.fit"))
    assert [(_where(e), e.message) for e in result.errors] == [
        (("KMLC401", 13, 11, "nodes[0].func"),
         "module 'demo_node' not found; nodes using it: clean, fit")]


@pytest.mark.parametrize(
    ("func", "message", "hint"),
    [
        ("demo_nodes.claen", "module 'demo_nodes' has no function 'claen'",
         "did you mean 'clean'?"),
        ("demo_nodes:nothing_here", "module 'demo_nodes' has no function 'nothing_here'", None),
        ("demo_nodes:clean.inner", "module 'demo_nodes' has no function 'clean.inner'", None),
    ],
)
def test_function_not_found(check: Callable[..., LoadResult], func: str, message: str,
                            hint: str | None) -> None:
    err = _only(check(("func: demo_nodes.clean", f"func: {func}")), "KMLC403")
    assert _where(err) == ("KMLC403", 13, 11, "nodes[0].func")
    assert (err.message, err.hint) == (message, hint)


def test_not_callable(check: Callable[..., LoadResult]) -> None:
    err = _only(check(("func: demo_nodes.clean", "func: demo_nodes.CONSTANT")), "KMLC404")
    assert err.message == "'demo_nodes.CONSTANT' is not callable"


def test_colon_form_is_accepted(check: Callable[..., LoadResult]) -> None:
    assert check(("func: demo_nodes.clean", "func: demo_nodes:clean")).errors == []


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("func: demo_nodes.clean", "func: demo_nodes.no_args", "nodes[0].inputs",
         "demo_nodes.no_args() does not accept the 1 input: too many positional arguments"),
        ("inputs: [features, params:alpha, params:split]", "inputs: [features]",
         "nodes[1].inputs", "demo_nodes.fit(features, alpha, split) does not accept the 1 input: "
         "missing a required argument: 'alpha'"),
        ("{model: model_file, features: features}", "{model: model_file}",
         "nodes[2].inputs", "demo_nodes.evaluate(model, features) does not accept the inputs "
         "['model']: missing a required argument: 'features'"),
        ("    inputs: instances\n", "", "nodes[0].func",
         "demo_nodes.clean(instances) does not accept the 0 inputs: missing a required "
         "argument: 'instances'"),
    ],
)
def test_signature_mismatch(check: Callable[..., LoadResult], old: str, new: str, path: str,
                            message: str) -> None:
    err = _only(check((old, new)), "KMLC405")
    assert (err.path, err.message) == (path, message)


@pytest.mark.parametrize(
    ("new", "found"),
    [
        ("{m: model_file, features: features}", [("m", 24, 14, "did you mean 'model'?")]),
        ("{model: model_file, features: features, depth: params:alpha}",
         [("depth", 24, 53, None)]),
        ("{mdl: model_file, feature: features}",
         [("mdl", 24, 14, "did you mean 'model'?"), ("feature", 24, 31,
                                                       "did you mean 'features'?")]),
    ],
)
def test_unexpected_argument_is_named_first(check: Callable[..., LoadResult], new: str,
                                            found: list[tuple[str, int, int, str | None]]
                                            ) -> None:
    result = check(("{model: model_file, features: features}", new))
    assert [(e.code, e.path, e.line, e.column, e.message, e.hint) for e in result.errors] == [
        ("KMLC405", f"nodes[2].inputs.{key}", line, column,
         f"demo_nodes.evaluate(model, features) has no argument '{key}'", hint)
        for key, line, column, hint in found]


def test_functions_come_from_the_code_folders(write_project: WriteProject,
                                              demo_yaml: str, demo_nodes: str) -> None:
    text = edit_text(demo_yaml, ("name: demo\n", "name: demo\ncode: [src]\n"))
    path = write_project(text, nodes=None, files={"src/demo_nodes.py": demo_nodes})
    result = check_project(path)
    assert result.errors == []
    assert result.spec is not None
    assert result.spec.code == (path.parent / "src",)


def test_same_module_name_in_two_projects(tmp_path: Path, demo_yaml: str,
                                          demo_nodes: str) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    for folder, nodes in ((good, demo_nodes), (bad, demo_nodes.replace("def clean(", "def c("))):
        folder.mkdir()
        (folder / "mlproject.yml").write_text(demo_yaml)
        (folder / "demo_nodes.py").write_text(nodes)
    assert check_project(good / "mlproject.yml").errors == []
    assert [e.code for e in check_project(bad / "mlproject.yml").errors] == ["KMLC403"]
    assert check_project(good / "mlproject.yml").errors == []


# ----------------------------------------------------------------- model binding


def test_binding_errors_are_binding_errors(check: Callable[..., LoadResult]) -> None:
    result = check(("  input: instances\n", "  input: instance\n"))
    assert result.errors
    assert all(isinstance(e, BindingError) for e in result.errors)


def test_no_training_nodes(check: Callable[..., LoadResult]) -> None:
    result = check(("tags: [training, inference]", "tags: [inference]"),
                   ("tags: [training]", "tags: [fit]"), ("tags: [training]", "tags: [fit]"),
                   ("etl: {tags: [training]}", "etl: {tags: [fit]}"))
    err = _only(result, "KMLC501")
    assert _where(err) == ("KMLC501", 35, 3, "model")
    assert (err.message, err.hint) == ("no node is tagged 'training'",
                                       "tag the training nodes [training]")


def test_no_inference_nodes(check: Callable[..., LoadResult]) -> None:
    result = check(("tags: [training, inference]", "tags: [training]"),
                   ("tags: [inference]", "tags: [serve]"))
    err = _only(result, "KMLC501")
    assert err.message == "no node is tagged 'inference'"


def test_model_input_not_read(check: Callable[..., LoadResult]) -> None:
    result = check(("  input: instances\n", "  input: instance\n"))
    errors = [e for e in result.errors if e.code == "KMLC502"]
    assert [(e.line, e.column, e.path) for e in errors] == [(35, 10, "model.input")]
    assert [e.message for e in errors] == [
        "model.input 'instance' is not an input of the inference pipeline",
    ]
    assert errors[0].hint == "did you mean 'instances'?"


def test_inference_input_not_from_training(check: Callable[..., LoadResult]) -> None:
    result = check(("  score:", "  lookup: {type: pandas.CSVDataset, filepath: data/l.csv}\n"
                    "  score:"), ("inputs: [model_file, features]", "inputs: [lookup, features]"))
    err = _only(result, "KMLC503")
    assert _where(err) == ("KMLC503", 30, 13, "nodes[3].inputs")
    assert err.message == ("inference input 'lookup' is neither read nor written by the "
                           "training pipeline")


def test_inference_may_pack_what_training_reads(check: Callable[..., LoadResult]) -> None:
    """As kedro-mlflow allows: a persisted training input is packed (memory ones are not)."""
    lookup = "  lookup: {type: pandas.CSVDataset, filepath: data/l.csv}\n  score:"
    read_by_training = ("  - name: predict\n", "  - name: look\n    func: demo_nodes.clean\n"
                        "    inputs: lookup\n    outputs: looked\n    tags: [training]\n"
                        "  - name: predict\n")
    packed = ("inputs: [model_file, features]", "inputs: [lookup, features]")
    result = check(("  score:", lookup), read_by_training, packed)
    assert not result.errors, [str(e) for e in result.errors]
    result = check(("  score:", lookup), read_by_training,
                   ("inputs: [model_file, features]", "inputs: [looked, features]"))
    err = _only(result, "KMLC504")
    assert "'looked'" in err.message and "persisted" in err.message


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("  model_file: {type: pickle.PickleDataset, filepath: data/model.pkl}\n", "",
         "nodes[3].inputs"),
        ("  model_file: {type: pickle.PickleDataset, filepath: data/model.pkl}\n",
         "  model_file: {type: mlflow.model, flavor: mlflow.sklearn}\n", "datasets.model_file"),
        ("  model_file: {type: pickle.PickleDataset, filepath: data/model.pkl}\n",
         "  model_file: {type: MemoryDataset}\n", "datasets.model_file"),
    ],
)
def test_inference_input_must_be_a_file(check: Callable[..., LoadResult], old: str, new: str,
                                        path: str) -> None:
    err = _only(check((old, new)), "KMLC504")
    assert err.path == path
    assert err.message == ("inference input 'model_file' must be persisted to a file dataset "
                           "to be packed into the model")
    assert err.hint and "pickle.PickleDataset" in err.hint


@pytest.mark.parametrize(
    ("old", "new", "found", "line"),
    [
        ("outputs: predictions", "outputs: [predictions, extra]", "extra, predictions", 35),
        ("    outputs: predictions\n", "", "none", 34),
    ],
)
def test_inference_needs_one_free_output(check: Callable[..., LoadResult], old: str, new: str,
                                         found: str, line: int) -> None:
    err = _only(check((old, new)), "KMLC505")
    assert _where(err) == ("KMLC505", line, 3, "model")
    assert err.message == ("the inference pipeline must have exactly one free output, "
                           f"found: {found}")


def test_binding_waits_for_other_errors(check: Callable[..., LoadResult]) -> None:
    result = check(("  input: instances\n", "  input: instance\n"),
                   ("func: demo_nodes.clean", "func: demo_nodes.claen"))
    assert [e.code for e in result.errors] == ["KMLC403"]


# ----------------------------------------------------------------- once known bugs


def test_nul_byte_in_filepath_is_a_config_error(check: Callable[..., LoadResult]) -> None:
    try:
        result = check(("filepath: data/instances.csv", 'filepath: "data/\\0x.csv"'))
    except ValueError as exc:
        raise AssertionError(f"ValueError escaped: {exc}") from exc
    err = _only(result, "KMLC320")
    assert _where(err) == ("KMLC320", 7, 50, "datasets.instances.filepath")
    assert err.message == '"data/\\u0000x.csv" contains a NUL character'


@pytest.mark.parametrize("filepath", ["/etc/passwd", "file:///etc/passwd", "/",
                                      "FILE:///etc/passwd", "File:///etc/passwd",
                                      "local:///etc/passwd", "LOCAL:///etc/passwd",
                                      "file://host/etc/passwd"])
def test_absolute_path_outside_the_project(check: Callable[..., LoadResult],
                                           filepath: str) -> None:
    err = _only(check(("filepath: data/instances.csv", f"filepath: {filepath}")), "KMLC320")
    assert _where(err) == ("KMLC320", 7, 50, "datasets.instances.filepath")
    assert err.message == f"'{filepath}' is outside the project folder"
    assert err.hint and "allow_outside: true" in err.hint


def test_absolute_path_allowed_on_request_or_inside(check: Callable[..., LoadResult],
                                                    tmp_path: Path) -> None:
    assert check(("filepath: data/instances.csv",
                  "filepath: /etc/passwd, allow_outside: true")).errors == []
    inside = tmp_path.resolve() / "data" / "instances.csv"
    assert check(("filepath: data/instances.csv", f"filepath: {inside}")).errors == []
    assert check(("filepath: data/instances.csv", f"filepath: file://{inside}")).errors == []


def test_fsspecs_local_protocols_are_the_ones_kedro_writes_locally() -> None:
    """Every protocol ``local_part`` takes as local is one fsspec serves from the disk,
    and the path it gives is the one Kedro hands to that file system."""
    import fsspec
    from fsspec.implementations.local import LocalFileSystem
    from fsspec.registry import known_implementations
    from kedro.io.core import get_protocol_and_path

    from kmlc.config.localpath import local_part, local_protocols

    assert {"file", "local"} <= local_protocols()
    for protocol in local_protocols():
        try:
            assert isinstance(fsspec.filesystem(protocol), LocalFileSystem), protocol
        except ImportError:  # registered, its package not installed (morefs): refused all the same
            assert "LocalFileSystem" in known_implementations[protocol]["class"]
        for spelling in (protocol, protocol.upper()):
            url = f"{spelling}:///tmp/x.csv"
            kedro_protocol, kedro_path = get_protocol_and_path(url)
            assert kedro_protocol.lower() == protocol and local_part(url) == kedro_path
    assert local_part("s3://bucket/x.csv") is None and local_part("data/x.csv") == "data/x.csv"


@pytest.mark.parametrize(("old", "new", "path", "what"), [
    ("name: demo\n", "name: demo\ncode: [., ../shared]\n", "code[1]",
     "code folder '../shared' resolves"),
    ("name: demo\n", "name: demo\ncredentials: ../creds.yml\n", "credentials",
     "credentials file '../creds.yml' resolves"),
    ("name: demo\n", "name: demo\nlogging: ../log.yml\n", "logging",
     "logging config file '../log.yml' resolves"),
])
def test_files_read_from_outside_the_project_are_warned_about(
        write_project: WriteProject, demo_yaml: str, demo_nodes: str, tmp_path: Path,
        old: str, new: str, path: str, what: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "creds.yml").write_text("db: {password: x}\n")
    (tmp_path / "log.yml").write_text("version: 1\n")
    (project / "demo_nodes.py").write_text(demo_nodes)
    file = project / "mlproject.yml"
    file.write_text(edit_text(demo_yaml, (old, new)))
    result = check_project(file)
    assert result.errors == [] and result.spec is not None
    [warning] = [w for w in result.warnings if w.code == "KMLC323"]
    assert (warning.severity, warning.path, warning.line) == ("warning", path, 3)
    assert warning.message == f"{what} outside the project folder"
    inside = check_project(write_project(demo_yaml))
    assert [w for w in inside.warnings if w.code == "KMLC323"] == []


@pytest.mark.parametrize(("key", "role"), [("uri", "tracking store"),
                                           ("registry_uri", "model registry")])
def test_a_sqlite_store_in_a_missing_folder_is_warned_about_at_its_line(
        write_project: WriteProject, demo_yaml: str, key: str, role: str) -> None:
    """`kmlc run` refuses it before any node runs; validate names the line."""
    path = write_project(edit_text(demo_yaml, (
        "name: demo\n", f"name: demo\ntracking:\n  {key}: sqlite:///stores/mlflow.db\n")))
    result = check_project(path)
    assert result.errors == [] and result.spec is not None
    [warning] = [w for w in result.warnings if w.code == "KMLC324"]
    folder = path.parent.resolve() / "stores"
    assert (warning.severity, warning.path, warning.line, warning.column) == (
        "warning", f"tracking.{key}", 4, 8 if key == "uri" else 17)
    assert warning.message == (f"the {role}'s folder {folder} does not exist: `kmlc run` "
                               "refuses it before any node runs")
    folder.mkdir()  # made: nothing to say; nor for an absolute path whose folder exists,
    # an in-memory store or a server
    assert [w for w in check_project(path).warnings if w.code == "KMLC324"] == []
    for uri in (f"sqlite:///{folder}/other.db", "sqlite:///:memory:", "http://127.0.0.1:5000"):
        path.write_text(edit_text(demo_yaml, ("name: demo\n",
                                              f"name: demo\ntracking:\n  {key}: {uri}\n")))
        assert [w for w in check_project(path).warnings if w.code == "KMLC324"] == [], uri


def test_allow_outside_never_reaches_kedro(write_project: WriteProject, demo_yaml: str) -> None:
    path = write_project(edit_text(demo_yaml, ("filepath: data/instances.csv",
                                           "filepath: /etc/passwd, allow_outside: true")))
    spec = check_project(path).spec
    assert spec is not None
    assert "allow_outside" not in spec.datasets["instances"].config


def test_dataset_type_check_imports_nothing(write_project: WriteProject, demo_yaml: str) -> None:
    text = edit_text(demo_yaml, ("{type: mlflow.metric}", "{type: kedro.runner.nothing.X}"))
    path = write_project(text)
    code = textwrap.dedent(f"""
        import sys
        from kmlc.config.loader import check_project
        result = check_project({str(path)!r})
        assert [e.code for e in result.errors] == ["KMLC331"], result.errors
        print("kedro.runner" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True, cwd=path.parent)  # the installed kmlc
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_full_import_path_type_is_found_without_importing(write_project: WriteProject,
                                                          demo_yaml: str) -> None:
    text = edit_text(demo_yaml, ("{type: mlflow.metric}",
                             "{type: kedro.io.memory_dataset.MemoryDataset}"))
    path = write_project(text)
    code = textwrap.dedent(f"""
        import sys
        from kmlc.config.loader import check_project
        result = check_project({str(path)!r})
        assert [e.code for e in result.errors if e.code == "KMLC331"] == [], result.errors
        print(sorted(m for m in sys.modules if m == "kedro" or m.startswith("kedro.")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True, cwd=path.parent)  # the installed kmlc
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ----------------------------------------------------------------- reading without importing


def _static_project(write_project: WriteProject, demo_yaml: str, module: str, source: str,
                    flag: Path) -> Path:
    """The demo project with its functions in ``module`` (a name no other test imports)."""
    text = demo_yaml.replace("demo_nodes.", f"{module}.")
    return write_project(text, nodes=None, files={
        f"{module}.py": source + f"\nopen({str(flag)!r}, 'w').close()  # imported?\n"})


def test_plain_functions_are_read_without_importing_their_module(
        write_project: WriteProject, demo_yaml: str, demo_nodes: str, tmp_path: Path) -> None:
    flag = tmp_path / "imported.flag"
    path = _static_project(write_project, demo_yaml, "static_nodes_plain", demo_nodes, flag)
    assert check_project(path).errors == []
    assert not flag.exists() and "static_nodes_plain" not in sys.modules


@pytest.mark.parametrize(
    ("module", "edit", "code"),
    [
        # a mismatch is confirmed by importing, for the exact signature in the message
        ("static_nodes_mismatch", ("def clean(instances):", "def clean(instances, extra):"),
         "KMLC405"),
        # a top-level import of a package that is not installed is still found
        ("static_nodes_missing", ('"""Node functions', 'import kmlc_not_installed_pkg\n"""'),
         "KMLC402"),
    ],
)
def test_reading_falls_back_to_importing_on_any_doubt(
        write_project: WriteProject, demo_yaml: str, demo_nodes: str, tmp_path: Path,
        module: str, edit: tuple[str, str], code: str) -> None:
    path = _static_project(write_project, demo_yaml, module, demo_nodes.replace(*edit),
                           tmp_path / "imported.flag")
    assert code in {e.code for e in check_project(path).errors}


@pytest.mark.parametrize(
    ("module", "edit"),
    [
        ("static_nodes_decorated", ("def clean(instances):",
                                    "def deco(f):\n    return f\n\n\n@deco\n"
                                    "def clean(instances):")),
        ("static_nodes_rebound", ("CONSTANT = 3", "CONSTANT = 3\nclean = len")),
        ("static_nodes_imported", ("CONSTANT = 3",
                                   "CONSTANT = 3\nfrom os.path import basename as clean")),
    ],
)
def test_decorated_or_rebound_functions_are_imported(
        write_project: WriteProject, demo_yaml: str, demo_nodes: str, tmp_path: Path,
        module: str, edit: tuple[str, str]) -> None:
    flag = tmp_path / "imported.flag"
    source = demo_nodes.replace(*edit)
    path = _static_project(write_project, demo_yaml, module, source, flag)
    check_project(path)
    assert flag.exists()


def test_model_pipeline_names_a_pipeline(check: Callable[..., LoadResult]) -> None:
    """model.pipeline: the bound training pipeline under the name a Kedro project gave it."""
    assert check(("  input: instances\n", "  input: instances\n  pipeline: etl\n")).errors == []
    err = _only(check(("  input: instances\n", "  input: instances\n  pipeline: etll\n")),
                "KMLC506")
    assert err.path == "model.pipeline"
    assert err.hint == "did you mean 'etl'?"


# two namespaced candidates copied from template nodes, as a new user writes them
CANDIDATES = """\
version: 1
name: two
parameters:
  alpha: 0.5
  split: {ratio: 0.2, seed: 7}
  a: {alpha: 0.1, split: {ratio: 0.2, seed: 7}}
  b: {alpha: 0.9, split: {ratio: 0.2, seed: 7}}
datasets:
  instances: {type: pandas.CSVDataset, filepath: data/instances.csv}
  "{namespace}.score": {type: mlflow.metric}
nodes:
  - {name: clean, func: demo_nodes.clean, inputs: instances, outputs: features,
     tags: [training]}
  - {name: fit, func: demo_nodes.fit, inputs: [features, params:alpha, params:split],
     outputs: model}
  - {name: evaluate, func: demo_nodes.evaluate, inputs: {model: model, features: instances},
     outputs: score}
pipelines:
  a: {namespace: a, nodes: [fit, evaluate], inputs: [features, instances], tags: [training]}
  b: {namespace: b, nodes: [fit, evaluate], inputs: [features, instances], tags: [training]}
"""


def test_a_misspelt_node_in_a_namespaced_pipeline_is_the_one_error(
        write_project: WriteProject) -> None:
    """`nodes: [fit, evalute]`: the misspelt name, located, with did-you-mean; not the
    errors about the copy's inputs, nor the candidate's parameters left unread, that only
    follow from it (issue 27's trial)."""
    result = check_project(write_project(CANDIDATES.replace(
        "a: {namespace: a, nodes: [fit, evaluate]", "a: {namespace: a, nodes: [fit, evalute]")))
    assert [(e.code, e.line, e.column, e.path, e.message, e.hint) for e in result.errors] == [
        ("KMLC312", 19, 34, "pipelines.a.nodes[1]", "no node is named 'evalute' in `nodes`",
         "did you mean 'evaluate'?")]
    assert not [w for w in result.warnings if w.code == "KMLC351"], result.warnings


def test_a_template_nodes_dropped_output_suggests_template_true(
        write_project: WriteProject) -> None:
    """The un-namespaced run of a node the candidates copy drops its output: the hint
    names the copies and `template: true`; marked so, the warning is gone."""
    result = check_project(write_project(CANDIDATES))
    assert result.errors == []
    (warning,) = [w for w in result.warnings if w.code == "KMLC352"]
    assert (warning.line, warning.column, warning.path) == (17, 15, "nodes[2].outputs")
    assert warning.message == ("output 'score' of node 'evaluate' is read by no node and kept "
                               "nowhere: its value is dropped")
    assert warning.hint == ("only its copies in a, b should run? mark node 'evaluate' "
                            "`template: true`")
    marked = check_project(write_project(CANDIDATES.replace(
        "     outputs: model}", "     outputs: model, template: true}").replace(
        "     outputs: score}", "     outputs: score, template: true}")))
    assert marked.errors == [] and not [w for w in marked.warnings if w.code == "KMLC352"]



def test_an_input_no_node_makes_is_one_error_naming_its_readers(
        check: Callable[..., LoadResult]) -> None:
    """A node that lost its output (issue 27's trial): the name its two readers miss is one
    error, at the first reader, naming both; the hint says how to make it."""
    result = check(("outputs: features", "outputs: rows"))
    assert [(e.code, e.message) for e in result.errors] == [(
        "KMLC303", "input 'features' of nodes 'fit', 'evaluate', 'predict' is not a declared "
                   "dataset nor any node's output")]
    err = result.errors[0]
    assert _where(err) == ("KMLC303", 19, 14, "nodes[1].inputs[0]")
    assert err.hint == ("list it in the outputs of the node that makes it, or declare it "
                        "under `datasets:`")


def test_the_suggestion_for_a_missing_input_is_never_a_name_its_node_reads(
        check: Callable[..., LoadResult]) -> None:
    """`y_test` missing beside `x_test` in one node's inputs: not "did you mean x_test"."""
    err = _only(check(("{model: model_file, features: features}",
                       "{model: model_file, features: features, labels: featurez}")),
                "KMLC303")
    assert err.message == "input 'featurez' is not a declared dataset nor any node's output"
    assert err.hint == ("list it in the outputs of the node that makes it, or declare it "
                        "under `datasets:`")
