"""Stage 1, read: bytes -> Document with positions, and everything refused on the way."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmlc.config.source import MAX_BYTES, MAX_DEPTH, Document, parse_text, read_document
from kmlc.errors import ConfigError


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_text(text, "m.yml")
    return info.value


# ----------------------------------------------------------------- positions


def test_positions_of_keys_and_values(demo_yaml: str) -> None:
    doc = parse_text(demo_yaml, "m.yml")
    assert doc.file == "m.yml"
    assert doc.key_pos[("name",)] == (2, 1)
    assert doc.value_pos[("name",)] == (2, 7)
    assert doc.key_pos[("datasets", "score", "type")] == (9, 11)
    assert doc.value_pos[("datasets", "score", "type")] == (9, 17)
    assert doc.value_pos[("nodes", 1, "inputs", 2)] == (19, 38)
    assert doc.key_pos[("parameters", "split", "seed")] == (5, 23)
    assert doc.value_pos[("environments", "prod", "parameters", "alpha")] == (38, 25)


def test_data_is_plain_python(demo_yaml: str) -> None:
    doc = parse_text(demo_yaml, "m.yml")
    assert type(doc.data) is dict
    assert type(doc.data["nodes"]) is list
    assert type(doc.data["nodes"][0]) is dict
    assert doc.data["parameters"] == {"alpha": 0.5, "split": {"ratio": 0.2, "seed": 7}}
    assert doc.data["nodes"][1]["inputs"] == ["features", "params:alpha", "params:split"]
    assert doc.text == demo_yaml


def test_locate_prefers_value_and_falls_back_to_parent(demo_yaml: str) -> None:
    doc = parse_text(demo_yaml, "m.yml")
    assert doc.locate(("model", "input")) == (35, 10)
    assert doc.locate(("model", "input"), key=True) == (35, 3)
    assert doc.locate(("parameters", "nope", "deeper")) == (4, 3)
    assert doc.locate(("no_such_key",)) == (1, 1)
    assert doc.locate(()) == (1, 1)


def test_document_error_carries_location(demo_yaml: str) -> None:
    doc = parse_text(demo_yaml, "m.yml")
    err = doc.error("bad func", ("nodes", 0, "func"), code="KMLC401", hint="h")
    assert (err.file, err.line, err.column) == ("m.yml", 13, 11)
    assert err.key_path == ("nodes", 0, "func")
    assert err.code == "KMLC401"
    assert str(err) == "m.yml:13:11: error: nodes[0].func: bad func (h)"


def test_keys_become_strings() -> None:
    doc = parse_text("true: 1\n2: 2\nnull_: 3\nno: 4\n", "m.yml")
    assert list(doc.data) == ["true", "2", "null_", "no"]


def test_byte_order_mark_is_ignored() -> None:
    doc = parse_text("\ufeffname: demo\n", "m.yml")
    assert doc.data == {"name": "demo"}
    assert doc.value_pos[("name",)] == (1, 7)


def test_merge_keys_are_resolved() -> None:
    doc = parse_text("base: &b {k: 1}\nderived: {<<: *b, j: 2}\n", "m.yml")
    assert doc.data["derived"] == {"j": 2, "k": 1}


def test_small_aliases_are_fine() -> None:
    doc = parse_text("a: &x [1, 2]\nb: *x\nc: *x\n", "m.yml")
    assert doc.data == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}


def test_yaml_1_2_scalars() -> None:
    doc = parse_text("a: yes\nb: 0x1F\nc: .inf\nd: ~\ne: '1'\nf: 1_000\n", "m.yml")
    assert doc.data == {"a": "yes", "b": 31, "c": float("inf"), "d": None, "e": "1", "f": 1000}


# ----------------------------------------------------------------- read_document


def test_read_document_reads_file(tmp_path: Path, demo_yaml: str) -> None:
    path = tmp_path / "mlproject.yml"
    path.write_text(demo_yaml, encoding="utf-8")
    doc = read_document(path)
    assert isinstance(doc, Document)
    assert doc.file == "mlproject.yml"
    assert read_document(path, "shown/as.yml").file == "shown/as.yml"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_document(tmp_path / "nope.yml", "nope.yml")
    err = info.value
    assert err.code == "KMLC101"
    assert err.file == "nope.yml"
    assert "file not found" in err.message
    assert err.hint and "-f PATH" in err.hint


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_document(tmp_path, "dir")
    assert info.value.code == "KMLC101"
    assert "cannot read" in info.value.message


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yml"
    line = b"# " + b"x" * 1021 + b"\n"
    with path.open("wb") as out:
        for _ in range(MAX_BYTES // len(line) + 2):
            out.write(line)
    assert path.stat().st_size > MAX_BYTES
    with pytest.raises(ConfigError) as info:
        read_document(path)
    err = info.value
    assert (err.code, err.line, err.column) == ("KMLC102", 1, 1)
    assert "byte limit" in err.message


@pytest.mark.parametrize(
    ("raw", "line", "column", "byte"),
    [
        (b"version: 1\nname: d\xe9mo\n", 2, 8, "0xe9"),
        (b"\xff\xfev\x00", 1, 1, "0xff"),
        (b"a: 1\n# ok\n# caf\xc3\x28\n", 3, 6, "0xc3"),
    ],
)
def test_non_utf8_bytes(tmp_path: Path, raw: bytes, line: int, column: int, byte: str) -> None:
    path = tmp_path / "m.yml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as info:
        read_document(path)
    err = info.value
    assert (err.code, err.line, err.column) == ("KMLC103", line, column)
    assert byte in err.message
    assert err.hint == "save the file as UTF-8"


# ----------------------------------------------------------------- refused documents


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("name: [demo\nversion: 1\n", 2, 8, "expected ',' or ']'"),
        ("name: demo\n  bad: indent\n", 2, 6, "mapping values are not allowed"),
        ("name: *nowhere\n", 1, 7, "undefined alias"),
        ("a:\n\tb: 1\n", 2, 1, "cannot start any token"),
        ("a: 1\n---\nb: 2\n", 2, 1, "another document"),
    ],
)
def test_yaml_syntax_errors(text: str, line: int, column: int, fragment: str) -> None:
    err = _error(text)
    assert (err.code, err.line, err.column) == ("KMLC104", line, column)
    assert err.message.startswith("invalid YAML: ")
    assert fragment in err.message


@pytest.mark.parametrize(
    ("text", "line", "column", "message", "hint"),
    [
        ("version: 1\nname: demo\n   oops: 1\n", 3, 8,
         "mapping values are not allowed in this context",
         "likely cause: this line is indented deeper than the key above it, the line above "
         "lacks a space after a colon, or a value holds an unquoted ': ' that needs quotes"),
        ("name: a: b\n", 1, 8, "mapping values are not allowed in this context",
         "likely cause: this line is indented deeper than the key above it, the line above "
         "lacks a space after a colon, or a value holds an unquoted ': ' that needs quotes"),
        ("version: 1\nname:demo\nnodes: []\n", 3, 1, "could not find expected ':'",
         "likely cause: a colon without a space after it, here or on the line above: write "
         "`key: value`"),
        ("parameters:\n    alpha: 1\n  beta: 2\n", 3, 3, "did not find expected key",
         "likely cause: indentation: this line is not aligned with the other keys of its "
         "mapping"),
        ("nodes:\n  - name: a\n  func: b\n", 3, 3, "did not find expected '-' indicator",
         "likely cause: indentation: this line is not aligned with the items of its list"),
        ("name: {x\nb: 1\n", 2, 2, "did not find expected ',' or '}'",
         "likely cause: an unquoted value starting with '{' or '[' is read as a flow mapping "
         "or list: quote it, or close the brackets"),
        ("a:\n\tb: 1\n", 2, 1, "found character '\\t' that cannot start any token",
         "indent with spaces: YAML does not allow tabs"),
    ],
)
def test_yaml_syntax_errors_name_the_likely_cause(text: str, line: int, column: int,
                                                  message: str, hint: str) -> None:
    err = _error(text)
    assert (err.code, err.line, err.column) == ("KMLC104", line, column)
    assert (err.message, err.hint) == (f"invalid YAML: {message}", hint)


@pytest.mark.parametrize(
    ("text", "line", "column", "key"),
    [
        ("name: a\nname: b\n", 2, 1, "name"),
        ("datasets:\n  x: {type: a}\n  x: {type: b}\n", 3, 3, "x"),
        ("x: {type: a, type: b}\n", 1, 14, "type"),
    ],
)
def test_duplicate_keys(text: str, line: int, column: int, key: str) -> None:
    err = _error(text)
    assert (err.code, err.line, err.column) == ("KMLC105", line, column)
    assert err.message == f"duplicate key '{key}'"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("~\n", "the file is empty"),
        ("- a\n- b\n", "the document must be a mapping of keys, found a list"),
        ("just text\n", "the document must be a mapping of keys, found a string"),
        ("42\n", "the document must be a mapping of keys, found a int"),
        ("a: 1\n~: 2\n", "keys must be plain strings"),
    ],
)
def test_not_a_mapping(text: str, message: str) -> None:
    err = _error(text)
    assert err.code == "KMLC106"
    assert err.message == message
    assert err.line >= 1


def test_empty_file_has_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_bytes(b"")
    with pytest.raises(ConfigError) as info:
        read_document(path)
    assert info.value.code == "KMLC106"
    assert info.value.hint and "README" in info.value.hint


def test_nesting_over_the_limit() -> None:
    deep = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    err = _error(f"name: demo\nparameters:\n  deep: {deep}\n")
    assert (err.code, err.line) == ("KMLC107", 3)
    assert err.message == f"nesting deeper than {MAX_DEPTH} levels"
    assert err.key_path[:3] == ("parameters", "deep", 0)


def test_nesting_at_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 2
    doc = parse_text("p: " + "[" * depth + "1" + "]" * depth + "\n", "m.yml")
    value = doc.data["p"]
    for _ in range(depth):
        value = value[0]
    assert value == 1


def test_nesting_that_overflows_the_parser() -> None:
    err = _error("p: " + "[" * 500 + "]" * 500 + "\n")
    assert (err.code, err.line, err.column) == ("KMLC107", 1, 1)
    assert err.message == "the file is nested too deeply to parse"


def test_billion_laughs() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, letter in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{letter}: &{letter} [" + ",".join([f"*{prev}"] * 9) + "]")
    err = _error("\n".join(lines) + "\n")
    assert err.code == "KMLC108"
    assert "alias bomb" in err.message
    assert err.line >= 1


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!python/object/apply:os.system ['touch MARKER']", "!!python/object/apply:os.system"),
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!!python/module:os", "!!python/module:os"),
        ("!!python/object/new:builtins.exec ['1']", "!!python/object/new:builtins.exec"),
        ("!!python/tuple [1, 2]", "!!python/tuple"),
        ("!include other.yml", "!include"),
        ("!env HOME", "!env"),
    ],
)
def test_tags_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str,
                          tag: str) -> None:
    monkeypatch.chdir(tmp_path)
    err = _error(f"name: demo\nparameters:\n  alpha: {value}\n")
    assert (err.code, err.line, err.column) == ("KMLC109", 3, 10)
    assert err.message == f"YAML tag '{tag}' is not allowed"
    assert err.key_path == ("parameters", "alpha")
    assert err.hint and "never constructs Python objects" in err.hint
    assert not (tmp_path / "MARKER").exists()


def test_tag_on_a_list_item_is_refused() -> None:
    err = _error("nodes:\n  - !!python/object/apply:os.system ['x']\n")
    assert (err.code, err.line, err.column, err.path) == ("KMLC109", 2, 5, "nodes[0]")


def test_explicit_plain_tags_are_allowed() -> None:
    doc = parse_text("a: !!str 1\nb: !!float 1\nc: !!int '7'\nd: !!null ''\n", "m.yml")
    assert doc.data == {"a": "1", "b": 1.0, "c": 7, "d": None}


# ----------------------------------------------------------------- once known bugs


@pytest.mark.parametrize("value", ["!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]",
                                   "!!pairs [a: 1]"])
def test_standard_non_plain_tags_are_refused(value: str) -> None:
    err = _error(f"alpha: {value}\n")
    assert (err.code, err.line, err.column) == ("KMLC109", 1, 8)


@pytest.mark.parametrize("value", ["!!int abc", "!!float abc", "!!bool maybe"])
def test_bad_explicitly_typed_scalars_are_config_errors(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_text(f"alpha: {value}\n", "m.yml")
    err = info.value
    assert (err.code, err.line, err.column, err.path) == ("KMLC104", 1, 8, "alpha")
    assert "\n" not in err.message


@pytest.mark.parametrize("text", ["p:\n  ? [a, b]\n  : 1\n", "p:\n  {a: 1}: 2\n"])
def test_complex_keys_are_refused(text: str) -> None:
    err = _error(text)
    assert (err.code, err.line, err.path) == ("KMLC106", 2, "p")
    assert err.message == "keys must be plain strings"


def test_null_key_is_located_at_the_key() -> None:
    err = _error("a: 1\nb:\n  c: 2\n  ~: 3\n")
    assert (err.code, err.line, err.column) == ("KMLC106", 4, 3)


def test_tag_on_a_key_is_refused() -> None:
    err = _error("p:\n  ? !!python/name:os.system\n  : 1\n")
    assert (err.code, err.line, err.column) == ("KMLC109", 2, 5)


def test_merge_keys_and_typed_keys_are_still_allowed() -> None:
    doc = parse_text("b: &b {k: 1}\nd: {<<: *b, !!str 1: x, 2: y}\nt: 2024-01-01\n", "m.yml")
    assert doc.data["d"] == {"k": 1, "1": "x", "2": "y"}
    assert doc.data["t"] == "2024-01-01"


def test_explicit_timestamp_tag_is_refused() -> None:
    err = _error("t: !!timestamp 2024-01-01\n")
    assert (err.code, err.line, err.column) == ("KMLC109", 1, 4)


@pytest.mark.parametrize("text", ["p: &l [1, *l]\n", "p: &m {self: *m}\n"])
def test_recursive_aliases_are_refused(text: str) -> None:
    err = _error(text)
    assert (err.code, err.line) == ("KMLC107", 1)
    assert "recursive alias" in err.message


def test_shared_aliases_are_not_recursive() -> None:
    doc = parse_text("a: &x {k: [1]}\nb: [*x, *x]\nc: {d: *x}\n", "m.yml")
    assert doc.data["b"] == [{"k": [1]}, {"k": [1]}]


def test_unacceptable_character_is_located_on_one_line() -> None:
    err = _error("version: 1\nname: de\x00mo\n")
    assert err.code == "KMLC104"
    assert "\n" not in err.message
    assert (err.line, err.column) == (2, 9)


def test_empty_value_is_located_at_its_key() -> None:
    doc = parse_text("version: 1\nname:\nnodes: []\nx: {a: , b: ~}\n", "m.yml")
    assert doc.locate(("name",)) == (2, 1)
    assert doc.locate(("x", "a")) == (4, 5)
    assert doc.locate(("x", "b")) == (4, 13)


# ----------------------------------------------------------------- PyYAML events, composed here


def test_merge_key_list_and_order() -> None:
    doc = parse_text("b: &b {k: 1, j: 0}\nc: &c {z: 3, k: 9}\nd:\n  <<: [*b, *c]\n  j: 2\n",
                     "m.yml")
    assert list(doc.data["d"].items()) == [("j", 2), ("k", 1), ("z", 3)]
    assert doc.key_pos[("d", "j")] == (5, 3)
    assert ("d", "k") not in doc.key_pos


@pytest.mark.parametrize(("text", "line", "column"), [
    ("a: &x 1\nd: {<<: *x}\n", 1, 4),
    ("b: &b {k: 1}\nd: {<<: [*b, 1]}\n", 2, 14),
    ("b: &b {k: 1}\nd: {<<: *b, <<: *b}\n", 2, 13),
])
def test_bad_merges(text: str, line: int, column: int) -> None:
    err = _error(text)
    assert (err.code, err.line, err.column) == ("KMLC104", line, column)


def test_aliases_are_located_at_their_anchor() -> None:
    doc = parse_text("a: &x {k: [1]}\nb: [*x]\n", "m.yml")
    assert doc.value_pos[("b", 0)] == (1, 4)
    assert doc.value_pos[("b", 0, "k", 0)] == (1, 12)


def test_yaml_1_1_directive_switches_scalars() -> None:
    doc = parse_text("%YAML 1.1\n---\na: yes\nb: 010\nc: 1:20\n", "m.yml")
    assert doc.data == {"a": True, "b": 8, "c": 80}


def test_yaml_1_2_numbers_and_dates() -> None:
    doc = parse_text("a: 010\nb: 0o17\nc: 1e3\nd: 1:20\ne: 2024-01-01T10:00:00Z\n", "m.yml")
    assert doc.data == {"a": 10, "b": 15, "c": 1000.0, "d": "1:20",
                        "e": "2024-01-01T10:00:00+00:00"}


@pytest.mark.parametrize("value", ["!!int 0x", "!!int", "!!float ''"])
def test_empty_typed_scalars_are_config_errors(value: str) -> None:
    err = _error(f"alpha: {value}\n")
    assert (err.code, err.line, err.column, err.path) == ("KMLC104", 1, 8, "alpha")


def test_bad_escape_is_located_at_the_character() -> None:
    err = _error('p:\n  \u00e9\u00e9: "\\q"\n')
    assert (err.code, err.line, err.column) == ("KMLC104", 2, 9)
    assert err.message == "invalid YAML: found unknown escape character 'q'"


def test_lone_surrogate_in_text() -> None:
    err = _error("a: [1, \ud800]\n")
    assert (err.code, err.line, err.column) == ("KMLC104", 1, 8)


def test_control_character_after_multibyte_text() -> None:
    err = _error("a: caf\u00e9 \U0001f600 \x07\n")
    assert (err.code, err.line, err.column) == ("KMLC104", 1, 11)
