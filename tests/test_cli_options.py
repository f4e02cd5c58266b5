"""Every option of every command has a test: the table in tests/README.md, checked."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
from click.testing import CliRunner

from kmlc.cli import main

TESTS = Path(__file__).resolve().parent
ROW = re.compile(r"^\| *([a-z][a-z -]*?) *\| *(--?[a-z][a-z-]*) *\| *(.*?) *\|$")


def _table() -> dict[tuple[str, str], list[str]]:
    rows: dict[tuple[str, str], list[str]] = {}
    for line in (TESTS / "README.md").read_text().splitlines():
        match = ROW.match(line)
        if match:
            command, option, tests = match.groups()
            assert (command, option) not in rows, f"duplicate row {command} {option}"
            rows[command, option] = [t.strip() for t in tests.split(",") if t.strip()]
    return rows


def _options() -> dict[tuple[str, str], click.Option]:
    found = {}
    commands = dict(main.commands)
    for name, command in main.commands.items():  # a group's commands: "group command"
        if isinstance(command, click.Group):
            commands.update((f"{name} {sub}", c) for sub, c in command.commands.items())
    for name, command in commands.items():
        for param in command.params:
            if isinstance(param, click.Option):
                long = next((o for o in param.opts if o.startswith("--")), param.opts[0])
                found[name, long] = param
    return found


def _function_source(ref: str) -> str:
    path, sep, name = ref.partition("::")
    assert sep and path.startswith("tests/"), f"{ref!r} is not tests/PATH.py::FUNCTION"
    file = TESTS.parent / path
    assert file.is_file(), f"{ref}: no such file"
    text = file.read_text()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            assert name.startswith("test_"), f"{ref}: not a test function"
            return ast.get_source_segment(text, node) or ""
    raise AssertionError(f"{ref}: no function {name} in {path}")


def test_every_option_has_a_test_that_passes_it() -> None:
    options = _options()
    table = _table()
    assert len(options) > 30  # the parsing above really found the commands' options
    missing = sorted(f"{c} {o}" for c, o in options if (c, o) not in table)
    assert not missing, f"options without a row in tests/README.md: {missing}"
    stale = sorted(f"{c} {o}" for c, o in table if (c, o) not in options)
    assert not stale, f"rows in tests/README.md for options that do not exist: {stale}"
    for (command, option), refs in table.items():
        assert refs, f"{command} {option}: no test named"
        spellings = options[command, option].opts + options[command, option].secondary_opts
        for ref in refs:
            source = _function_source(ref)
            assert any(f'"{s}"' in source for s in spellings), (
                f"{ref} never passes {command} {'/'.join(spellings)}")


def test_help_lists_exactly_the_options_in_the_table() -> None:
    table = _table()
    for name in main.commands:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, result.output
        # the first long flag of each option line of the Options: section
        shown = set(re.findall(r"^  (?:-\w, )?(--[a-z][a-z-]*)", result.output, re.M))
        shown.discard("--help")
        assert shown == {o for c, o in table if c == name}, name
