"""Stage 1, read: ``mlproject.yml`` bytes -> a ``Document`` with positions.

The file is parsed into events by PyYAML's parser (libyaml when available), and the
events are composed here into a small tree with the line and column of every key and
value; scalars are resolved with the YAML 1.2 core schema. The result is plain Python
data plus an index of positions by key path, so later stages can report exact
locations without carrying YAML objects around. Python tags, duplicate keys, alias
bombs, deep nesting and non-UTF-8 bytes are refused here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.error import MarkedYAMLError, YAMLError
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.reader import ReaderError

from kmlc.config.scalars import (
    _BOOL_TAG,
    _BOOL_VALUES,
    _FIRST_1_1,
    _FIRST_1_2,
    _FLOAT_TAG,
    _INT_TAG,
    _MAP_TAG,
    _MERGE_TAG,
    _NULL_TAG,
    _PLAIN_TAGS,
    _SEQ_TAG,
    _STR_TAG,
    _TIMESTAMP_TAG,
    _TRUE_1_2,
    _construct_float,
    _construct_int,
    _resolve,
    _timestamp_text,
)
from kmlc.errors import ConfigError

__all__ = ["Document", "KeyPath", "load_value", "parse_text", "read_document"]

KeyPath = tuple[str | int, ...]

MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_BYTES = 10 * 1024 * 1024


@dataclass
class Document:
    """Plain data of one YAML file with the position of every key and value."""

    file: str
    text: str
    data: dict[str, Any]
    key_pos: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    value_pos: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    # key paths set on the command line -> the option that set them (``--params a.b=1``)
    overrides: dict[KeyPath, str] = field(default_factory=dict)

    def origin(self, path: KeyPath) -> str | None:
        """The command-line option that set ``path`` or a parent of it, if any."""
        for end in range(len(path), 0, -1):
            option = self.overrides.get(tuple(path[:end]))
            if option is not None:
                return option
        return None

    def locate(self, path: KeyPath, *, key: bool = False) -> tuple[int, int]:
        """Position of ``path`` (its key when ``key``), else of its nearest parent."""
        path = tuple(path)
        while True:
            if key and path in self.key_pos:
                return self.key_pos[path]
            if path in self.value_pos:
                return self.value_pos[path]
            if path in self.key_pos:
                return self.key_pos[path]
            if not path:
                return (1, 1)
            path = path[:-1]

    def where(self, path: KeyPath, *, key: bool = False) -> tuple[str, int, int]:
        """``(file, line, column)`` of ``path``; a value set on the command line has no
        line: ``file`` is then the option that set it."""
        option = self.origin(tuple(path))
        if option is not None:
            return option, 0, 0
        return (self.file, *self.locate(path, key=key))

    def error(self, message: str, path: KeyPath, *, key: bool = False,
              **kwargs: Any) -> ConfigError:
        file, line, column = self.where(path, key=key)
        return ConfigError(message, file=file, line=line, column=column, key_path=path,
                           **kwargs)


def is_template(value: Any) -> bool:
    """A string the renderer evaluates: it holds a Jinja expression or statement."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


UNRENDERED = ("environments",)  # top-level keys the renderer leaves as written (overlays)


def has_templates(data: dict[str, Any]) -> bool:
    """Whether the renderer has anything to do in a document's ``data``."""
    return any(holds_templates(v) for k, v in data.items() if k not in UNRENDERED)


def holds_templates(value: Any) -> bool:
    """Whether any string inside ``value`` (a parsed document's data) is a template."""
    if isinstance(value, dict):
        return any(holds_templates(v) for v in value.values())
    if isinstance(value, list):
        return any(holds_templates(v) for v in value)
    return is_template(value)


def read_document(path: Path, display: str | None = None) -> Document:
    """Read and parse ``path``; raise ``ConfigError`` for anything that is not clean YAML."""
    name = display or path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"file not found: {path}", file=name, code="KMLC101",
            hint="pass -f PATH, or run in the folder that holds mlproject.yml or a folder "
                 "below it",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", file=name, code="KMLC101") from exc
    if len(raw) > MAX_BYTES:
        raise ConfigError(
            f"file is {len(raw):,} bytes, over the {MAX_BYTES:,} byte limit", file=name,
            line=1, column=1, code="KMLC102",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"the file is not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded",
            file=name, line=line, column=column, code="KMLC103",
            hint="save the file as UTF-8",
        ) from None
    return parse_text(text, name)


def load_value(text: str) -> Any:
    """One YAML value of any kind, with the file's own scalar rules; ValueError if invalid."""
    try:
        root = _Composer("<value>").compose(text)
        if root is None:
            return None
        return _Converter(Document(file="<value>", text=text, data={}), len(text)).convert(
            root, ())
    except (ConfigError, YAMLError, RecursionError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(str(exc)) from None


def parse_text(text: str, name: str) -> Document:
    """Parse YAML ``text`` into a ``Document``."""
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        root = _Composer(name).compose(text)
    except ConfigError:
        raise
    except UnicodeEncodeError as exc:  # a lone surrogate in a str: it has no UTF-8 bytes
        line, column = _text_position(text, exc.start)
        raise ConfigError(
            f"invalid YAML: unacceptable character #x{ord(text[exc.start]):04x}: "
            "special characters are not allowed", file=name, line=line, column=column,
            code="KMLC104",
            hint="remove the character; in a double-quoted string write it as an escape",
        ) from None
    except ReaderError as exc:
        position = exc.position
        if _BYTE_OFFSETS:  # libyaml counts bytes of the UTF-8 encoding
            position = len(text.encode("utf-8", "surrogatepass")[:position]
                           .decode("utf-8", "ignore"))
        line, column = _text_position(text, position)
        what = (f"character #x{exc.character:04x}" if isinstance(exc.character, int)
                else "character")
        raise ConfigError(
            f"invalid YAML: unacceptable {what}: {exc.reason}", file=name, line=line,
            column=column, code="KMLC104",
            hint="remove the character; in a double-quoted string write it as an escape",
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if problem in _NAMES_A_CHARACTER and mark:
            # libyaml leaves the character out (and marks the backslash of an escape)
            skip = int(problem == "found unknown escape character")
            char = _char_at(text, mark.line, mark.column + skip)
            if char:
                column += skip
                problem = _NAMES_A_CHARACTER[problem].format(repr(char))
        raise ConfigError(f"invalid YAML: {_one_line(problem)}", file=name, line=line,
                          column=column, code="KMLC104", hint=_likely_cause(problem)) from None
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid YAML"
        raise ConfigError(f"invalid YAML: {first}", file=name, line=1, column=1,
                          code="KMLC104") from None
    except RecursionError:
        raise ConfigError(
            "the file is nested too deeply to parse", file=name, line=1, column=1, code="KMLC107",
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"invalid YAML: {_one_line(str(exc))}", file=name, line=1, column=1,
                          code="KMLC104") from None
    if root is None or (root[0] == _SCALAR and root[1] is None):
        raise ConfigError("the file is empty", file=name, line=1, column=1, code="KMLC106",
                          hint="start from the minimal mlproject.yml in the README")
    if root[0] != _MAP:
        kind = "list" if root[0] == _SEQ else _kind(root[1])
        raise ConfigError(
            f"the document must be a mapping of keys, found a {kind}",
            file=name, line=1, column=1, code="KMLC106",
        )
    doc = Document(file=name, text=text, data={})
    converter = _Converter(doc, len(text))
    doc.data = converter.convert(root, ())
    return doc


# the parser's words -> what a person most likely did
_LIKELY_CAUSES = (
    ("mapping values are not allowed",
     "likely cause: this line is indented deeper than the key above it, the line above "
     "lacks a space after a colon, or a value holds an unquoted ': ' that needs quotes"),
    ("could not find expected ':'",
     "likely cause: a colon without a space after it, here or on the line above: write "
     "`key: value`"),
    ("did not find expected key",
     "likely cause: indentation: this line is not aligned with the other keys of its mapping"),
    ("expected <block end>",
     "likely cause: indentation: this line is not aligned with the other keys of its mapping"),
    ("did not find expected '-' indicator",
     "likely cause: indentation: this line is not aligned with the items of its list"),
    ("did not find expected ',' or",
     "likely cause: an unquoted value starting with '{' or '[' is read as a flow mapping or "
     "list: quote it, or close the brackets"),
    ("found character '\\t'", "indent with spaces: YAML does not allow tabs"),
)


def _likely_cause(problem: str) -> str | None:
    return next((cause for words, cause in _LIKELY_CAUSES if words in problem), None)


def _text_position(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of character ``position`` of ``text``."""
    position = max(0, min(position, len(text)))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, column


_NAMES_A_CHARACTER = {
    "found character that cannot start any token":
        "found character {} that cannot start any token",
    "found unknown escape character": "found unknown escape character {}",
}


_LINE_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def _char_at(text: str, line: int, column: int) -> str:
    """The character at 0-based ``line`` and ``column`` of ``text``, or ``""``."""
    lines = _LINE_BREAKS.split(text, line + 1)
    if line >= len(lines) or column >= len(lines[line]):
        return ""
    return lines[line][column]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _tag_name(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _quote(value: Any) -> str:
    text = json.dumps(str(value))
    return text if len(text) <= 40 else text[:37] + '..."'


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


# ----------------------------------------------------------------- composing

# composed nodes are tuples:
#   (_SCALAR, value, line, column, empty, tag, text)   value: constructed Python data
#   (_SEQ, items, line, column)
#   (_MAP, pairs, line, column, merges)   pairs: [(key, key line, key column, value node)]
# lines and columns are 1-based; ``empty`` marks an empty plain null (a missing value).
_SCALAR, _SEQ, _MAP = 0, 1, 2
_KIND_NAMES = ("scalar", "sequence", "mapping")
_PARSE_DEPTH = 200  # open collections; deeper input is refused as it is read

_Loader: Any = getattr(yaml, "CBaseLoader", None) or yaml.BaseLoader
_BYTE_OFFSETS = _Loader is not yaml.BaseLoader


class _Frame:
    """A mapping or sequence being composed."""

    __slots__ = ("checked", "key", "merged", "node", "path", "seen")

    def __init__(self, node: tuple[Any, ...], path: KeyPath, checked: bool):
        self.node = node
        self.path = path
        self.checked = checked
        # a mapping's pending key: (key, text, line, column, merge?) or None
        self.key: tuple[str, str, int, int, bool] | None = None
        self.seen: dict[Any, None] = {}
        self.merged = False


class _Composer:
    """Compose parser events into nodes, checking tags, keys, aliases and typed scalars.

    The first refused tag, key or typed scalar (in document order, as deep as
    ``MAX_DEPTH``) is reported once the whole stream has parsed, so syntax errors come
    first; then duplicate keys and bad merges.
    """

    def __init__(self, file: str):
        self.file = file
        self.check_error: ConfigError | None = None
        self.build_error: ConfigError | None = None
        self.first = _FIRST_1_2
        self.yaml_1_1 = False

    def _error(self, message: str, line: int, column: int, path: KeyPath, code: str,
               hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.file, line=line, column=column, key_path=path,
                           code=code, hint=hint)

    def _refuse(self, error: ConfigError) -> None:
        if self.check_error is None:
            self.check_error = error

    def _reject(self, error: ConfigError) -> None:
        if self.build_error is None:
            self.build_error = error

    def _tag_error(self, tag: str, line: int, column: int, path: KeyPath) -> None:
        self._refuse(self._error(
            f"YAML tag '{_tag_name(tag)}' is not allowed", line, column, path, "KMLC109",
            hint="remove the tag; kmlc never constructs Python objects from YAML"))

    def compose(self, text: str) -> tuple[Any, ...] | None:
        loader = _Loader(text)
        try:
            root = self._compose(loader)
        finally:
            loader.dispose()
        if self.check_error is not None:
            raise self.check_error
        if self.build_error is not None:
            raise self.build_error
        return root

    def _compose(self, loader: Any) -> tuple[Any, ...] | None:
        get_event = loader.get_event
        anchors: dict[str, tuple[Any, ...]] = {}
        open_nodes: set[int] = set()
        stack: list[_Frame] = []
        root: tuple[Any, ...] | None = None
        documents = 0
        step: Any = None
        while True:
            event = get_event()
            if event is None:
                return root
            cls = event.__class__
            if cls is ScalarEvent or cls is MappingStartEvent or cls is SequenceStartEvent:
                mark = event.start_mark
                line, column = mark.line + 1, mark.column + 1
                parent = stack[-1] if stack else None
                # where the new node sits: the key of a mapping, a value or an item
                if parent is None:
                    is_key, depth, step = False, 0, None
                    checked = True
                elif parent.node[0] == _MAP:
                    pending = parent.key
                    is_key = pending is None
                    step = None if pending is None else pending[1]
                    depth = len(parent.path) + (0 if is_key else 1)
                    checked = parent.checked and (is_key or depth <= MAX_DEPTH)
                else:
                    is_key, step = False, len(parent.node[1])
                    depth = len(parent.path) + 1
                    checked = parent.checked and depth <= MAX_DEPTH
                tag = event.tag
                if cls is ScalarEvent:
                    node = self._scalar(event, tag, line, column, checked, is_key, parent, step)
                    if event.anchor is not None:
                        anchors[event.anchor] = node
                else:
                    if len(stack) >= _PARSE_DEPTH:
                        raise self._error("the file is nested too deeply to parse", 1, 1, (),
                                          "KMLC107")
                    kind = _MAP if cls is MappingStartEvent else _SEQ
                    node = ((_MAP, [], line, column, []) if kind == _MAP
                            else (_SEQ, [], line, column))
                    path = self._path(parent, is_key, step)
                    if tag is not None and tag != "!":
                        if tag not in _PLAIN_TAGS:
                            if checked:
                                self._tag_error(tag, line, column, path)
                        elif tag == (_SEQ_TAG if kind == _MAP else _MAP_TAG):
                            expected = "sequence" if kind == _MAP else "mapping"
                            self._reject(self._error(
                                f"invalid YAML: expected a {expected} node, but found "
                                f"{_KIND_NAMES[kind]}", line, column, (), "KMLC104"))
                    if event.anchor is not None:
                        anchors[event.anchor] = node
                    open_nodes.add(id(node))
                    stack.append(_Frame(node, path, checked))
                    continue
            elif cls is MappingEndEvent or cls is SequenceEndEvent:
                frame = stack.pop()
                node = frame.node
                open_nodes.discard(id(node))
                parent = stack[-1] if stack else None
            elif cls is AliasEvent:
                target = anchors.get(event.anchor)
                mark = event.start_mark
                if target is None:
                    raise self._error(f"invalid YAML: found undefined alias '{event.anchor}'",
                                      mark.line + 1, mark.column + 1, (), "KMLC104")
                parent = stack[-1] if stack else None
                if id(target) in open_nodes:
                    self._recursive(event.anchor, parent)
                    node = (_SCALAR, None, mark.line + 1, mark.column + 1, False, _NULL_TAG, "")
                else:
                    node = target
            elif cls is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    mark = event.start_mark
                    raise self._error("invalid YAML: but found another document",
                                      mark.line + 1, mark.column + 1, (), "KMLC104")
                self.yaml_1_1 = event.version == (1, 1)
                self.first = _FIRST_1_1 if self.yaml_1_1 else _FIRST_1_2
                continue
            else:
                continue
            if parent is None:
                root = node
            elif parent.node[0] == _SEQ:
                parent.node[1].append(node)
            elif parent.key is None:
                self._key(parent, node)
            else:
                self._value(parent, node)

    def _scalar(self, event: Any, tag: str | None, line: int, column: int, checked: bool,
                is_key: bool, parent: _Frame | None, step: Any) -> tuple[Any, ...]:
        value = event.value
        plain = not event.style
        explicit = False
        if tag is None or tag == "!":
            tag = _resolve(value, self.first) if event.implicit[0] and plain else _STR_TAG
        else:
            explicit = True
        data: Any = value
        try:
            if tag == _STR_TAG:
                pass
            elif tag == _NULL_TAG:
                data = None
            elif tag == _INT_TAG:
                data = _construct_int(value, self.yaml_1_1)
            elif tag == _FLOAT_TAG:
                data = _construct_float(value, self.yaml_1_1)
            elif tag == _BOOL_TAG:
                data = (_BOOL_VALUES[value.lower()] if explicit or self.yaml_1_1
                        else value in _TRUE_1_2)
            elif tag == _TIMESTAMP_TAG and not explicit:
                data = _timestamp_text(value)
            elif not (is_key and tag == _MERGE_TAG):
                if tag in (_MAP_TAG, _SEQ_TAG):
                    expected = "mapping" if tag == _MAP_TAG else "sequence"
                    self._reject(self._error(
                        f"invalid YAML: expected a {expected} node, but found scalar",
                        line, column, (), "KMLC104"))
                elif checked:
                    self._tag_error(tag, line, column, self._path(parent, is_key, step))
        except (ValueError, KeyError, TypeError, IndexError, OverflowError):
            if checked:
                what = "date" if tag == _TIMESTAMP_TAG else _tag_name(tag)
                self._refuse(self._error(
                    f"invalid YAML: {_quote(value)} is not a valid {what}", line, column,
                    self._path(parent, is_key, step), "KMLC104",
                    hint="remove the tag or fix the value"))
        empty = plain and not value and tag == _NULL_TAG
        return (_SCALAR, data, line, column, empty, tag, value)

    @staticmethod
    def _path(parent: _Frame | None, is_key: bool, step: Any) -> KeyPath:
        if parent is None:
            return ()
        return parent.path if is_key else (*parent.path, step)

    def _key(self, frame: _Frame, node: tuple[Any, ...]) -> None:
        line, column = node[2], node[3]
        if node[0] != _SCALAR or node[5] == _NULL_TAG:
            if frame.checked:
                what = ("a list" if node[0] == _SEQ else "a mapping" if node[0] == _MAP
                        else "null")
                self._refuse(self._error(
                    "keys must be plain strings", line, column, frame.path, "KMLC106",
                    hint=f"this key is {what}; quote it to make it a string"))
            frame.key = ("?", "?", line, column, False)
            return
        data, text = node[1], node[6]
        if node[5] == _MERGE_TAG:
            if frame.merged:
                self._reject(self._error('invalid YAML: found duplicate merge key "<<"',
                                         line, column, (), "KMLC104"))
            frame.merged = True
            frame.key = ("<<", "<<", line, column, True)
            return
        key = "true" if data is True else "false" if data is False else str(data)
        try:
            duplicate = data in frame.seen
            frame.seen[data] = None
        except TypeError:
            duplicate = False
        if duplicate:
            self._reject(self._error(f"duplicate key '{text}'", line, column, (), "KMLC105"))
        frame.key = (key, str(text), line, column, False)

    def _value(self, frame: _Frame, node: tuple[Any, ...]) -> None:
        key, _text, line, column, merge = frame.key  # type: ignore[misc]
        frame.key = None
        if not merge:
            frame.node[1].append((key, line, column, node))
            return
        merges = frame.node[4]
        if node[0] == _MAP:
            merges.append(node)
        elif node[0] == _SEQ:
            for item in node[1]:
                if item[0] != _MAP:
                    self._reject(self._error(
                        "invalid YAML: expected a mapping for merging, but found "
                        f"{_KIND_NAMES[item[0]]}", item[2], item[3], (), "KMLC104"))
                else:
                    merges.append(item)
        else:
            self._reject(self._error(
                "invalid YAML: expected a mapping or list of mappings for merging, but found "
                f"{_KIND_NAMES[node[0]]}", node[2], node[3], (), "KMLC104"))

    def _recursive(self, anchor: str, parent: _Frame | None) -> None:
        if parent is None:
            return
        if parent.node[0] == _MAP:
            pending = parent.key
            if pending is None:
                return  # a mapping or list as a key: refused as a complex key
            line, column = pending[2], pending[3]
            path = (*parent.path, pending[1])
        else:
            line, column = parent.node[2], parent.node[3]
            path = (*parent.path, len(parent.node[1]))
        self._refuse(self._error(
            f"the YAML alias '*{anchor}' refers to a node that contains it (a recursive alias)",
            line, column, path, "KMLC107",
            hint="YAML data must be a tree; copy the values instead"))


# ----------------------------------------------------------------- converting


class _Converter:
    """Copy composed nodes into plain data, recording positions and refusing bombs."""

    def __init__(self, doc: Document, size: int):
        self.doc = doc
        self.key_pos = doc.key_pos
        self.value_pos = doc.value_pos
        self.budget = max(MAX_NODES // 10, size * 20)
        self.seen = 0

    def convert(self, node: tuple[Any, ...], path: KeyPath) -> Any:
        if len(path) > MAX_DEPTH:
            line, column = self.doc.locate(path)
            raise ConfigError(
                f"nesting deeper than {MAX_DEPTH} levels", file=self.doc.file, line=line,
                column=column, key_path=path, code="KMLC107",
            )
        self.seen += 1
        if self.seen > self.budget:
            line, column = self.doc.locate(path)
            raise ConfigError(
                "YAML aliases expand far beyond the size of the file (an alias bomb?)",
                file=self.doc.file, line=line, column=column, key_path=path, code="KMLC108",
            )
        kind = node[0]
        if kind == _SCALAR:
            return node[1]
        if kind == _SEQ:
            out: list[Any] = []
            value_pos = self.value_pos
            for index, item in enumerate(node[1]):
                sub = (*path, index)
                value_pos[sub] = (item[2], item[3])
                out.append(self.convert(item, sub))
            return out
        return self._mapping(node, path)

    def _mapping(self, node: tuple[Any, ...], path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        key_pos, value_pos = self.key_pos, self.value_pos
        for key, line, column, value in node[1]:
            sub = (*path, key)
            key_pos[sub] = (line, column)
            # an empty value has no token: it is located at its key
            value_pos[sub] = ((line, column) if value[0] == _SCALAR and value[4]
                              else (value[2], value[3]))
            out[key] = self.convert(value, sub)
        if node[4]:
            for key, value in _merged_pairs(node[4]):
                if key not in out:
                    out[key] = self.convert(value, (*path, key))
        return out


def _merged_pairs(merges: list[tuple[Any, ...]]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Keys and values merged in with ``<<``: the earlier mapping wins, as do its own keys."""
    for merged in merges:
        for key, _line, _column, value in merged[1]:
            yield key, value
        if merged[4]:
            yield from _merged_pairs(merged[4])
