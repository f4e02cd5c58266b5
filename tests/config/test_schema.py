"""Stage 4, schema: JSON Schema errors rewritten for people, at the right key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from kmlc.config.schema import load_schema, schema_errors, schema_text
from kmlc.config.source import parse_text
from kmlc.errors import ConfigError

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "mlproject.schema.json"


def _errors(text: str) -> list[ConfigError]:
    return schema_errors(parse_text(text, "m.yml"))


def _one(text: str) -> ConfigError:
    errors = _errors(text)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def _edit(base: str, old: str, new: str) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(load_schema())


def test_shipped_schema_is_the_repository_schema() -> None:
    assert schema_text() == SCHEMA_FILE.read_text("utf-8")
    assert load_schema() == json.loads(SCHEMA_FILE.read_text("utf-8"))


def test_schema_is_loaded_once() -> None:
    assert load_schema() is load_schema()


def test_every_property_has_a_description() -> None:
    def walk(schema: object, path: str) -> list[str]:
        missing = []
        if isinstance(schema, dict):
            for name, sub in (schema.get("properties") or {}).items():
                if isinstance(sub, dict) and "description" not in sub and "$ref" not in sub:
                    missing.append(f"{path}.{name}")
            for key, value in schema.items():
                missing += walk(value, f"{path}.{key}")
        elif isinstance(schema, list):
            for i, value in enumerate(schema):
                missing += walk(value, f"{path}[{i}]")
        return missing

    # `type: true` in the dataset branches is the only bare property allowed
    assert [m for m in walk(load_schema(), "$") if not m.endswith(".type")] == []


def test_valid_documents_have_no_errors(demo_yaml: str, iris_file: Path) -> None:
    assert _errors(demo_yaml) == []
    assert _errors(iris_file.read_text("utf-8")) == []


@pytest.mark.parametrize(
    ("old", "new", "line", "column", "path", "message", "hint"),
    [
        ("datasets:", "datasests:", 6, 1, "datasests", "unknown key 'datasests'",
         "did you mean 'datasets'?"),
        ("    inputs: instances\n", "    input: instances\n", 14, 5, "nodes[0].input",
         "unknown key 'input'", "did you mean 'inputs'?"),
        ("  input: instances\n", "  input: instances\n  artefact_path: m\n", 36, 3,
         "model.artefact_path", "unknown key 'artefact_path'", "did you mean 'artifact_path'?"),
        ("etl: {tags: [training]}", "etl: {tag: [training]}", 33, 9, "pipelines.etl.tag",
         "unknown key 'tag'", "did you mean 'tags'?"),
        ("score: {type: mlflow.metric}", "score: {type: mlflow.metric, filepath: x}", 9, 32,
         "datasets.score.filepath", "unknown key 'filepath'",
         "valid keys: key, run_id, step, type"),
    ],
)
def test_unknown_keys(demo_yaml: str, old: str, new: str, line: int, column: int, path: str,
                      message: str, hint: str) -> None:
    err = _one(_edit(demo_yaml, old, new))
    assert (err.code, err.line, err.column, err.path) == ("KMLC201", line, column, path)
    assert (err.message, err.hint) == (message, hint)


def test_unknown_key_far_from_any_lists_the_valid_keys(demo_yaml: str) -> None:
    err = _one(_edit(demo_yaml, "name: demo\n", "name: demo\nzzz: 1\n"))
    assert err.hint == ("valid keys: $schema, cache, code, credentials, datasets, environments, "
                        "hooks, logging, model, name, nodes, parameters, pipelines, runner, "
                        "sweep, tracking, version")


def test_every_unknown_key_is_reported(demo_yaml: str) -> None:
    errors = _errors(_edit(demo_yaml, "name: demo\n", "name: demo\nfoo: 1\nbar: 2\n"))
    assert [(e.path, e.line) for e in errors] == [("foo", 3), ("bar", 4)]


@pytest.mark.parametrize(
    ("old", "new", "line", "column", "path", "message"),
    [
        ("version: 1\n", "", 1, 1, "", "missing required key 'version'"),
        ("name: demo\n", "", 1, 1, "", "missing required key 'name'"),
        ("    func: demo_nodes.clean\n", "", 12, 5, "nodes[0]", "missing required key 'func'"),
        ("{type: mlflow.metric}", "{key: s}", 9, 3, "datasets.score",
         "missing required key 'type'"),
        ("{type: mlflow.metric}", "{type: mlflow.model}", 9, 3, "datasets.score",
         "missing required key 'flavor'"),
        ("  input: instances\n", "  signature: auto\n", 34, 1, "model",
         "missing required key 'input'"),
    ],
)
def test_missing_required_keys(demo_yaml: str, old: str, new: str, line: int, column: int,
                               path: str, message: str) -> None:
    err = _one(_edit(demo_yaml, old, new))
    assert (err.code, err.line, err.column, err.path, err.message) == (
        "KMLC202", line, column, path, message)


@pytest.mark.parametrize(
    ("old", "new", "line", "column", "path", "message"),
    [
        ("name: demo", "name: [demo]", 2, 7, "name", "expected a string, found a list"),
        ("parameters:\n  alpha: 0.5\n  split: {ratio: 0.2, seed: 7}", "parameters: [1]", 3, 13,
         "parameters",
         "expected a mapping, found a list"),
        ("tags: [training]\n", "tags: 5\n", 21, 11, "nodes[1].tags",
         "expected a string or a list, found 5"),
        ("{type: mlflow.metric}", "{type: 5}", 9, 17, "datasets.score.type",
         "expected a string, found 5"),
        ("{type: mlflow.metric}", "mlflow.metric", 9, 10, "datasets.score",
         'expected a mapping, found "mlflow.metric"'),
        ("inputs: instances", "inputs: 5", 14, 13, "nodes[0].inputs",
         "expected null or a string or a list or a mapping, found 5"),
        ("outputs: features", "outputs: true", 15, 14, "nodes[0].outputs",
         "expected null or a string or a list or a mapping, found true"),
        ("  input: instances\n", "  input: instances\n  pip_requirements: manual\n", 36, 21,
         "model.pip_requirements", 'expected "auto" or a list, found "manual"'),
        ("filepath: data/model.pkl}", "filepath: data/model.pkl, track: artefact}", 8, 77,
         "datasets.model_file.track", 'expected "artifact" or a mapping, found "artefact"'),
    ],
)
def test_wrong_types(demo_yaml: str, old: str, new: str, line: int, column: int, path: str,
                     message: str) -> None:
    err = _one(_edit(demo_yaml, old, new))
    assert (err.code, err.line, err.column, err.path, err.message) == (
        "KMLC203", line, column, path, message)


def test_bad_enum_lists_values_and_suggests(demo_yaml: str) -> None:
    text = _edit(demo_yaml, "model:\n", "tracking:\n  params: {long_values: truncat}\nmodel:\n")
    err = _one(text)
    assert (err.code, err.line, err.column, err.path) == (
        "KMLC204", 35, 25, "tracking.params.long_values")
    assert err.message == '"truncat" is not one of: "fail", "tag", "truncate"'
    assert err.hint == "did you mean 'truncate'?"


def test_const_version(demo_yaml: str) -> None:
    err = _one(_edit(demo_yaml, "version: 1", "version: 2"))
    assert (err.code, err.line, err.column, err.path, err.message) == (
        "KMLC204", 1, 10, "version", "expected 1, found 2")
    assert _one(_edit(demo_yaml, "version: 1", 'version: "1"')).message == 'expected 1, found "1"'


def test_func_without_module_says_how_a_function_is_written(demo_yaml: str) -> None:
    err = _one(_edit(demo_yaml, "func: demo_nodes.clean", "func: clean"))
    assert (err.code, err.line, err.column, err.path) == ("KMLC204", 13, 11, "nodes[0].func")
    assert err.message == ('"clean" is not valid: a function is written module.function '
                           "(or module:function), e.g. iris_nodes.clean")
    assert err.hint is None


def test_pattern_mentions_the_description(demo_yaml: str) -> None:
    err = _one(_edit(demo_yaml, "name: clean\n", "name: 'cl ean'\n"))
    assert (err.code, err.line, err.column, err.path) == ("KMLC204", 12, 11, "nodes[0].name")
    assert err.message == ('"cl ean" is not a valid value for: Unique node name; optional: '
                           "without it the node gets Kedro's generated name (`function__hash`)")
    assert err.hint and err.hint.startswith("it must match ^")


def test_long_values_are_shortened_in_messages(demo_yaml: str) -> None:
    err = _one(_edit(demo_yaml, "name: demo", "name: " + "x/" * 50))
    assert err.message.startswith('"x/x/')
    assert '..."' in err.message
    assert len(err.message) < 160


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("etl: {tags: [training]}", "etl: {}", "pipelines.etl", "a mapping must not be empty"),
        ("name: demo", 'name: ""', "name", '"" must not be empty'),
        ("model:\n", "tracking: {ui: {port: 70000}}\nmodel:\n", "tracking.ui.port",
         "70000 is out of range (maximum 65535)"),
        ("model:\n", "tracking: {http: {timeout: 0}}\nmodel:\n", "tracking.http.timeout",
         "0 is out of range (minimum 1)"),
        ("{type: mlflow.metric}", "{type: mlflow.metric, step: -1}", "datasets.score.step",
         "-1 is out of range (minimum 0)"),
    ],
)
def test_ranges_and_emptiness(demo_yaml: str, old: str, new: str, path: str,
                              message: str) -> None:
    text = _edit(demo_yaml, old, new)
    errors = [(e.code, e.message) for e in _errors(text) if e.path == path]
    assert ("KMLC205", message) in errors


def test_empty_node_list(demo_yaml: str) -> None:
    text = demo_yaml.split("nodes:\n")[0] + "nodes: []\n"
    err = _one(text)
    assert (err.code, err.line, err.column, err.path, err.message) == (
        "KMLC205", 11, 8, "nodes", "a list must not be empty")


def test_errors_in_many_places_are_all_reported(demo_yaml: str) -> None:
    text = _edit(_edit(_edit(demo_yaml, "version: 1", "version: 3"), "name: demo", "name: [x]"),
                 "tags: [inference]\n", "tags: {inference: 1}\n")
    assert sorted((e.line, e.code) for e in _errors(text)) == [
        (1, "KMLC204"), (2, "KMLC203"), (31, "KMLC203")]


def test_environment_overlays_must_be_mappings(demo_yaml: str) -> None:
    err = _one(demo_yaml + "  fast: yes\n")
    assert (err.code, err.line, err.column, err.path) == ("KMLC203", 40, 9, "environments.fast")


# ----------------------------------------------------------------- once known bugs


def test_bad_dataset_name_is_located_at_the_name(demo_yaml: str) -> None:
    text = _edit(demo_yaml, "  predictions:", '  "params:x": {type: mlflow.metric}\n  predictions:')
    err = _one(text)
    assert (err.line, err.column, err.path) == (10, 3, 'datasets.params:x')
    assert err.message == "'params:x' is not a valid name here"


def test_empty_input_name_says_empty(demo_yaml: str) -> None:
    err = _one(_edit(demo_yaml, "inputs: instances", 'inputs: ""'))
    assert (err.code, err.message) == ("KMLC205", '"" must not be empty')


def test_bad_item_in_input_list_is_located_at_the_item(demo_yaml: str) -> None:
    err = _one(_edit(demo_yaml, "inputs: [features, params:alpha, params:split]",
                     "inputs: [features, 5, params:split]"))
    assert (err.code, err.path, err.message) == ("KMLC203", "nodes[1].inputs[1]",
                                                 "expected a string, found 5")


def test_unknown_key_in_track_mapping(demo_yaml: str) -> None:
    err = _one(_edit(demo_yaml, "filepath: data/model.pkl}",
                     "filepath: data/model.pkl, track: {artifact_dir: x}}"))
    assert (err.code, err.path) == ("KMLC201", "datasets.model_file.track.artifact_dir")
    assert err.hint == "did you mean 'artifact_path'?"


def test_bad_pipeline_name_is_located_at_the_name(demo_yaml: str) -> None:
    err = _one(_edit(demo_yaml, "  etl: {tags: [training]}",
                     "  etl: {tags: [training]}\n  9x: {tags: [a]}"))
    assert (err.code, err.line, err.column, err.path) == ("KMLC204", 34, 3, "pipelines.9x")
    assert err.message == "'9x' is not a valid name here"
    assert err.hint and "letter or _" in err.hint


def test_bad_value_in_input_mapping_is_located_at_the_value(demo_yaml: str) -> None:
    err = _one(_edit(demo_yaml, "inputs: {model: model_file, features: features}",
                     "inputs: {model: model_file, features: 3}"))
    assert (err.code, err.path, err.message) == ("KMLC203", "nodes[2].inputs.features",
                                                 "expected a string, found 3")
