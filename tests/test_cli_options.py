"""Every option of every command has a test: the table in tests/README.md, checked."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
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


def _function(ref: str) -> ast.FunctionDef:
    path, sep, name = ref.partition("::")
    assert sep and path.startswith("tests/"), f"{ref!r} is not tests/PATH.py::FUNCTION"
    file = TESTS.parent / path
    assert file.is_file(), f"{ref}: no such file"
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            assert name.startswith("test_"), f"{ref}: not a test function"
            return node
    raise AssertionError(f"{ref}: no function {name} in {path}")


def _argument_strings(node: ast.AST) -> Iterator[str]:
    """The strings an argument expression passes: a literal, the items of a list or tuple
    (starred or concatenated too), the literal head of an f-string (``f"--x={v}"``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.JoinedStr) and node.values:
        yield from _argument_strings(node.values[0])
    elif isinstance(node, ast.List | ast.Tuple):
        for item in node.elts:
            yield from _argument_strings(item)
    elif isinstance(node, ast.Starred):
        yield from _argument_strings(node.value)
    elif isinstance(node, ast.BinOp):
        yield from _argument_strings(node.left)
        yield from _argument_strings(node.right)


def _passed_strings(function: ast.FunctionDef) -> set[str]:
    """The strings the test's own body passes as arguments of a call (a command line
    given to ``invoke``, ``subprocess.run`` or a helper, in an ``assert`` too), or puts in
    a list it assigns (the command line built first); never a string it only compares
    (``"--x" in result.output``), a docstring, a comment or another function's code."""
    found: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                found.update(_argument_strings(arg))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(
                node.value, ast.List | ast.Tuple):
            found.update(_argument_strings(node.value))
    return found


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
            passed = _passed_strings(_function(ref))
            assert any(p == s or p.startswith(f"{s}=") for p in passed for s in spellings), (
                f"{ref} never passes {command} {'/'.join(spellings)} in a command line of "
                "its own body")


def test_an_option_only_read_back_or_named_elsewhere_does_not_count() -> None:
    """The check above is not fooled by the option in an assertion, a docstring, a
    comment or another function: only an argument the test itself passes counts."""
    tree = ast.parse('''
def helper():
    invoke(main, ["run", "--cache"])


def test_reads_it_back(runner):
    """Runs with --cache."""
    # --cache
    result = invoke(main, ["run"])
    assert "--cache" in result.output
    assert helper() or "--cache"


def test_passes_it(runner, path):
    assert invoke(main, ["run", "--force"]).exit_code == 0
    args = ["run", "-f", str(path)]
    invoke(main, [*args, "--params", f"--env={1}"])
    _run(path, "--cache")
''')
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert "--cache" not in _passed_strings(functions["test_reads_it_back"])
    assert {"-f", "--params", "--env=", "--cache", "--force"} <= _passed_strings(
        functions["test_passes_it"])


def test_help_lists_exactly_the_options_in_the_table() -> None:
    table = _table()
    for name in main.commands:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, result.output
        # the first long flag of each option line of the Options: section
        shown = set(re.findall(r"^  (?:-\w, )?(--[a-z][a-z-]*)", result.output, re.M))
        shown.discard("--help")
        assert shown == {o for c, o in table if c == name}, name
