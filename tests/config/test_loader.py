"""The front end as a whole: read -> overlay -> render -> schema -> checks -> ProjectSpec."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from project_text import WriteProject, edit_text

from kmlc.config.loader import check_project, load_project
from kmlc.config.spec import ProjectSpec
from kmlc.errors import ConfigErrors


def test_iris_example_is_valid(iris_file: Path) -> None:
    result = check_project(iris_file)
    assert result.errors == [] and result.warnings == []
    spec = result.spec
    assert isinstance(spec, ProjectSpec)
    assert spec.name == "iris"
    assert len(spec.nodes) == 6
    assert len(spec.datasets) == 8
    assert spec.pipeline_names == ("__default__", "inference", "training")
    assert spec.model is not None and spec.model.input == "instances"


def test_spec_of_the_demo(write_project: WriteProject) -> None:
    path = write_project()
    spec = load_project(path)
    assert spec.path == path.resolve()
    assert spec.root == path.parent.resolve()
    assert spec.version == 1
    assert spec.code == (path.parent.resolve(),)
    assert spec.tracking.uri is None  # not in the file: kmlc.config.target decides
    assert spec.tracking.experiment == "demo"
    assert spec.parameters == {"alpha": 0.5, "split": {"ratio": 0.2, "seed": 7}}
    assert spec.pipeline_names == ("__default__", "etl", "inference", "training")
    assert spec.env is None
    fit = spec.node("fit")
    assert fit.inputs == ("features", "params:alpha", "params:split")
    assert fit.source is not None
    assert (fit.source.line, fit.source.column, fit.source.key_path) == (17, 5, ("nodes", 1))
    assert spec.node("evaluate").inputs == {"model": "model_file", "features": "features"}
    assert spec.datasets["score"].is_mlflow
    assert spec.datasets["instances"].filepath == "data/instances.csv"
    assert spec.model is not None
    assert (spec.model.artifact_path, spec.model.signature, spec.model.pip_requirements) == (
        "model", "auto", "auto")


def test_spec_is_frozen(write_project: WriteProject) -> None:
    spec = load_project(write_project())
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


def test_rendered_text_and_hash(write_project: WriteProject) -> None:
    spec = load_project(write_project())
    assert "environments" not in spec.rendered_text
    assert "demo_nodes.fit" in spec.rendered_text
    assert spec.rendered_hash == hashlib.sha256(spec.rendered_text.encode()).hexdigest()


def test_environment_and_params(write_project: WriteProject) -> None:
    path = write_project()
    spec = load_project(path, env="prod", params=["split.seed=11", "alpha:=x"])
    assert spec.env == "prod"
    assert spec.tracking.experiment == "demo-prod"
    assert spec.parameters == {"alpha": "x", "split": {"ratio": 0.2, "seed": 11}}


def test_load_project_raises_every_error(write_project: WriteProject, demo_yaml: str) -> None:
    text = edit_text(demo_yaml, ("version: 1", "version: 2"), ("name: demo", "name: [x]"))
    path = write_project(text)
    with pytest.raises(ConfigErrors) as info:
        load_project(path)
    assert [(e.line, e.code) for e in info.value.errors] == [(1, "KMLC204"), (2, "KMLC203")]
    assert str(info.value).count("\n") == 1
    assert info.value.message == "2 errors found"


def test_errors_keep_the_text_for_excerpts(write_project: WriteProject, demo_yaml: str) -> None:
    result = check_project(write_project(edit_text(demo_yaml, ("version: 1", "version: 2"))))
    assert result.spec is None
    assert result.text.startswith("version: 2\n")


def test_read_errors_come_back_as_a_result(tmp_path: Path) -> None:
    result = check_project(tmp_path / "missing.yml")
    assert result.spec is None
    assert [e.code for e in result.errors] == ["KMLC101"]


def test_render_errors_are_all_collected(write_project: WriteProject, demo_yaml: str) -> None:
    text = edit_text(demo_yaml, ("name: demo", 'name: "{{ a }}"'),
                     ("alpha: 0.5", 'alpha: "{{ b }}"'))
    result = check_project(write_project(text))
    assert [(e.line, e.code) for e in result.errors] == [(2, "KMLC112"), (4, "KMLC112")]


def test_display_name_is_the_path_given(write_project: WriteProject, demo_yaml: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_project(edit_text(demo_yaml, ("version: 1", "version: 2")))
    monkeypatch.chdir(path.parent)
    assert check_project("mlproject.yml").errors[0].file == "mlproject.yml"
    assert check_project(path).errors[0].file == str(path)


def test_missing_code_folder(write_project: WriteProject, demo_yaml: str) -> None:
    path = write_project(edit_text(demo_yaml, ("name: demo\n", "name: demo\ncode: [., src]\n")))
    result = check_project(path)
    [err] = result.errors
    assert (err.code, err.line, err.column, err.path) == ("KMLC406", 3, 11, "code[1]")
    assert err.message == f"code folder '{path.parent.resolve() / 'src'}' does not exist"


def test_credentials(write_project: WriteProject, demo_yaml: str) -> None:
    text = edit_text(demo_yaml, ("parameters:\n", "credentials: creds.yml\nparameters:\n"),
                 ("filepath: data/instances.csv}",
                  "filepath: data/instances.csv, credentials: db}"))
    path = write_project(text, files={"creds.yml": "db:\n  user: admin\n  password: hunter2-x\n"})
    spec = load_project(path)
    assert spec.credentials == {"db": {"user": "admin", "password": "hunter2-x"}}
    assert "hunter2-x" in spec.secrets and "admin" in spec.secrets
    assert "hunter2-x" not in spec.rendered_text


def test_missing_credentials_entry(write_project: WriteProject, demo_yaml: str) -> None:
    text = edit_text(demo_yaml, ("parameters:\n", "credentials: creds.yml\nparameters:\n"),
                 ("filepath: data/instances.csv}",
                  "filepath: data/instances.csv, credentials: s3}"))
    [err] = check_project(write_project(text, files={"creds.yml": "db: {user: a}\n"})).errors
    assert (err.code, err.path) == ("KMLC121", "datasets.instances.credentials")
    assert err.message == "credentials 's3' not found"


def test_credentials_without_file(write_project: WriteProject, demo_yaml: str) -> None:
    text = edit_text(demo_yaml, ("filepath: data/instances.csv}",
                             "filepath: data/instances.csv, credentials: db}"))
    [err] = check_project(write_project(text)).errors
    assert err.message == "credentials 'db' not found (no `credentials:` file)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "credentials file: file not found: "),
        ("- a\n", "credentials file: the document must be a mapping of keys, found a list"),
        ("a: [\n", "credentials file: invalid YAML: "),
    ],
)
def test_bad_credentials_file(write_project: WriteProject, demo_yaml: str, content: str | None,
                              message: str) -> None:
    text = edit_text(demo_yaml, ("parameters:\n", "credentials: creds.yml\nparameters:\n"))
    files = {"creds.yml": content} if content is not None else {}
    [err] = check_project(write_project(text, files=files)).errors
    assert (err.code, err.line, err.column, err.path) == ("KMLC120", 3, 14, "credentials")
    assert err.message.startswith(message)


def test_secret_env_values_are_masked(write_project: WriteProject, demo_yaml: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMLC_TEST_TOKEN", "tok-123456")
    text = edit_text(demo_yaml, ("parameters:\n", "tracking:\n  uri: \"http://u:{{ env("
                             "'KMLC_TEST_TOKEN', secret=true) }}@host\"\nparameters:\n"))
    spec = load_project(write_project(text))
    assert spec.tracking.uri == "http://u:tok-123456@host"
    assert spec.secrets == ("u:tok-123456", "tok-123456")  # the URI's userinfo too
    assert "tok-123456" not in spec.rendered_text
    assert "http://***@host" in spec.rendered_text


def test_warnings_do_not_block_the_spec(write_project: WriteProject, demo_yaml: str) -> None:
    result = check_project(write_project(edit_text(demo_yaml, ("  alpha: 0.5\n",
                                                           "  alpha: 0.5\n  unused: 1\n"))))
    assert result.spec is not None
    assert [w.code for w in result.warnings] == ["KMLC351"]


def test_validating_writes_nothing(write_project: WriteProject, tmp_path: Path) -> None:
    write_project()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert check_project(tmp_path / "mlproject.yml").spec is not None
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


# ----------------------------------------------------------------- once known bugs


def test_errors_are_sorted_by_position(write_project: WriteProject, demo_yaml: str) -> None:
    # two mistakes of one kind, lines apart
    result = check_project(write_project(edit_text(
        demo_yaml, ("type: pandas.CSVDataset, filepath: data/predictions.csv",
                    "type: pandas.CSVDatset, filepath: data/predictions.csv"),
        ("type: pandas.CSVDataset, filepath: data/instances.csv",
         "type: pandas.CSVDatset, filepath: data/instances.csv"))))
    positions = [(e.line, e.column) for e in result.errors]
    assert len(positions) >= 2
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("name: demo\n", 'name: demo\ncode: ["sr\\0c"]\n', ("KMLC406", 3, 8, "code[0]")),
        ("name: demo\n", 'name: demo\ncredentials: "c\\0.yml"\n',
         ("KMLC120", 3, 14, "credentials")),
    ],
)
def test_nul_byte_in_paths_is_a_config_error(write_project: WriteProject, demo_yaml: str,
                                             old: str, new: str,
                                             where: tuple[str, int, int, str]) -> None:
    try:
        result = check_project(write_project(edit_text(demo_yaml, (old, new))))
    except ValueError as exc:
        raise AssertionError(f"ValueError escaped: {exc}") from exc
    errors = [e for e in result.errors if e.code == where[0]]
    assert [(e.code, e.line, e.column, e.path) for e in errors] == [where]
    assert "is not a valid path" in errors[0].message
