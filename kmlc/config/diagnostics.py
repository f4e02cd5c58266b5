"""Diagnostics: ``ConfigError``s rendered for people (text, with excerpts) and for tools (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from kmlc.errors import ConfigError

__all__ = ["excerpt", "format_github", "format_json", "format_text"]


def excerpt(error: ConfigError, text: str, context: int = 1) -> str:
    """A few numbered lines of ``text`` around the error with a caret under its column."""
    if not text or error.line <= 0:
        return ""
    lines = text.splitlines()
    if error.line > len(lines):
        return ""
    first = max(1, error.line - context)
    width = len(str(error.line))
    out = []
    for number in range(first, error.line + 1):
        out.append(f"  {number:>{width}} | {lines[number - 1]}")
    out.append(f"  {' ' * width} | {' ' * max(0, error.column - 1)}^")
    return "\n".join(out)


def format_text(errors: Sequence[ConfigError], warnings: Sequence[ConfigError], *,
                text: str = "", excerpts: bool = False, strict: bool = False) -> str:
    """One line per problem, ``FILE:LINE:COL: error: PATH: message [CODE]``, after a header
    (when something fails: an error, or a warning with ``strict``)."""
    out: list[str] = []
    count = len(warnings)
    found = f"{count} warning{'s' if count != 1 else ''}"
    if errors:
        count = len(errors)
        out.append(f"{count} error{'s' if count != 1 else ''}"
                   + (f", {found}" if warnings else "") + " found")
    elif warnings and strict:
        out.append(f"{found} found, and --strict fails on warnings")
    for item in [*errors, *warnings]:
        out.append(f"{item} [{item.code}]")
        if excerpts:
            snippet = excerpt(item, text)
            if snippet:
                out.append(snippet)
    return "\n".join(out)


def format_json(errors: Sequence[ConfigError], warnings: Sequence[ConfigError]) -> str:
    """A JSON list of ``{file, line, column, path, code, message, hint, severity}``."""
    return json.dumps([e.to_dict() for e in [*errors, *warnings]], indent=2)


def _github_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(errors: Sequence[ConfigError], warnings: Sequence[ConfigError]) -> str:
    """GitHub Actions workflow commands, one per problem:
    ``::error file=F,line=L,col=C,title=CODE KEY.PATH::message (hint)``, which GitHub shows
    on the file's line in a pull request. A problem without a position (a missing file,
    a ``--params`` value) names the file only."""
    out = []
    for item in [*errors, *warnings]:
        props = [f"file={_github_property(item.file)}"]
        if item.line > 0:
            props += [f"line={item.line}", f"col={max(item.column, 1)}"]
        title = f"{item.code} {item.path}" if item.path else item.code
        props.append(f"title={_github_property(title)}")
        message = item.message + (f" ({item.hint})" if item.hint else "")
        level = "error" if item.severity == "error" else "warning"
        out.append(f"::{level} {','.join(props)}::{_github_data(message)}")
    return "\n".join(out)
