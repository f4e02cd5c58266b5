"""Secrets: the masking rule, which rendered values hold one, and where validate refuses one."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from project_text import WriteProject, edit_text

from kmlc.cli import main
from kmlc.compiler.fingerprint import SECRET_KEY_FILE, node_fingerprint, node_hash
from kmlc.compiler.project import compile_project
from kmlc.config.functions import code_path
from kmlc.config.loader import check_project, load_project
from kmlc.config.nodes import io_shape
from kmlc.config.params import param_inputs
from kmlc.config.render import render_document
from kmlc.config.secrets import Secrets, mask_secrets, redact_uri, uri_secrets
from kmlc.config.source import load_value, parse_text
from kmlc.inspect.manifest import build_manifest, manifest_json

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


def test_secrets_combine_compare_and_mask_values_by_key() -> None:
    """``|`` keeps both sides' values and paths; equality ignores order; a value at a
    secret key path is masked as text where that keeps it readable, else whole."""
    first = Secrets(["alpha-1"], [("parameters", "a")])
    both = first | Secrets(["beta-222"], [("tracking", "tags", "b")])
    assert list(both) == ["beta-222", "alpha-1"] and bool(both) and not Secrets()
    assert both.paths == (("parameters", "a"), ("tracking", "tags", "b"))
    assert (first | ["gamma-333"]) == {"alpha-1", "gamma-333"}
    assert both == Secrets(["alpha-1", "beta-222"]) and both != Secrets(["alpha-1"])
    assert "alpha" not in both and "alpha-1" in both
    assert both.mask_value("x alpha-1 y") == "x *** y"
    assert both.mask_value("derived, no secret text") == "***"
    assert both.mask_value(4821) == "***"
    assert both.mask_data((f"a{SECRET}", 12, 3.5, False)) == (f"a{SECRET}", 12, 3.5, False)
    pin = Secrets(["4821"])
    assert pin.mask_data({"pin": 4821, "float": 4821.5, "flag": True, "ok": 7}) == {
        "pin": "***", "float": "***", "flag": True, "ok": 7}
    document = {"parameters": {"a": "derived", "b": ["alpha-1 in a list", 1]},
                "name": "alpha-1", "tracking": {"tags": {"b": "http://u:alpha-1@h"}}}
    assert both.mask_document(document) == {
        "parameters": {"a": "***", "b": ["*** in a list", 1]}, "name": "***",
        "tracking": {"tags": {"b": "http://***@h"}}}  # at a secret path, still readable


def test_which_parameters_are_secret() -> None:
    secrets = Secrets(["v"], [("parameters", "model", "token"), ("tracking", "tags", "x")])
    assert secrets.param_is_secret("model.token")
    assert secrets.param_is_secret("model")  # holds a secret
    assert secrets.param_is_secret("model.token.part")  # part of one
    assert secrets.param_is_secret("model/token", sep="/")
    assert secrets.param_is_secret("parameters")
    assert not secrets.param_is_secret("model.tok")
    assert not secrets.param_is_secret("other")
    assert not secrets.param_is_secret("tags.x")
    assert not Secrets(["v"], [("tracking", "tags", "x")]).param_is_secret("parameters")


def test_a_secret_parameter_is_found_whatever_paths_come_before_it() -> None:
    """The paths are in the order the renderer met them: a tag read from a secret may
    come before the parameter that holds it."""
    secrets = Secrets(["v"], [("tracking", "tags", "x"), ("datasets", "d", "filepath"),
                              ("parameters", "model", "token")])
    assert secrets.param_is_secret("model.token") and secrets.param_is_secret("model")
    assert not secrets.param_is_secret("other")


def test_mask_secrets_takes_secrets_or_plain_values() -> None:
    text = f"token {SECRET} on http://u:pw@host"
    assert mask_secrets(text, [SECRET]) == "token *** on http://***@host"
    assert mask_secrets(text, {SECRET}) == "token *** on http://***@host"
    assert mask_secrets(text, Secrets([SECRET], [("parameters", "t")])) == (
        "token *** on http://***@host")
    assert mask_secrets(text, []) == f"token {SECRET} on http://***@host"


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
    assert uri_secrets(None) == set() and uri_secrets("") == set()
    # an '@' left unencoded in the password: the userinfo ends at the last one
    assert uri_secrets("http://u:p@ss@host") == {"u:p@ss", "p@ss"}


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


@pytest.mark.parametrize(("old", "new", "path", "message"), [
    ("  score: {type: mlflow.metric}\n",
     f"  score: {{type: mlflow.metric}}\n  sk: {{type: mlflow.model, flavor: sklearn, "
     f"save_args: {{serialization_format: {PLANT}}}}}\n",
     "datasets.sk.save_args.serialization_format", "are logged with its model"),
    ("parameters:\n", f"tracking:\n  disable_for: [{PLANT}]\nparameters:\n",
     "tracking.disable_for[0]", "the pipeline's wiring"),
])
def test_validate_refuses_a_secret_a_model_or_a_tracking_list_would_show(
        write_project: WriteProject, demo_yaml: str, old: str, new: str, path: str,
        message: str) -> None:
    """A logged model carries its save_args in clear; of ``tracking``, only the run name,
    the URIs and the tags are masked (a pipeline name in disable_for is not)."""
    result = check_project(write_project(edit_text(demo_yaml, (old, new))))
    refused = [e for e in result.errors if e.code == "KMLC115"]
    assert [e.path for e in refused] == [path]
    assert message in refused[0].message


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


# ------------------------------------------------------------ values computed from a secret

DERIVED_DOC = (
    "parameters:\n"
    "  pin: \"{{ env('KMLC_TEST_PIN', secret=true) }}\"\n"
    "  upper: \"{{ env('KMLC_TEST_SECRET', secret=true) | upper }}\"\n"
    "  reversed: \"{{ env('KMLC_TEST_SECRET', secret=true)[::-1] }}\"\n"
    "  head: \"{{ env('KMLC_TEST_SECRET', secret=true)[:12] }}\"\n"
    "  joined: \"{{ 'id-' ~ env('KMLC_TEST_SECRET', secret=true)[3:9] ~ '-x' }}\"\n"
    "  size: \"{{ env('KMLC_TEST_SECRET', secret=true) | length }}\"\n"
    "  plain: 3\n"
    "  nested: {a: 1, b: \"{{ env('KMLC_TEST_SECRET', secret=true)[1:] }}\"}\n"
    "tracking:\n"
    "  tags:\n"
    "    lower: \"{{ params.upper | lower }}\"\n"
    "    plain: \"{{ params.plain * 2 }}\"\n"
    "    sibling: \"{{ params.nested.a }}\"\n"
    "    whole: \"{{ params.nested | tojson }}\"\n"
    "    loop: \"{% for k, v in params.items() %}{{ v }}{% endfor %}\"\n"
    "    computed: \"{{ params['pl' ~ 'ain'] }}\"\n")


def test_a_value_computed_from_a_secret_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Filters, slices, concatenations, a number, and reads of a secret parameter taint
    the value (its key path is secret, its text masked); reads of plain ones do not."""
    monkeypatch.setenv("KMLC_TEST_PIN", "987654321987")
    result = render_document(parse_text(DERIVED_DOC, "m.yml"))
    params = result.doc.data["parameters"]
    assert params["pin"] == 987654321987 and params["size"] == len(SECRET)
    tainted = {".".join(map(str, p)) for p in result.secret_paths}
    assert tainted == {
        "parameters.pin", "parameters.upper", "parameters.reversed", "parameters.head",
        "parameters.joined", "parameters.size", "parameters.nested.b", "tracking.tags.lower",
        "tracking.tags.whole", "tracking.tags.loop", "tracking.tags.computed"}
    masking = Secrets(result.secrets)
    for value in (SECRET.upper(), SECRET[::-1], SECRET[:12], f"id-{SECRET[3:9]}-x",
                  SECRET[1:], SECRET.lower(), "987654321987"):
        assert masking.mask(f"x {value} y") == "x *** y", value
    # too short to be masked as text ("18" everywhere would be): masked by its key only
    assert "18" not in masking


def test_a_secret_that_looks_like_a_number_is_masked(
        write_project: WriteProject, demo_yaml: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMLC_TEST_PIN", "987654321987")
    pin = "env('KMLC_TEST_PIN', secret=true)"
    text = edit_text(demo_yaml, ("  alpha: 0.5\n", "  alpha: 0.5\n"
                                 f'  pin: "{{{{ {pin} }}}}"\n'
                                 f'  size: "{{{{ {pin} | length }}}}"\n'
                                 f'  half: "{{{{ ({pin} | int) / 2 }}}}"\n'))
    spec = load_project(write_project(text))
    assert spec.parameters["pin"] == 987654321987  # nodes get the number
    logged = yaml.safe_load(spec.rendered_text)["parameters"]
    assert logged["pin"] == logged["size"] == logged["half"] == "***"
    assert "987654321987" not in spec.rendered_text and "493827160993" not in spec.rendered_text
    assert spec.secrets.mask_data({"n": 987654321987, "f": 493827160993.5, "ok": 12}) == {
        "n": "***", "f": "***", "ok": 12}


# ------------------------------------------------------------ the node hash and a weak secret

PIN_PARAM = "  pin: \"{{ env('KMLC_TEST_PIN', secret=true) }}\"\n"


def _pin_project(write_project: WriteProject, demo_yaml: str, demo_nodes: str) -> Path:
    text = edit_text(demo_yaml, ("  alpha: 0.5\n", "  alpha: 0.5\n" + PIN_PARAM),
                     ("inputs: [features, params:alpha, params:split]",
                      "inputs: [features, params:alpha, params:split, params:pin]"))
    nodes = demo_nodes.replace("def fit(features, alpha, split):",
                               "def fit(features, alpha, split, pin):")
    return write_project(text, nodes)


def _manifest(path: Path, pin: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("KMLC_TEST_PIN", pin)
    sys.modules.pop("demo_nodes", None)
    try:
        return build_manifest(load_project(path))
    finally:
        sys.modules.pop("demo_nodes", None)


@pytest.mark.slow
def test_the_manifest_reveals_nothing_about_a_4_digit_pin(
        write_project: WriteProject, demo_yaml: str, demo_nodes: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every one of the 10,000 PINs, hashed as the node hash hashes a parameter, matches
    nothing in the manifest; and the manifest is the same whatever the PIN."""
    path = _pin_project(write_project, demo_yaml, demo_nodes)
    manifest = _manifest(path, "4821", monkeypatch)
    published = manifest["nodes"]["fit"]["hash"]
    text = manifest_json(manifest)
    assert "4821" not in text and manifest["nodes"]["fit"]["params"]["params:pin"] == "***"

    monkeypatch.setenv("KMLC_TEST_PIN", "4821")
    spec = load_project(path)
    with code_path(spec.code):
        node = {n.name: n for n in compile_project(spec).pipeline("training").nodes}["fit"]
        reads = param_inputs(tuple(node.inputs), spec.parameters)
        configs = {d: {"type": spec.datasets[d].type, **spec.datasets[d].config}
                   if d in spec.datasets else None
                   for d in (*node.inputs, *node.outputs) if d not in reads}
        shapes = (io_shape(node._inputs), io_shape(node._outputs))
        matches = [candidate for candidate in (load_value(f"{i:04d}") for i in range(10_000))
                   if node_hash(node.func, {**reads, "params:pin": candidate}, configs,
                                *shapes) == published]
    sys.modules.pop("demo_nodes", None)
    assert reads["params:pin"] == 4821 and matches == []
    # nor is anything else in the manifest a function of the PIN
    for pin in ("0000", "1234", "9999"):
        assert manifest_json(_manifest(path, pin, monkeypatch)) == text


def test_the_run_cache_key_still_changes_with_the_secret(
        write_project: WriteProject, demo_yaml: str, demo_nodes: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache's node hash keys the secret with a local key (``.kmlc/secret.key``,
    the owner's only): a changed PIN still invalidates, the key never leaves the folder."""
    path = _pin_project(write_project, demo_yaml, demo_nodes)
    root = path.parent

    def keyed(pin: str) -> str:
        monkeypatch.setenv("KMLC_TEST_PIN", pin)
        spec = load_project(path)
        with code_path(spec.code):
            node = {n.name: n for n in compile_project(spec).pipeline("training").nodes}["fit"]
            try:
                return node_fingerprint(node, spec, keyed=True)
            finally:
                sys.modules.pop("demo_nodes", None)

    assert not (root / SECRET_KEY_FILE).exists()
    first = keyed("4821")
    key_file = root / SECRET_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_bytes()) == 32
    assert keyed("4821") == first and keyed("4822") != first
    published = _manifest(path, "4821", monkeypatch)["nodes"]["fit"]["hash"]
    assert published != first  # the published hash is not the private one
    key_file.unlink()  # another key: another hash, which no record of the old key matches
    assert keyed("4821") != first


def test_found_in_sees_a_secret_or_a_uri_password_and_secrets_hash_by_value() -> None:
    secrets = Secrets(["tok-123"])
    assert secrets.found_in("a tok-123 b")
    assert not secrets.found_in("a tok-12 b")
    assert secrets.found_in("http://u:pw@host")  # a password, even one not listed
    assert not secrets.found_in("http://u@host")
    assert not Secrets().found_in("plain text")
    assert hash(Secrets(["a", "b"])) == hash(Secrets(["b", "a"]))
    assert len({Secrets(["a", "b"]), Secrets(["b", "a"]), Secrets(["c"])}) == 2
    assert repr(Secrets(["a", "b"])) == "Secrets(2 values)"
    assert Secrets([None, "", "x"]) == ("x",)  # type: ignore[list-item]
    assert Secrets(["x"]).__eq__(3) is NotImplemented
