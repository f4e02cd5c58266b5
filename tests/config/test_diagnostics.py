"""Reporting errors: the error objects, text with excerpts, and JSON for tools."""

from __future__ import annotations

import json

import pytest

from kmlc.config.diagnostics import excerpt, format_json, format_text
from kmlc.errors import BindingError, ConfigError, ConfigErrors, KmlcError, format_key_path

TEXT = "version: 1\nname: demo\nnodes:\n  - name: a\n    func: m.f\n"


def _err(line: int = 5, column: int = 11, code: str = "KMLC401", **kwargs: object) -> ConfigError:
    defaults: dict[str, object] = {"file": "m.yml", "key_path": ("nodes", 0, "func"),
                                   "hint": "did you mean 'g'?"}
    defaults.update(kwargs)
    return ConfigError("module 'm' not found", line=line, column=column, code=code,
                       **defaults)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("name",), "name"),
        (("nodes", 3, "func"), "nodes[3].func"),
        (("datasets", "a.b", "type"), "datasets.a.b.type"),
        (("x", 0, 1), "x[0][1]"),
    ],
)
def test_format_key_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_key_path(path) == text


def test_config_error_str() -> None:
    assert str(_err()) == ("m.yml:5:11: error: nodes[0].func: module 'm' not found "
                           "(did you mean 'g'?)")
    assert str(_err(key_path=(), hint=None)) == "m.yml:5:11: error: module 'm' not found"
    assert str(_err(severity="warning")).startswith("m.yml:5:11: warning: ")


def test_error_codes_and_tree() -> None:
    assert ConfigError("x").code == "KMLC100"
    assert BindingError("x").code == "KMLC500"
    assert ConfigError("x", code="KMLC301").code == "KMLC301"
    assert issubclass(BindingError, ConfigError)
    assert issubclass(ConfigError, KmlcError)
    assert issubclass(ConfigErrors, KmlcError)
    assert str(KmlcError("boom", hint="try")) == "boom (try)"


def test_location() -> None:
    assert str(_err().location) == "m.yml:5:11"


def test_config_errors_sorts_and_counts() -> None:
    errors = ConfigErrors([_err(line=9), _err(line=2, code="KMLC303"), _err(line=2, column=1)])
    assert [(e.line, e.column) for e in errors.errors] == [(2, 1), (2, 11), (9, 11)]
    assert errors.message == "3 errors found"
    assert ConfigErrors([_err()]).message == "1 error found"
    assert str(errors).splitlines()[0].startswith("m.yml:2:1: error: ")


def test_to_dict_has_exactly_the_json_fields() -> None:
    assert _err().to_dict() == {
        "file": "m.yml", "line": 5, "column": 11, "path": "nodes[0].func", "code": "KMLC401",
        "message": "module 'm' not found", "hint": "did you mean 'g'?", "severity": "error",
    }


def test_excerpt_shows_the_line_and_a_caret() -> None:
    assert excerpt(_err(), TEXT) == (
        "  4 |   - name: a\n"
        "  5 |     func: m.f\n"
        "    |           ^"
    )


def test_excerpt_first_line_and_context() -> None:
    assert excerpt(_err(line=1, column=10), TEXT) == "  1 | version: 1\n    |          ^"
    assert excerpt(_err(line=3, column=1), TEXT, context=2).splitlines()[0] == "  1 | version: 1"


def test_excerpt_width_follows_line_number() -> None:
    text = "\n".join(f"k{i}: {i}" for i in range(1, 13)) + "\n"
    assert excerpt(_err(line=10, column=1), text) == "   9 | k9: 9\n  10 | k10: 10\n     | ^"


@pytest.mark.parametrize(("line", "text"), [(0, TEXT), (99, TEXT), (1, "")])
def test_no_excerpt_without_a_line(line: int, text: str) -> None:
    assert excerpt(_err(line=line), text) == ""


def test_format_text_header_and_lines() -> None:
    errors = [_err(line=2), _err(line=5)]
    warnings = [_err(line=3, code="KMLC350", severity="warning", hint=None)]
    out = format_text(errors, warnings).splitlines()
    assert out[0] == "2 errors, 1 warning found"
    assert out[1] == "m.yml:2:11: error: nodes[0].func: module 'm' not found " \
                     "(did you mean 'g'?) [KMLC401]"
    assert out[3] == "m.yml:3:11: warning: nodes[0].func: module 'm' not found [KMLC350]"
    assert len(out) == 4


def test_format_text_singular_and_warnings_only() -> None:
    assert format_text([_err()], []).splitlines()[0] == "1 error found"
    assert format_text([_err()], [_err(), _err()]).splitlines()[0] == "1 error, 2 warnings found"
    only_warning = format_text([], [_err(severity="warning")])
    assert only_warning.startswith("m.yml:5:11: warning: ")


def test_format_text_with_excerpts() -> None:
    params = ConfigError("bad", file="--params", code="KMLC111")
    out = format_text([_err(), params], [], text=TEXT, excerpts=True)
    assert out.splitlines() == [
        "2 errors found",
        "m.yml:5:11: error: nodes[0].func: module 'm' not found (did you mean 'g'?) [KMLC401]",
        "  4 |   - name: a",
        "  5 |     func: m.f",
        "    |           ^",
        "--params: error: bad [KMLC111]",
    ]


def test_format_json() -> None:
    warning = _err(line=1, code="KMLC350", severity="warning", hint=None, key_path=("datasets",))
    data = json.loads(format_json([_err()], [warning]))
    assert [set(item) for item in data] == [
        {"file", "line", "column", "path", "code", "message", "hint", "severity"}] * 2
    assert data[0]["code"] == "KMLC401" and data[0]["severity"] == "error"
    assert data[1] == {"file": "m.yml", "line": 1, "column": 11, "path": "datasets",
                       "code": "KMLC350", "message": "module 'm' not found", "hint": None,
                       "severity": "warning"}
    assert json.loads(format_json([], [])) == []
