"""Stage 2, overlay: ``--env NAME`` environments and ``--params k=v`` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kmlc.config.overlay import apply_overlays, parse_param_override
from kmlc.config.source import Document, parse_text
from kmlc.errors import ConfigError


@pytest.fixture
def doc(demo_yaml: str) -> Document:
    return parse_text(demo_yaml, "m.yml")


def test_no_overlay_is_a_deep_copy(doc: Document) -> None:
    out = apply_overlays(doc, None)
    assert out.data == doc.data
    assert out is not doc
    out.data["parameters"]["split"]["seed"] = 99
    out.key_pos.clear()
    assert doc.data["parameters"]["split"]["seed"] == 7
    assert doc.key_pos


def test_environment_is_deep_merged(doc: Document) -> None:
    out = apply_overlays(doc, "prod")
    assert out.data["parameters"] == {"alpha": 0.9, "split": {"ratio": 0.2, "seed": 7}}
    assert out.data["tracking"] == {"experiment": "demo-prod"}
    assert out.data["nodes"] == doc.data["nodes"]
    assert doc.data["parameters"]["alpha"] == 0.5


def test_overridden_values_point_at_the_environment(doc: Document) -> None:
    out = apply_overlays(doc, "prod")
    assert out.locate(("parameters", "alpha")) == (38, 25)
    assert out.locate(("tracking", "experiment")) == doc.locate(
        ("environments", "prod", "tracking", "experiment"))
    assert out.locate(("parameters", "split", "seed")) == (5, 29)


def test_environment_replaces_lists_whole(demo_yaml: str) -> None:
    text = demo_yaml + "  small:\n    nodes:\n      - {name: only, func: demo_nodes.clean}\n"
    out = apply_overlays(parse_text(text, "m.yml"), "small")
    assert out.data["nodes"] == [{"name": "only", "func": "demo_nodes.clean"}]
    assert out.locate(("nodes", 0, "func")) == (42, 28)
    # positions of the replaced base nodes are gone, not left dangling
    assert ("nodes", 3, "func") not in out.value_pos


def test_null_environment_changes_nothing(demo_yaml: str) -> None:
    out = apply_overlays(parse_text(demo_yaml + "  empty:\n", "m.yml"), "empty")
    assert out.data["parameters"]["alpha"] == 0.5


@pytest.mark.parametrize(
    ("env", "hint"),
    [
        ("prdo", "did you mean 'prod'?"),
        ("staging", "known environments: prod"),
    ],
)
def test_unknown_environment(doc: Document, env: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overlays(doc, env)
    err = info.value
    assert (err.code, err.line, err.column, err.path) == ("KMLC110", 36, 1, "environments")
    assert err.message == f"environment '{env}' is not defined"
    assert err.hint == hint


def test_environment_without_environments_section() -> None:
    with pytest.raises(ConfigError) as info:
        apply_overlays(parse_text("version: 1\nname: x\n", "m.yml"), "prod")
    err = info.value
    assert (err.code, err.line, err.column) == ("KMLC110", 1, 1)
    assert err.hint == "add an `environments:` section to the file"


@pytest.mark.parametrize("value", ["[1, 2]", "fast", "3"])
def test_environment_must_be_a_mapping(value: str) -> None:
    text = f"name: x\nenvironments:\n  prod: {value}\n"
    with pytest.raises(ConfigError) as info:
        apply_overlays(parse_text(text, "m.yml"), "prod")
    err = info.value
    assert (err.code, err.line, err.column, err.path) == ("KMLC110", 3, 9, "environments.prod")
    assert err.message == "an environment must be a mapping of keys to override"


# ----------------------------------------------------------------- --params


@pytest.mark.parametrize(
    ("item", "keys", "value"),
    [
        ("alpha=1", ["alpha"], 1),
        ("model.c=0.5", ["model", "c"], 0.5),
        ("a.b.c=true", ["a", "b", "c"], True),
        ("name=demo", ["name"], "demo"),
        ("name=", ["name"], ""),
        ("x=null", ["x"], None),
        ("x=[1, 2]", ["x"], [1, 2]),
        ("x={k: v}", ["x"], {"k": "v"}),
        ("x=a=b", ["x"], "a=b"),
        ("x=[unclosed", ["x"], "[unclosed"),
        (" spaced =1", ["spaced"], 1),
    ],
)
def test_parse_param_override(item: str, keys: list[str], value: Any) -> None:
    assert parse_param_override(item) == (keys, value)


@pytest.mark.parametrize("item", ["alpha", "=1", "a..b=1", ".a=1", "a.=1", " =1"])
def test_malformed_param_override(item: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_param_override(item)
    err = info.value
    assert err.code == "KMLC111"
    assert err.file == "--params"
    assert err.message == f"--params '{item}' is not of the form key.path=value"
    assert err.hint == "for example --params model.alpha=0.5"


def test_param_override_never_constructs_objects(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    item = "x=!!python/object/apply:os.system ['touch MARKER']"
    assert parse_param_override(item) == (["x"], item[2:])
    assert not (tmp_path / "MARKER").exists()


def test_params_override_values(doc: Document) -> None:
    out = apply_overlays(doc, None, ["alpha=2", "split.seed=11"])
    assert out.data["parameters"] == {"alpha": 2, "split": {"ratio": 0.2, "seed": 11}}
    assert doc.data["parameters"]["alpha"] == 0.5
    assert out.overrides == {("parameters", "alpha"): "--params alpha=2",
                             ("parameters", "split", "seed"): "--params split.seed=11"}


@pytest.mark.parametrize(
    ("item", "path", "hint"),
    [
        ("split.sed=3", "parameters.split.sed", "did you mean 'split.seed'?"),
        ("aplha=1", "parameters.aplha", "did you mean 'alpha'?"),
        ("forest.n_estimatorz=10", "parameters.forest.n_estimatorz",
         "parameters: alpha, split.ratio, split.seed"),
        ("split.seed.x=1", "parameters.split.seed", None),
    ],
)
def test_params_override_must_match_a_parameter(doc: Document, item: str, path: str,
                                                hint: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overlays(doc, None, [item])
    err = info.value
    assert err.code == "KMLC111"
    assert err.path == path
    if hint is None:  # into a scalar: located at the scalar in the file
        assert (err.file, err.line, err.column) == ("m.yml", 5, 29)
        assert err.message == f"--params '{item}': parameter 'split.seed' is not a mapping"
        return
    assert (err.file, err.line, err.column) == (f"--params {item}", 0, 0)
    dotted = path.removeprefix("parameters.")
    assert err.message == f"parameter '{dotted}' is not defined in `parameters`"
    assert err.hint == hint
    assert str(err) == (f"--params {item}: error: {path}: parameter '{dotted}' is not defined "
                        f"in `parameters` ({hint})")


@pytest.mark.parametrize(
    ("item", "message", "hint"),
    [
        ("split.ratio=abc", "parameter 'split.ratio' is a number in the file (0.2), but "
         "--params gives text (\"abc\")", "to replace it with text: --params split.ratio:=abc"),
        ("alpha=true", "parameter 'alpha' is a number in the file (0.5), but --params gives a "
         "boolean (true)", "to replace it with a boolean: --params alpha:=true"),
        ("split=3", "parameter 'split' is a mapping in the file ({\"ratio\": 0.2, \"seed\": 7}), "
         "but --params gives a number (3)", "to replace it with a number: --params split:=3"),
        ("split.seed=[1, 2]", "parameter 'split.seed' is a number in the file (7), but "
         "--params gives a list ([1, 2])",
         "to replace it with a list: --params 'split.seed:=[1, 2]'"),
    ],
)
def test_params_override_of_another_type_is_refused_naming_both(
        doc: Document, item: str, message: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overlays(doc, None, [item])
    err = info.value
    assert (err.code, err.message, err.hint) == ("KMLC116", message, hint)
    assert err.path == "parameters." + item.partition("=")[0]


def test_params_override_of_text_by_a_number_says_how_to_quote(demo_yaml: str) -> None:
    doc = parse_text(demo_yaml.replace("alpha: 0.5", "alpha: fast"), "m.yml")
    with pytest.raises(ConfigError) as info:
        apply_overlays(doc, None, ["alpha=12"])
    assert info.value.message == ("parameter 'alpha' is text in the file (\"fast\"), but "
                                  "--params gives a number (12)")
    assert info.value.hint == ("to give it as text, quote it: --params 'alpha=\"12\"'; to "
                               "replace it with a number: --params alpha:=12")
    assert apply_overlays(doc, None, ['alpha="12"']).data["parameters"]["alpha"] == "12"


def test_params_override_new_type_and_same_kinds(doc: Document) -> None:
    # `key:=value` replaces the parameter whatever its type; int and float are one kind
    out = apply_overlays(doc, None, ["split.ratio:=abc", "alpha=1", "split.seed=7.5"])
    assert out.data["parameters"] == {"alpha": 1, "split": {"ratio": "abc", "seed": 7.5}}
    assert out.overrides[("parameters", "split", "ratio")] == "--params split.ratio:=abc"
    assert parse_param_override("a.b:=[1]") == (["a", "b"], [1])


def test_params_override_quotes_the_option(doc: Document) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overlays(doc, None, ["nope=[1, 2]"])
    assert info.value.file == "--params 'nope=[1, 2]'"


def test_errors_about_an_override_name_the_command_line(doc: Document) -> None:
    out = apply_overlays(doc, None, ["split={ratio: 0.5}"])
    err = out.error("bad", ("parameters", "split", "ratio"), code="KMLC100")
    assert (err.file, err.line, err.column) == ("--params 'split={ratio: 0.5}'", 0, 0)
    assert str(err) == "--params 'split={ratio: 0.5}': error: parameters.split.ratio: bad"
    assert out.error("bad", ("parameters", "alpha")).file == "m.yml"


def test_params_win_over_environment(doc: Document) -> None:
    out = apply_overlays(doc, "prod", ["alpha=3"])
    assert out.data["parameters"]["alpha"] == 3


def test_overridden_param_positions_are_dropped(doc: Document) -> None:
    out = apply_overlays(doc, None, ["split={ratio: 0.5}"])
    assert ("parameters", "split", "seed") not in out.value_pos
    assert ("parameters", "split") not in out.key_pos
    # an error about the overridden value points at `parameters`, never at stale text
    assert out.locate(("parameters", "split", "ratio")) == (4, 3)


def test_params_without_a_parameters_section() -> None:
    with pytest.raises(ConfigError) as info:
        apply_overlays(parse_text("name: x\n", "m.yml"), None, ["a.b=1"])
    assert str(info.value) == (
        "--params a.b=1: error: parameters.a.b: parameter 'a.b' is not defined: the file has "
        "no `parameters` (--params overrides a parameter of the file; add it under "
        "`parameters:`)")


def test_params_into_a_scalar(doc: Document) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overlays(doc, None, ["alpha.deep=1"])
    err = info.value
    assert (err.code, err.line, err.column, err.path) == ("KMLC111", 4, 10, "parameters.alpha")
    assert err.message == "--params 'alpha.deep=1': parameter 'alpha' is not a mapping"


def test_params_into_a_list_of_parameters() -> None:
    with pytest.raises(ConfigError) as info:
        apply_overlays(parse_text("name: x\nparameters: [1]\n", "m.yml"), None, ["a=1"])
    err = info.value
    assert (err.code, err.line, err.column, err.path) == ("KMLC111", 2, 13, "parameters")
    assert err.message == "parameters must be a mapping to take --params overrides"
