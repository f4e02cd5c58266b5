"""``kmlc validate`` and ``kmlc schema`` through click's CliRunner, and one real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from project_text import WriteProject, edit_text

from kmlc import __version__
from kmlc.cli import main

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "mlproject.schema.json"
VALID_LINE = ("mlproject.yml: valid: 4 nodes, 4 datasets, 4 pipelines "
              "(__default__, etl, inference, training)")


@pytest.fixture
def validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run ``kmlc validate ARGS`` in the project folder."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["validate", *args])

    return run


def _no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_valid_project(write_project: WriteProject, validate: Callable[..., Result]) -> None:
    write_project()
    result = validate()
    assert result.exit_code == 0, result.output
    assert result.stdout == VALID_LINE + "\n"
    assert result.stderr == ""


def test_explicit_file(write_project: WriteProject, validate: Callable[..., Result]) -> None:
    write_project(name="other.yml")
    result = validate("-f", "other.yml")
    assert result.exit_code == 0
    assert result.stdout.startswith("other.yml: valid: ")
    long = validate("--file", "other.yml")
    assert long.exit_code == 0 and long.stdout == result.stdout  # the same file, checked


def test_invalid_project(write_project: WriteProject, validate: Callable[..., Result],
                         demo_yaml: str) -> None:
    write_project(edit_text(demo_yaml, ("func: demo_nodes.clean", "func: demo_node.clean"),
                        ("datasets:", "datasests:")))
    result = validate()
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "1 error found",
        "mlproject.yml:6:1: error: datasests: unknown key 'datasests' "
        "(did you mean 'datasets'?) [KMLC201]",
    ]


def test_every_error_line_is_located(write_project: WriteProject,
                                     validate: Callable[..., Result], demo_yaml: str) -> None:
    write_project(edit_text(demo_yaml, ("func: demo_nodes.clean", "func: demo_node.clean"),
                        ("params:alpha,", "params:alpah,"),
                        ("outputs: score", "outputs: features")))
    result = validate()
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "3 errors, 2 warnings found"
    pattern = re.compile(r"^mlproject\.yml:[1-9]\d*:[1-9]\d*: (error|warning): \S+: .+ "
                         r"\[KMLC\d{3}\]$")
    assert all(pattern.match(line) for line in lines[1:]), lines
    assert sorted(re.findall(r"error: .*\[(KMLC\d+)\]", result.stderr)) == [
        "KMLC302", "KMLC304", "KMLC401"]
    assert "(did you mean 'demo_nodes'?)" in result.stderr
    assert "(did you mean 'params:alpha'?)" in result.stderr


def test_missing_file(validate: Callable[..., Result]) -> None:
    result = validate("-f", "nope.yml")
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "1 error found",
        "nope.yml: error: file not found: nope.yml (pass -f PATH, or run in the folder that "
        "holds mlproject.yml or a folder below it) [KMLC101]"]


def test_json_output_valid(write_project: WriteProject, validate: Callable[..., Result]) -> None:
    write_project()
    result = validate("--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_json_output_invalid(write_project: WriteProject, validate: Callable[..., Result],
                             demo_yaml: str) -> None:
    write_project(edit_text(demo_yaml, ("datasets:", "datasests:")))
    result = validate("--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [{
        "file": "mlproject.yml", "line": 6, "column": 1, "path": "datasests", "code": "KMLC201",
        "message": "unknown key 'datasests'", "hint": "did you mean 'datasets'?",
        "severity": "error",
    }]


def test_json_output_with_errors_and_warnings(write_project: WriteProject,
                                              validate: Callable[..., Result],
                                              demo_yaml: str) -> None:
    write_project(edit_text(demo_yaml, ("  alpha: 0.5\n", "  alpha: 0.5\n  unused: 1\n"),
                        ("func: demo_nodes.fit", "func: demo_nodes.fitt")))
    data = json.loads(validate("--format", "json").stdout)
    assert [(d["code"], d["severity"], d["line"], d["column"], d["path"]) for d in data] == [
        ("KMLC403", "error", 19, 11, "nodes[1].func"),
        ("KMLC351", "warning", 5, 3, "parameters.unused"),
    ]
    assert data[0]["hint"] == "did you mean 'fit'?"


def test_warnings_fail_only_when_strict(write_project: WriteProject,
                                        validate: Callable[..., Result], demo_yaml: str) -> None:
    write_project(edit_text(demo_yaml, ("  score:", "  orphan: {type: mlflow.metric}\n  score:")))
    result = validate()
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "mlproject.yml:9:3: warning: datasets.orphan: dataset 'orphan' is not used by any node "
        "[KMLC350]",
        VALID_LINE.replace("4 datasets", "5 datasets"),
    ]
    strict = validate("--strict")
    assert strict.exit_code == 1
    assert strict.stdout == ""  # never "valid" when --strict fails
    assert strict.stderr.splitlines() == [
        "1 warning found, and --strict fails on warnings",
        "mlproject.yml:9:3: warning: datasets.orphan: dataset 'orphan' is not used by any node "
        "[KMLC350]",
    ]
    strict_json = validate("--strict", "--format", "json")
    assert strict_json.exit_code == 1
    plain_json = validate("--format", "json")
    assert plain_json.exit_code == 0
    for done in (strict_json, plain_json):  # the warning, as data, either way
        assert [(e["code"], e["severity"], e["path"]) for e in json.loads(done.stdout)] == [
            ("KMLC350", "warning", "datasets.orphan")]


def test_env_option(write_project: WriteProject, validate: Callable[..., Result]) -> None:
    write_project()
    prod = validate("--env", "prod")
    assert prod.exit_code == 0 and prod.stdout.startswith("mlproject.yml: valid: "), prod.output
    result = validate("--env", "prdo")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1] == (
        "mlproject.yml:36:1: error: environments: environment 'prdo' is not defined "
        "(did you mean 'prod'?) [KMLC110]")


def test_params_option(write_project: WriteProject, validate: Callable[..., Result]) -> None:
    write_project()
    assert validate("--params", "alpha=2", "--params", "split.seed=3").exit_code == 0
    result = validate("--params", "alpha.x=2")
    assert result.exit_code == 1
    assert "mlproject.yml:4:10: error: parameters.alpha: --params 'alpha.x=2': parameter " \
           "'alpha' is not a mapping [KMLC111]" in result.stderr


def test_params_matching_no_parameter(write_project: WriteProject,
                                      validate: Callable[..., Result]) -> None:
    write_project()
    result = validate("--params", "split.sed=3", "--params", "forest.n_estimatorz=10",
                      "--params", "alpha=1")
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "2 errors found",
        "--params forest.n_estimatorz=10: error: parameters.forest.n_estimatorz: parameter "
        "'forest.n_estimatorz' is not defined in `parameters` (parameters: alpha, split.ratio, "
        "split.seed) [KMLC111]",
        "--params split.sed=3: error: parameters.split.sed: parameter 'split.sed' is not defined "
        "in `parameters` (did you mean 'split.seed'?) [KMLC111]",
    ]


def test_warning_about_a_command_line_value_names_it(write_project: WriteProject,
                                                     validate: Callable[..., Result],
                                                     demo_yaml: str) -> None:
    write_project(edit_text(demo_yaml, ("  alpha: 0.5\n", "  alpha: 0.5\n  unused: 1\n")))
    # a mapping for a number: a new type, asked for with `:=`
    result = validate("--params", "unused:={a: 1}", "--excerpt")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == (
        "--params 'unused:={a: 1}': warning: parameters.unused: parameter 'unused' is not read "
        "by any node [KMLC351]")


def test_flavor_is_checked_without_importing_mlflow(write_project: WriteProject,
                                                    validate: Callable[..., Result],
                                                    demo_yaml: str) -> None:
    write_project(edit_text(demo_yaml, ("  score: {type: mlflow.metric}",
                                        "  score: {type: mlflow.model, flavor: mlflow.sklearnn}")))
    result = validate()
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1] == (
        "mlproject.yml:9:39: error: datasets.score.flavor: 'mlflow.sklearnn' is not an MLflow "
        "flavor (did you mean 'mlflow.sklearn'?) [KMLC332]")


@pytest.mark.parametrize("item", ["alpha", "=1", "a..b=1"])
def test_malformed_params_option(write_project: WriteProject, validate: Callable[..., Result],
                                 item: str) -> None:
    write_project()
    result = validate("--params", item)
    _no_traceback(result)
    assert result.exit_code == 2, result.output
    assert f"'{item}' is not of the form KEY.PATH=VALUE" in result.output
    assert "Error: Invalid value for '--params'" in result.output
    assert "--params:0:0" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("--format", "xml"),
        ("--bogus",),
        ("--env",),
        ("-f",),
        ("-f", "."),
        ("extra-argument",),
    ],
)
def test_usage_errors_exit_2(write_project: WriteProject, validate: Callable[..., Result],
                             args: tuple[str, ...]) -> None:
    write_project()
    result = validate(*args)
    assert result.exit_code == 2, result.output
    assert "Error:" in result.output


def test_excerpts(write_project: WriteProject, validate: Callable[..., Result],
                  demo_yaml: str) -> None:
    write_project(edit_text(demo_yaml, ("func: demo_nodes.clean", "func: demo_node.clean")))
    shown = validate("--excerpt").stderr.splitlines()
    assert shown[2:] == ["  12 |   - name: clean",
                         "  13 |     func: demo_node.clean",
                         "     |           ^"]
    assert "|" not in validate("--no-excerpt").stderr
    assert "|" not in validate().stderr  # not a terminal


def test_help_and_version() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["validate", "--help"])
    assert result.exit_code == 0
    for option in ("--file", "--env", "--params", "--format", "--strict"):
        assert option in result.output
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"kmlc, version {__version__}\n"


def test_schema_command() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert result.stdout == SCHEMA_FILE.read_text("utf-8")
    assert json.loads(result.stdout)["title"] == "kmlc mlproject.yml"


_IN_PROCESS = textwrap.dedent("""
    import sys
    from kmlc.cli import main
    sys.argv = ["kmlc", "validate", "-f", sys.argv[1]]
    try:
        main()
    except SystemExit as exc:
        status = exc.code
    heavy = sorted(m for m in sys.modules
                   if m.split(".")[0] == "mlflow" or m.startswith("kedro.runner"))
    print("RESULT", status, heavy)
""")


@pytest.mark.parametrize(("pair", "status"), [
    (None, 0),
    (("  input: instances\n", "  input: nothing\n"), 1),
    (("  score: {type: mlflow.metric}", "  score: {type: mlflow.model, flavor: mlflow.sklearn}"),
     0),  # the flavor is checked by reading MLflow's files
    (("  score: {type: mlflow.metric}", "  score: {type: mlflow.model, flavor: mlflow.sklearnn}"),
     1),
])
def test_validate_never_imports_mlflow(write_project: WriteProject, demo_yaml: str,
                                       pair: tuple[str, str] | None, status: int) -> None:
    text = edit_text(demo_yaml, pair) if pair else demo_yaml
    path = write_project(text)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "DO_NOT_TRACK": "1",
           "KEDRO_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-c", _IN_PROCESS, str(path)], capture_output=True,
                          text=True, timeout=120, env=env, cwd=path.parent)
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last == f"RESULT {status} []"
