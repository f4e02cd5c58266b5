"""Import stage 4: write the document as ``mlproject.yml``, with comments.

Each top-level section says where in the Kedro project it came from; a value that
came from an interpolation keeps the original ``${...}`` expression as a comment.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from kmlc.importer.convert import Conversion, KeyPath

__all__ = ["render_yaml", "write_yaml"]



def _flow(value: list[Any]) -> bool:
    """Short lists of scalars (inputs, tags) read best on one line."""
    return (all(isinstance(v, str | int | float | bool) or v is None for v in value)
            and sum(len(str(v)) + 2 for v in value) <= 72)


def _build(value: Any, path: KeyPath, comments: dict[KeyPath, str]) -> Any:
    if isinstance(value, dict):
        out = CommentedMap()
        for key, item in value.items():
            out[key] = _build(item, (*path, key), comments)
            if (*path, key) in comments and not isinstance(item, dict | list):
                out.yaml_add_eol_comment(comments[(*path, key)], key)
        return out
    if isinstance(value, list):
        seq = CommentedSeq(_build(v, (*path, i), comments) for i, v in enumerate(value))
        commented = [i for i in range(len(value)) if (*path, i) in comments]
        if _flow(value) and not commented:
            seq.fa.set_flow_style()
        for i in commented:
            seq.yaml_add_eol_comment(comments[(*path, i)], i)
        return seq
    return value


def render_yaml(conv: Conversion) -> str:
    """The text of ``mlproject.yml`` for ``conv``."""
    root = _build(conv.document, (), conv.comments)
    first = next(iter(root), None)
    for key, note in conv.sections.items():
        if key in root:
            text = note if key == first else f"\n{note}"  # a blank line between sections
            root.yaml_set_comment_before_after_key(key, before=text)
    yaml = YAML(typ="rt", pure=True)
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    yaml.dump(root, buffer)
    return buffer.getvalue()


def write_yaml(conv: Conversion, path: Path) -> None:
    """Write ``conv`` to ``path`` (through a temporary file, so a failure leaves no half file)."""
    text = render_yaml(conv)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, "utf-8")
    tmp.replace(path)
