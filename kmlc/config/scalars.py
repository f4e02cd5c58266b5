"""Stage 1, read: YAML scalars, resolved and constructed as the YAML 1.2 core schema says.

The one home of kmlc's scalar rules (YAML 1.2 unless a document says ``%YAML 1.1``),
used by the composer in ``source.py`` for the file and, through ``source.load_value``,
for every other YAML value kmlc reads (``--params`` values, rendered templates).
"""

from __future__ import annotations

import datetime
import re

from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode

_CORE = "tag:yaml.org,2002:"
_STR_TAG = _CORE + "str"
_INT_TAG = _CORE + "int"
_FLOAT_TAG = _CORE + "float"
_BOOL_TAG = _CORE + "bool"
_NULL_TAG = _CORE + "null"
_MAP_TAG = _CORE + "map"
_SEQ_TAG = _CORE + "seq"
_MERGE_TAG = _CORE + "merge"
_TIMESTAMP_TAG = _CORE + "timestamp"
_PLAIN_TAGS = frozenset(
    _CORE + name for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
_TYPED_TAGS = frozenset((_INT_TAG, _FLOAT_TAG, _BOOL_TAG))

# implicit resolution of plain scalars, as ruamel.yaml does it: YAML 1.2 unless the
# document says ``%YAML 1.1``. (tag, regexp, first characters) per version.
_TIMESTAMP_RE = re.compile(r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
    (?:[Tt]|[ \t]+)[0-9][0-9]?
    :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
    (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", re.X)
_COMMON_RESOLVERS: list[tuple[str, re.Pattern[str], str]] = [
    (_MERGE_TAG, re.compile(r"^(?:<<)$"), "<"),
    (_NULL_TAG, re.compile(r"^(?:~|null|Null|NULL)$"), "~nN"),
    (_TIMESTAMP_TAG, _TIMESTAMP_RE, "0123456789"),
    (_CORE + "value", re.compile(r"^(?:=)$"), "="),
]
_RESOLVERS_1_2: list[tuple[str, re.Pattern[str], str]] = [
    (_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    (_FLOAT_TAG, re.compile(r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", re.X), "-+0123456789."),
    (_INT_TAG, re.compile(r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""", re.X), "-+0123456789"),
    *_COMMON_RESOLVERS,
]
_RESOLVERS_1_1: list[tuple[str, re.Pattern[str], str]] = [
    (_BOOL_TAG, re.compile(r"""^(?:y|Y|yes|Yes|YES|n|N|no|No|NO
        |true|True|TRUE|false|False|FALSE
        |on|On|ON|off|Off|OFF)$""", re.X), "yYnNtTfFoO"),
    (_FLOAT_TAG, re.compile(r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", re.X), "-+0123456789."),
    (_INT_TAG, re.compile(r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0?[0-7_]+
        |[-+]?(?:0|[1-9][0-9_]*)
        |[-+]?0x[0-9a-fA-F_]+
        |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""", re.X), "-+0123456789"),
    *_COMMON_RESOLVERS,
]


def _by_first(table: list[tuple[str, re.Pattern[str], str]],
              ) -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    out: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for tag, regexp, first in table:
        for char in first:
            out.setdefault(char, []).append((tag, regexp))
    return out


_FIRST_1_2 = _by_first(_RESOLVERS_1_2)
_FIRST_1_1 = _by_first(_RESOLVERS_1_1)
_TRUE_1_2 = frozenset(("true", "True", "TRUE"))
_BOOL_VALUES = {"yes": True, "no": False, "true": True, "false": False, "on": True,
                "off": False, "y": True, "n": False}
_SAFE = SafeConstructor()


def _resolve(value: str, first: dict[str, list[tuple[str, re.Pattern[str]]]]) -> str:
    if not value:
        return _NULL_TAG
    for tag, regexp in first.get(value[0], ()):
        if regexp.match(value):
            return tag
    return _STR_TAG


def _sexagesimal(text: str) -> float:
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def _construct_int(value: str, yaml_1_1: bool) -> int:
    text = value.replace("_", "")
    sign = -1 if text[:1] == "-" else 1
    if text[:1] in ("-", "+"):
        text = text[1:]
    if text[:2] == "0b":
        return sign * int(text[2:], 2)
    if text[:2] == "0x":
        return sign * int(text[2:], 16)
    if text[:2] == "0o":
        return sign * int(text[2:], 8)
    if yaml_1_1 and ":" in text:
        return sign * int(_sexagesimal(text))
    if yaml_1_1 and len(text) > 1 and text[0] == "0":
        return sign * int(text, 8)
    return sign * int(text)


def _construct_float(value: str, yaml_1_1: bool) -> float:
    text = value.replace("_", "").lower()
    sign = -1.0 if text[:1] == "-" else 1.0
    if text[:1] in ("-", "+"):
        text = text[1:]
    if text == ".inf":
        return sign * float("inf")
    if text == ".nan":
        return float("nan")
    if yaml_1_1 and ":" in text:
        return sign * _sexagesimal(text)
    return sign * float(text)


def _timestamp_text(value: str) -> str:
    """An unquoted date is kept as the text of the date or time it denotes."""
    stamp = _SAFE.construct_yaml_timestamp(ScalarNode(_TIMESTAMP_TAG, value))
    if isinstance(stamp, datetime.datetime):
        return stamp.isoformat("T" if "t" in value.lower() else " ")
    return str(stamp.isoformat())


