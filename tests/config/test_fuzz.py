"""Fuzzing the front end with hypothesis: whatever the document, validation ends in a result.

(a) random mutations of the valid iris document, (b) documents generated from the JSON
Schema, (c) random edits of the iris text. Each is validated with ``check_project`` and
``kmlc validate --format json``; only kmlc's own errors may come back, never an exception.

Known crashes are kept out of the strategies so that this file finds new ones: NUL
bytes in strings (see the corpus' ``nul_byte_*`` cases). Module names are drawn from a
fixed list so that a fuzzed ``func`` or dataset ``type`` never imports a random package.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmlc.cli import main
from kmlc.config.diagnostics import format_json, format_text
from kmlc.config.loader import LoadResult, check_project
from kmlc.config.schema import load_schema
from kmlc.config.source import parse_text
from kmlc.errors import ConfigError

IRIS = Path(__file__).resolve().parents[2] / "examples" / "iris"
IRIS_TEXT = (IRIS / "mlproject.yml").read_text("utf-8")
IRIS_DATA = parse_text(IRIS_TEXT, "mlproject.yml").data
SCHEMA = load_schema()

FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

FUZZ_NODES = '''\
CONSTANT = 1


def one(a):
    return a


def two(a, b):
    return a, b


def any_args(*args, **kwargs):
    return args
'''

FUNCS = ["iris_nodes.clean", "iris_nodes:split", "iris_nodes.predict", "fuzz_nodes.one",
         "fuzz_nodes:two", "fuzz_nodes.any_args", "fuzz_nodes.CONSTANT", "fuzz_nodes.nothing",
         "no_such_module_xyz.f", "iris_nodes.clean.deeper"]
TYPES = ["pandas.CSVDataset", "pickle.PickleDataset", "json.JSONDataset", "MemoryDataset",
         "pandas.CSVDatset", "mlflow.metric", "mlflow.metrics", "mlflow.metric_history",
         "mlflow.model", "mlflow.nothing", "no_such_package_xyz.Data", "kedro_datasets.pandas.X"]
INTERESTING = ["", "instances", "features", "scaler", "params:split", "params:model.c",
               "parameters", "training", "inference", "../x", "../../etc/passwd", "/tmp/x",
               "a/../../b", "data/x.csv", "s3://bucket/x", "{{ 1 + 1 }}", "{{ params.split }}",
               "{{ nope }}", "{{ ''.__class__ }}", "{{ env('HOME') }}", "{% if %}", "*", "~",
               "sqlite:///mlflow.db", "auto", "none", "artifact", "model", *FUNCS, *TYPES]

# every character but NUL (a known crash) and surrogates (not encodable)
CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
TEXT = st.text(CHARS, max_size=12)
KEYS = [
    "version", "name", "code", "tracking", "parameters", "credentials", "datasets", "nodes",
    "pipelines", "hooks", "model", "environments", "uri", "experiment", "params", "flatten",
    "long_values", "disable_for", "type", "filepath", "path", "track", "artifact_path", "func",
    "inputs", "outputs", "tags", "input", "signature", "pip_requirements", "flavor", "step",
    "allow_outside", "versioned", "load_args", "prefix", "key",
]
NAMES = st.sampled_from(KEYS) | TEXT.filter(bool) | st.sampled_from(INTERESTING).filter(bool)
SCALARS = (st.none() | st.booleans() | st.integers(-(2**40), 2**40)
           | st.floats(allow_nan=False, allow_infinity=False) | TEXT | st.sampled_from(INTERESTING))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(NAMES, inner, max_size=3), max_leaves=6)


# ----------------------------------------------------------------- the project folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    shutil.copyfile(IRIS / "iris_nodes.py", path / "iris_nodes.py")
    (path / "fuzz_nodes.py").write_text(FUZZ_NODES, encoding="utf-8")
    (path / "data").mkdir()
    return path


def _validate(folder: Path, text: str, env: str | None = None) -> None:
    """Validate ``text`` in-process and through the CLI; only kmlc errors may come back."""
    path = folder / "mlproject.yml"
    path.write_text(text, encoding="utf-8")
    result = check_project(path, env=env)
    assert isinstance(result, LoadResult)
    assert (result.spec is None) == bool(result.errors)
    for err in [*result.errors, *result.warnings]:
        assert isinstance(err, ConfigError)
        assert re.fullmatch(r"KMLC\d{3}", err.code), err.code
        assert err.line >= 0 and err.column >= 0
        str(err)
    format_text(result.errors, result.warnings, text=result.text, excerpts=True)
    json.loads(format_json(result.errors, result.warnings))

    args = ["validate", "-f", str(path), "--format", "json"] + (["--env", env] if env else [])
    cli = CliRunner().invoke(main, args)
    assert cli.exception is None or isinstance(cli.exception, SystemExit), repr(cli.exception)
    assert cli.exit_code in (0, 1)
    assert "Traceback" not in cli.output
    reported = json.loads(cli.stdout)
    assert cli.exit_code == (1 if any(item["severity"] == "error" for item in reported) else 0)


def _dump(data: Any) -> str:
    return json.dumps(data, indent=1)


# ----------------------------------------------------------------- (a) mutations of iris


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, sub in items:
        yield (*prefix, key)
        yield from _paths(sub, (*prefix, key))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def mutated_iris(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(IRIS_DATA)
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(data))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get(data, path[:-1]), path[-1]
        operation = draw(st.sampled_from(["drop", "rename", "retype", "add", "wrap", "swap"]))
        if operation == "drop":
            del parent[key]
        elif operation == "rename" and isinstance(parent, dict):
            parent[draw(NAMES)] = parent.pop(key)
        elif operation == "retype":
            parent[key] = draw(VALUES)
        elif operation == "add" and isinstance(parent[key], dict):
            parent[key][draw(NAMES)] = draw(VALUES)
        elif operation == "add" and isinstance(parent[key], list):
            parent[key].append(draw(VALUES))
        elif operation == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {"x": parent[key]}]))
        else:
            parent[key] = draw(SCALARS)
    return data


@pytest.mark.slow
@FUZZ
@given(document=mutated_iris())
def test_mutated_iris(folder: Path, document: Any) -> None:
    _validate(folder, _dump(document))


# ----------------------------------------------------------------- (b) from the JSON Schema


def _resolve(ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = SCHEMA
    for part in ref[2:].split("/"):
        node = node[part]
    return node


SPECIAL: dict[str, st.SearchStrategy[Any]] = {
    "func": st.sampled_from(FUNCS),
    "code": st.lists(st.sampled_from([".", "data", "missing_folder", "../x"]), max_size=2),
    "credentials": st.sampled_from(["creds.yml", "missing.yml", "../x.yml"]),
    "filepath": st.sampled_from(["data/x.csv", "data/y.pkl", "../x", "/tmp/x", "s3://b/x"]),
    "path": st.sampled_from(["data/parts", "../parts"]),
    "inputs": st.none() | st.sampled_from(INTERESTING) | st.lists(st.sampled_from(INTERESTING),
                                                                 max_size=3),
    "outputs": st.none() | st.sampled_from(INTERESTING) | st.lists(st.sampled_from(INTERESTING),
                                                                  max_size=3),
}


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low = schema.get("minLength", 0)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda s: low <= len(s) <= 40 and "\x00" not in s)
    return st.text(CHARS, min_size=low, max_size=12) | st.sampled_from(INTERESTING).filter(
        lambda s: len(s) >= low)


def _dataset() -> st.SearchStrategy[Any]:
    """The dataset definition's allOf/if/then: one strategy per kind of dataset."""
    branches = []
    for rule in _resolve("#/$defs/dataset")["allOf"]:
        then = dict(rule["then"])
        type_rule = rule["if"]["properties"]["type"]
        properties = {k: v for k, v in then.get("properties", {}).items() if k != "type"}
        kind = (st.just(type_rule["const"]) if "const" in type_rule
                else st.sampled_from(TYPES))
        shape = {"type": "object", "properties": properties,
                 "required": [r for r in then.get("required", []) if r != "type"]}
        branches.append(st.tuples(kind, from_schema(shape)).map(lambda t: {"type": t[0], **t[1]}))
    return st.one_of(branches)


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    fixed = st.fixed_dictionaries(
        {k: from_schema(properties[k], k) for k in required if k in properties},
        optional={k: from_schema(v, k) for k, v in properties.items() if k not in required})
    extra_schema = schema.get("additionalProperties", {} if not properties else False)
    if extra_schema is False:
        return fixed
    names = schema.get("propertyNames", {})
    key = _string(names) if names else NAMES
    values = VALUES if extra_schema in ({}, True) else from_schema(extra_schema)
    extras = st.dictionaries(key, values, max_size=3)
    return st.tuples(extras, fixed).map(lambda t: {**t[0], **t[1]})


def from_schema(schema: Any, key: str | None = None) -> st.SearchStrategy[Any]:
    """A strategy for the instances of ``schema`` (a practical subset of JSON Schema)."""
    if key in SPECIAL:
        return SPECIAL[key]
    if schema is True or schema == {}:
        return VALUES
    if "$ref" in schema:
        if schema["$ref"] == "#/$defs/dataset":
            return st.deferred(_dataset)
        target = _resolve(schema["$ref"])
        return st.deferred(lambda: from_schema(target, key))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return st.one_of([from_schema(branch, key) for branch in schema[combinator]])
    types = schema.get("type", "object" if "properties" in schema else None)
    if types is None:
        return VALUES
    options: list[st.SearchStrategy[Any]] = []
    for kind in types if isinstance(types, list) else [types]:
        if kind == "string":
            options.append(_string(schema))
        elif kind == "integer":
            options.append(st.integers(schema.get("minimum", -5), schema.get("maximum", 10**6)))
        elif kind == "number":
            options.append(st.one_of(st.integers(0, 100), st.floats(0, 100)))
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "null":
            options.append(st.none())
        elif kind == "array":
            options.append(st.lists(from_schema(schema.get("items", {})),
                                    min_size=schema.get("minItems", 0), max_size=4))
        elif kind == "object":
            options.append(_object(schema))
    return st.one_of(options)


@pytest.mark.slow
@FUZZ
@given(document=from_schema(SCHEMA), data=st.data())
def test_documents_from_the_schema(folder: Path, document: Any, data: st.DataObject) -> None:
    environments = document.get("environments") or {}
    env = data.draw(st.none() | st.sampled_from(sorted(environments))) if environments else None
    _validate(folder, _dump(document), env=env)


@pytest.mark.slow
def test_schema_strategy_reaches_valid_documents(folder: Path) -> None:
    """The generator is not vacuous: it yields schema-valid documents."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(SCHEMA)
    seen: list[bool] = []

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(document=from_schema(SCHEMA))
    def collect(document: Any) -> None:
        seen.append(validator.is_valid(document))

    collect()
    assert any(seen)


# ----------------------------------------------------------------- (c) edits of the iris text


@st.composite
def edited_iris(draw: st.DrawFn) -> str:
    lines = IRIS_TEXT.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        operation = draw(st.sampled_from(["delete", "duplicate", "indent", "dedent", "insert",
                                          "truncate"]))
        if operation == "delete":
            del lines[i]
        elif operation == "duplicate":
            lines.insert(i, lines[i])
        elif operation == "indent":
            lines[i] = "  " + lines[i]
        elif operation == "dedent":
            lines[i] = lines[i][2:]
        elif operation == "insert":
            at = draw(st.integers(0, len(lines[i])))
            piece = draw(st.sampled_from(["[", "]", "{", "}", ":", ", ", "- ", "&a ", "*a",
                                          "'", '"', "#", "{{", "}}", "|", ">", "? ", "!", "%"])
                         | TEXT)
            lines[i] = lines[i][:at] + piece + lines[i][at:]
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        if not lines:
            break
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@FUZZ
@given(text=edited_iris())
def test_edited_iris_text(folder: Path, text: str) -> None:
    _validate(folder, text)
