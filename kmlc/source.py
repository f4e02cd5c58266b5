"""Stage 1, read: ``mlproject.yml`` bytes -> a ``Document`` with positions.

The file is parsed with ruamel.yaml's round-trip loader, which keeps the line and
column of every key and value. The result is plain Python data plus an index of
positions by key path, so later stages can report exact locations without carrying
ruamel objects around. Python tags, duplicate keys, alias bombs, deep nesting and
non-UTF-8 bytes are refused here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from kmlc.errors import ConfigError

__all__ = ["Document", "KeyPath", "parse_text", "read_document"]

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

    def error(self, message: str, path: KeyPath, *, key: bool = False,
              **kwargs: Any) -> ConfigError:
        line, column = self.locate(path, key=key)
        return ConfigError(message, file=self.file, line=line, column=column, key_path=path,
                           **kwargs)


def read_document(path: Path, display: str | None = None) -> Document:
    """Read and parse ``path``; raise ``ConfigError`` for anything that is not clean YAML."""
    name = display or path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"file not found: {path}", file=name, code="KMLC101",
            hint="pass -f PATH or run in the folder that holds mlproject.yml",
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


def parse_text(text: str, name: str) -> Document:
    """Parse YAML ``text`` into a ``Document``."""
    if text.startswith("\ufeff"):
        text = text[1:]
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    checker = _NodeChecker(name)
    try:
        node = yaml.compose(text)
        root = None
        if node is not None:
            checker.check(node, (), yaml.constructor)
            root = yaml.constructor.construct_document(node)
    except ConfigError:
        raise
    except ReaderError as exc:
        line, column = _text_position(text, exc.position)
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
        code = "KMLC105" if "duplicate key" in str(exc) else "KMLC104"
        message = _yaml_message(problem, str(exc))
        raise ConfigError(message, file=name, line=line, column=column, code=code) from None
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid YAML"
        raise ConfigError(f"invalid YAML: {first}", file=name, line=1, column=1,
                          code="KMLC104") from None
    except RecursionError:
        raise ConfigError(
            "the file is nested too deeply to parse", file=name, line=1, column=1, code="KMLC107",
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=name, line=1, column=1,
                          code="KMLC104") from None
    if root is None:
        raise ConfigError("the file is empty", file=name, line=1, column=1, code="KMLC106",
                          hint="start from the minimal mlproject.yml in the README")
    if not isinstance(root, CommentedMap):
        raise ConfigError(
            f"the document must be a mapping of keys, found a {_kind(root)}",
            file=name, line=1, column=1, code="KMLC106",
        )
    doc = Document(file=name, text=text, data={})
    converter = _Converter(doc, len(text), checker.empty)
    doc.data = converter.convert(root, ())
    return doc


def _text_position(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of character ``position`` of ``text``."""
    position = max(0, min(position, len(text)))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, column


def _mark(node: Any) -> tuple[int, int]:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _tag_name(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


class _NodeChecker:
    """Check the composed node tree before anything is constructed from it.

    Every node is seen once (aliases share nodes): tags on keys and values, complex and
    null keys, recursive aliases and explicitly typed scalars that do not convert.
    """

    def __init__(self, file: str):
        self.file = file
        self.done: set[int] = set()
        self.active: set[int] = set()
        self.empty: set[tuple[int, int]] = set()

    def _error(self, message: str, node: Any, path: KeyPath, code: str,
               hint: str | None = None) -> ConfigError:
        line, column = _mark(node)
        return ConfigError(message, file=self.file, line=line, column=column, key_path=path,
                           code=code, hint=hint)

    def _check_tag(self, node: Any, path: KeyPath, *, key: bool = False) -> None:
        tag = node.tag or ""
        if tag in _PLAIN_TAGS or (key and tag == _MERGE_TAG):
            return
        if tag == _TIMESTAMP_TAG and node.ctag.handle is None and node.style is None:
            return  # an unquoted date: kept as its text
        raise self._error(f"YAML tag '{_tag_name(tag)}' is not allowed", node, path, "KMLC109",
                          hint="remove the tag; kmlc never constructs Python objects from YAML")

    def check(self, node: Any, path: KeyPath, constructor: Any, depth: int = 0) -> None:
        if depth > MAX_DEPTH or id(node) in self.done:
            return  # too deep: the converter reports it with the path
        self._check_tag(node, path)
        self.active.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                self._check_key(key, path, constructor)
                sub = (*path, str(key.value))
                if id(value) in self.active:
                    raise self._recursive(value, key, sub)
                self.check(value, sub, constructor, depth + 1)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                sub = (*path, index)
                if id(item) in self.active:
                    raise self._recursive(item, node, sub)
                self.check(item, sub, constructor, depth + 1)
        else:
            self._check_scalar(node, path, constructor)
        self.active.discard(id(node))
        self.done.add(id(node))

    def _check_key(self, key: Any, path: KeyPath, constructor: Any) -> None:
        if not isinstance(key, ScalarNode) or key.tag == _NULL_TAG:
            what = ("a list" if isinstance(key, SequenceNode) else
                    "a mapping" if isinstance(key, MappingNode) else "null")
            raise self._error("keys must be plain strings", key, path, "KMLC106",
                              hint=f"this key is {what}; quote it to make it a string")
        self._check_tag(key, path, key=True)
        self._check_scalar(key, path, constructor)

    def _check_scalar(self, node: Any, path: KeyPath, constructor: Any) -> None:
        tag = node.tag
        if tag == _NULL_TAG and node.value == "" and node.style is None:
            self.empty.add(_mark(node))
        if tag in _TYPED_TAGS:
            try:
                constructor.construct_object(node)
            except (ValueError, KeyError, TypeError, YAMLError):
                raise self._error(
                    f"invalid YAML: {_quote(node.value)} is not a valid {_tag_name(tag)}",
                    node, path, "KMLC104", hint="remove the tag or fix the value") from None

    def _recursive(self, target: Any, where: Any, path: KeyPath) -> ConfigError:
        anchor = f"'*{target.anchor}' " if getattr(target, "anchor", None) else ""
        return self._error(f"the YAML alias {anchor}refers to a node that contains it "
                           "(a recursive alias)", where, path, "KMLC107",
                           hint="YAML data must be a tree; copy the values instead")


def _quote(value: Any) -> str:
    text = json.dumps(str(value))
    return text if len(text) <= 40 else text[:37] + '..."'


def _yaml_message(problem: str, full: str) -> str:
    if "duplicate key" in full:
        key = (full.split('duplicate key "', 1)[-1].split('"', 1)[0]
               if 'duplicate key "' in full else "")
        return f"duplicate key '{key}'" if key else "duplicate key"
    if "could not determine a constructor" in full or "python/" in full:
        return "tags such as !!python/... are not allowed"
    return f"invalid YAML: {problem}"


def _kind(value: Any) -> str:
    if isinstance(value, CommentedSeq | list):
        return "list"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


class _Converter:
    """Copy ruamel nodes into plain data, recording positions and refusing bombs."""

    def __init__(self, doc: Document, size: int, empty: set[tuple[int, int]] | None = None):
        self.doc = doc
        self.empty = empty or set()
        self.budget = max(MAX_NODES // 10, size * 20)
        self.seen = 0

    def convert(self, node: Any, path: KeyPath) -> Any:
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
        tag = getattr(getattr(node, "tag", None), "value", None)
        if tag and tag not in _PLAIN_TAGS:
            line, column = self.doc.locate(path)
            tag = tag.replace("tag:yaml.org,2002:", "!!")
            raise ConfigError(
                f"YAML tag '{tag}' is not allowed", file=self.doc.file, line=line,
                column=column, key_path=path, code="KMLC109",
                hint="remove the tag; kmlc never constructs Python objects from YAML",
            )
        if isinstance(node, CommentedMap):
            return self._mapping(node, path)
        if isinstance(node, CommentedSeq):
            return self._sequence(node, path)
        return _scalar(node)

    def _mapping(self, node: CommentedMap, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in node:
            if isinstance(key, CommentedMap | CommentedSeq) or key is None:
                raise self.doc.error("keys must be plain strings", path, code="KMLC106")
            skey = str(key) if not isinstance(key, bool) else str(key).lower()
            sub = (*path, skey)
            pos = node.lc.data.get(key)
            value = node[key]
            if pos:
                key_at = (pos[0] + 1, pos[1] + 1)
                value_at = (pos[2] + 1, pos[3] + 1)
                self.doc.key_pos[sub] = key_at
                # an empty value has no token: ruamel places it at the next one
                self.doc.value_pos[sub] = (key_at if value is None and value_at in self.empty
                                           else value_at)
            out[skey] = self.convert(value, sub)
        return out

    def _sequence(self, node: CommentedSeq, path: KeyPath) -> list[Any]:
        out = []
        for index, item in enumerate(node):
            sub = (*path, index)
            pos = node.lc.data.get(index)
            if pos:
                self.doc.value_pos[sub] = (pos[0] + 1, pos[1] + 1)
            out.append(self.convert(item, sub))
        return out


_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
_TYPED_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("int", "float", "bool"))
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _scalar(node: Any) -> Any:
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, Mapping):
        return dict(node)
    return str(node)
