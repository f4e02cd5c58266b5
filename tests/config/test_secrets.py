"""Secrets: the masking rule, which rendered values hold one, and where validate refuses one."""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from click.testing import CliRunner
from project_text import WriteProject, edit_text

from kmlc.cli import main
from kmlc.config.loader import check_project, load_project
from kmlc.config.render import render_document
from kmlc.config.secrets import Secrets, redact_uri, uri_secrets
from kmlc.config.source import parse_text

SECRET = "s3cr3t-Planted-42"
PLANT = "\"{{ env('KMLC_TEST_SECRET', secret=true) }}\""


@pytest.fixture(autouse=True)
def _secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMLC_TEST_SECRET", SECRET)


def test_mask_replaces_longest_first_and_keeps_other_text() -> None:
    secrets = Secrets(["abc", "abcdef", ""])
    assert list(secrets) == ["abcdef", "abc"]
    assert secrets.mask("x abcdef y abc z") == "x *** y *** z"
    assert secrets.mask("nothing here") == "nothing here"
    assert secrets == ("abc", "abcdef") and "abc" in secrets and len(secrets) == 2


def test_mask_data_masks_strings_at_any_depth_and_keeps_other_leaves() -> None:
    secrets = Secrets([SECRET])
    data = {"a": [f"x{SECRET}", 3, {"b": SECRET}], f"k{SECRET}": True, "n": None}
    assert secrets.mask_data(data) == {"a": ["x***", 3, {"b": "***"}], "k***": True, "n": None}


@pytest.mark.parametrize(("text", "expected"), [
    ("http://user:pw@host:5000", "http://***@host:5000"),
    ("error on postgresql://kmlc:p%40ss@db/mlflow: refused",
     "error on postgresql://***@db/mlflow: refused"),
    ("http://host:5000/api", "http://host:5000/api"),  # a port is no password
    ("ssh://git@github.com/x", "ssh://git@github.com/x"),  # a user alone is no secret
    ("'https://a:b@h' and http://c:d@e", "'https://***@h' and http://***@e"),
])
def test_redact_uri(text: str, expected: str) -> None:
    assert redact_uri(text) == expected
    assert Secrets().mask(text) == expected


def test_uri_secrets_are_the_userinfo_and_password_decoded_too() -> None:
    assert uri_secrets("http://u:p%40ss@host") == {"u:p%40ss", "u:p@ss", "p%40ss", "p@ss"}
    assert uri_secrets("http://u@host") == set()
    assert uri_secrets("sqlite:///mlflow.db") == set()


def test_masked_logs_masks_every_record_created_inside(caplog: pytest.LogCaptureFixture) -> None:
    secrets = Secrets([SECRET])
    logger = logging.getLogger("kmlc.test.secrets")
    with caplog.at_level(logging.INFO, logger="kmlc.test.secrets"):
        with secrets.masked_logs():
            logger.info("loading with %s", {"token": SECRET})
        logger.info("after: %s", SECRET)
    assert caplog.messages == ["loading with {'token': '***'}", f"after: {SECRET}"]


def test_renderer_records_the_paths_rendered_from_a_secret() -> None:
    doc = parse_text(
        "parameters:\n"
        f"  token: {PLANT}\n"
        "  plain: \"{{ env('KMLC_TEST_SECRET') }}\"\n"
        "tracking:\n"
        "  tags: {owner: \"{{ params.token }}\", team: \"{{ 'a' ~ 'b' }}\"}\n", "m.yml")
    result = render_document(doc)
    assert result.secrets == {SECRET}
    # the second parameter reads the same value, not as a secret; it holds it all the same
    assert set(result.secret_paths) == {("parameters", "token"), ("parameters", "plain"),
                                        ("tracking", "tags", "owner")}


def test_a_render_error_quoting_a_secret_is_masked() -> None:
    doc = parse_text("name: \"{{ env('KMLC_TEST_SECRET', secret=true) | int(strict) }}\"\n",
                     "m.yml")
    with pytest.raises(Exception) as info:
        render_document(doc)
    assert SECRET not in str(info.value.errors[0])  # type: ignore[attr-defined]


@pytest.mark.parametrize(("old", "new", "path", "message"), [
    ("name: demo\n", f"name: {PLANT}\n", "name",
     "the project's name is the default MLflow experiment name"),
    ("parameters:\n", f"tracking:\n  experiment: {PLANT}\nparameters:\n", "tracking.experiment",
     "the MLflow experiment name"),
    ("  input: instances\n", f"  input: instances\n  artifact_path: {PLANT}\n",
     "model.artifact_path", "the model's artifact path"),
    ("  input: instances\n", f"  input: instances\n  alias: {PLANT}\n", "model.alias",
     "the registered model's alias"),
    ("filepath: data/instances.csv}", f"filepath: {PLANT}}}", "datasets.instances.filepath",
     "names, places or wires the dataset"),
    ("    inputs: instances\n", f"    inputs: {PLANT}\n", "nodes[0].inputs",
     "the pipeline's wiring"),
    ("filepath: data/model.pkl}", f"filepath: data/model.pkl, load_args: {{encoding: {PLANT}}}}}",
     "datasets.model_file.load_args.encoding", "'model_file' is packed into a model"),
    ("    inputs: [model_file, features]\n    outputs: predictions",
     "    inputs: [model_file, features, params:split]\n    outputs: predictions",
     "parameters.split.seed", "inference reads this parameter"),
])
def test_validate_refuses_a_secret_where_it_cannot_be_masked(
        write_project: WriteProject, demo_yaml: str, old: str, new: str, path: str,
        message: str) -> None:
    text = edit_text(demo_yaml, (old, new), ("seed: 7", f"seed: {PLANT}"))
    result = check_project(write_project(text))
    refused = [e for e in result.errors if e.code == "KMLC115"]
    assert [e.path for e in refused] == [path]
    assert message in refused[0].message and refused[0].line > 0
    if path != "parameters.split.seed":  # the parameter alone is fine: training reads it
        assert not [e for e in check_project(write_project(
            edit_text(demo_yaml, ("seed: 7", f"seed: {PLANT}")))).errors]


def test_secrets_are_accepted_where_they_are_masked(write_project: WriteProject,
                                                    demo_yaml: str) -> None:
    text = edit_text(
        demo_yaml,
        ("parameters:\n", f"tracking:\n  run_name: {PLANT}\n  tags: {{owner: {PLANT}}}\n"
                          f"  uri: \"sqlite:///mlflow.db\"\nparameters:\n  note: {PLANT}\n"),
        ("filepath: data/instances.csv}",
         f"filepath: data/instances.csv, load_args: {{na_values: {PLANT}}}}}"),
        ("filepath: data/predictions.csv}",
         f"filepath: data/predictions.csv, save_args: {{na_rep: {PLANT}}}}}"))
    spec = load_project(write_project(text))
    assert spec.tracking.tags["owner"] == SECRET  # the spec keeps it: nodes and Kedro need it
    assert SECRET not in spec.rendered_text and spec.rendered_text.count("***") == 5
    logged = yaml.safe_load(spec.rendered_text)  # still YAML: ``***`` unquoted is an alias
    assert logged["tracking"]["tags"]["owner"] == logged["parameters"]["note"] == "***"


def test_every_validate_message_is_masked(write_project: WriteProject, demo_yaml: str) -> None:
    """Messages that quote a value (did-you-mean, schema enums) never show the secret."""
    text = edit_text(demo_yaml, ("  input: instances\n",
                                 f"  input: \"x-{{{{ env('KMLC_TEST_SECRET', secret=true) }}}}\"\n"
                                 f"  signature: {PLANT}\n"))
    path = write_project(text)
    for args in (["validate", "-f", str(path)], ["validate", "-f", str(path), "--format", "json"],
                 ["run", "training", "-f", str(path)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output
        assert SECRET not in result.output and "***" in result.output
    errors = json.loads(CliRunner().invoke(
        main, ["validate", "-f", str(path), "--format", "json"]).output)
    assert {e["path"] for e in errors} >= {"model.input", "model.signature"}


def test_mlflow_login_variables_are_secrets(write_project: WriteProject, demo_yaml: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "mlflow-pw-Zq7")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "mlflow-token-Zq7")
    spec = load_project(write_project(demo_yaml))
    assert {"mlflow-pw-Zq7", "mlflow-token-Zq7"} <= set(spec.secrets)


def test_params_override_of_a_declared_secret_is_secret(write_project) -> None:
    """A value given with --params for a parameter the file declares secret stays secret."""
    from kmlc import load_project

    text = ("version: 1\nname: s\nparameters:\n"
            "  token: \"{{ env('KMLC_TEST_UNSET_TOKEN', 'x', secret=true) }}\"\n"
            "  plain: 1\n"
            "datasets:\n  instances: {type: pandas.CSVDataset, filepath: i.csv}\n"
            "nodes:\n  - {name: n, func: demo_nodes.clean, inputs: instances, outputs: o}\n")
    path = write_project(text)
    spec = load_project(path, params=("token=cl1-s3cret", "plain=2"))
    assert spec.parameters["token"] == "cl1-s3cret"
    assert spec.secrets.mask("kmlc run --params token=cl1-s3cret") == (
        "kmlc run --params token=***")
    assert spec.secrets.mask("plain=2") == "plain=2"  # a plain override stays plain


def test_a_secret_packed_by_a_node_with_one_tag_is_refused(write_project: WriteProject,
                                                            demo_yaml: str) -> None:
    """``tags: inference`` (one tag, not a list) makes an inference node all the same."""
    text = edit_text(demo_yaml,
                     ("    outputs: predictions\n    tags: [inference]",
                      "    outputs: predictions\n    tags: inference"),
                     ("filepath: data/model.pkl}",
                      f"filepath: data/model.pkl, load_args: {{encoding: {PLANT}}}}}"))
    refused = [e for e in check_project(write_project(text)).errors if e.code == "KMLC115"]
    assert [e.path for e in refused] == ["datasets.model_file.load_args.encoding"]
    assert "'model_file' is packed into a model" in refused[0].message


def test_a_secret_packed_by_namespaced_inference_copies_is_refused(
        write_project: WriteProject, demo_yaml: str) -> None:
    """The inference pipeline is made of namespaced copies (``serve.clean``,
    ``serve.predict``: the ``tags:`` of their pipeline): the model packs ``model_file``,
    which the copies read, so its secret cannot be masked."""
    text = edit_text(demo_yaml,
                     ("    tags: [training, inference]", "    tags: [training]"),
                     ("    outputs: predictions\n    tags: [inference]",
                      "    outputs: predictions"),
                     ("filepath: data/model.pkl}",
                      f"filepath: data/model.pkl, load_args: {{encoding: {PLANT}}}}}"),
                     ("  etl: {tags: [training]}\n",
                      "  etl: {tags: [training]}\n  serve:\n    namespace: serve\n"
                      "    nodes: [clean, predict]\n    tags: [inference]\n"
                      "    inputs: {instances: instances, model_file: model_file}\n"))
    result = check_project(write_project(text))
    refused = [e for e in result.errors if e.code == "KMLC115"]
    assert [e.path for e in refused] == ["datasets.model_file.load_args.encoding"], \
        result.errors
    assert "'model_file' is packed into a model" in refused[0].message
