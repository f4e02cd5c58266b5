"""The corpus of broken and hostile files in ``tests/data/bad``, each run by ``kmlc validate``.

Every ``*.yml`` starts with ``# expect: KMLCnnn``, then ``# at: LINE[:COL]`` (where that code
must be reported; ``# at: --params`` for a problem with a command-line value, reported on a
``--params KEY=VALUE: error:`` line) and optionally ``# args: ...`` (more arguments of
``kmlc validate``); the binary ones are listed in ``expectations.json``. Each file is copied into a
fresh folder with the helper node modules and validated there: exit code 1, the expected
code reported, every problem on one ``FILE:LINE:COL: error:`` line, no traceback, no file
created, no hostile code run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kmlc.cli import main
from kmlc.config.source import MAX_BYTES

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
EXPECTATIONS: dict[str, str] = json.loads((BAD / "expectations.json").read_text("utf-8"))
CASES = sorted(p.name for p in BAD.glob("*.yml"))
HELPERS = sorted(BAD.glob("*.py"))
MARKER = "PWNED_MARKER"

# files that once exposed a kmlc bug: filename -> what was wrong (kept empty when all are fixed)
KNOWN_BUGS: dict[str, str] = {}

# a handful also run as a real process, exactly as a user would
SUBPROCESS_CASES = [
    "python_tag_object_apply_os_system.yml",
    "jinja_sandbox_cycler_os_system.yml",
    "alias_bomb_billion_laughs.yml",
    "binary_latin1_name.yml",
    "env_unknown_name_close.yml",
    "yaml_unclosed_quote.yml",
]

# a problem with a command-line value: no line, the option names it
_OPTION = re.compile(r"^--params (?:'[^']*'|\S+): (error|warning): ")
_HEADER = re.compile(r"^(\d+ errors?(, \d+ warnings?)? found|\d+ warnings? found, and --strict "
                     r"fails on warnings)$")


def _expectation(name: str) -> tuple[str, str | None, list[str]]:
    """``(code, "LINE[:COL]" or None, extra arguments)`` of one corpus file."""
    if name in EXPECTATIONS:
        return EXPECTATIONS[name], None, []
    text = (BAD / name).read_text("utf-8")
    first, second = [*text.splitlines(), "", ""][:2]
    match = re.fullmatch(r"# expect: (KMLC\d{3})", first)
    assert match, f"{name}: first line must be '# expect: KMLCnnn', found {first!r}"
    at = re.fullmatch(r"# at: (\d+(?::\d+)?|--params)", second)
    assert at, f"{name}: second line must be '# at: LINE[:COL]', found {second!r}"
    args = re.search(r"^# args: (.*)$", text, re.MULTILINE)
    return match.group(1), at.group(1), shlex.split(args.group(1)) if args else []


def _cases(names: list[str]) -> list[object]:
    return [
        pytest.param(name, id=name.removesuffix(".yml"), marks=[pytest.mark.xfail(
            strict=True, reason=KNOWN_BUGS[name])] if name in KNOWN_BUGS else [])
        for name in names
    ]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _project(tmp_path: Path, name: str) -> Path:
    shutil.copyfile(BAD / name, tmp_path / name)
    for helper in HELPERS:
        shutil.copyfile(helper, tmp_path / helper.name)
    return tmp_path


def _check_output(name: str, code: str, at: str | None, exit_code: int, output: str) -> None:
    assert "Traceback" not in output, output
    assert exit_code == 1, output
    location = re.compile(rf"^{re.escape(name)}:(\d+):(\d+): (error|warning): ")
    found: list[tuple[str, str, str]] = []
    for line in output.splitlines():
        if _HEADER.match(line) or line.startswith(f"{name}: valid: "):
            continue
        option = _OPTION.match(line)
        if option:
            codes = re.findall(r" \[(KMLC\d{3})\]$", line)
            assert codes, f"no [KMLCnnn] at the end of {line!r}"
            found.append((codes[0], "--params", ""))
            continue
        match = location.match(line)
        assert match, f"not a located error line: {line!r}"
        assert int(match.group(1)) >= 1, line
        assert int(match.group(2)) >= 1, line
        codes = re.findall(r" \[(KMLC\d{3})\]$", line)
        assert codes, f"no [KMLCnnn] at the end of {line!r}"
        found.append((codes[0], match.group(1), match.group(2)))
    assert code in [c for c, _, _ in found], output
    if at is not None:
        places = {f"{line}:{column}" if ":" in at else line for c, line, column in found
                  if c == code and column}
        places |= {line for c, line, column in found if c == code and not column}
        assert at in places, f"{code} expected at {at}, reported at {sorted(places)}"


@pytest.mark.parametrize("name", _cases(CASES))
def test_bad_file(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, at, args = _expectation(name)
    folder = _project(tmp_path, name)
    before = _listing(folder)
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(main, ["validate", "-f", name, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}")
    _check_output(name, code, at, result.exit_code, result.output)
    assert _listing(folder) == before
    assert not (folder / MARKER).exists()


@pytest.mark.parametrize("name", _cases(SUBPROCESS_CASES))
def test_bad_file_in_a_real_process(name: str, tmp_path: Path) -> None:
    code, at, args = _expectation(name)
    folder = _project(tmp_path, name)
    before = _listing(folder)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "DO_NOT_TRACK": "1",
           "KEDRO_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        [sys.executable, "-c", "from kmlc.cli import main; main()", "validate", "-f", name, *args],
        capture_output=True, text=True, cwd=folder, env=env, timeout=120)
    _check_output(name, code, at, done.returncode, done.stdout + done.stderr)
    assert _listing(folder) == before
    assert not (folder / MARKER).exists()


def test_huge_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.yml"
    line = "# " + "x" * 1021 + "\n"
    with path.open("w", encoding="utf-8") as out:
        out.write("version: 1\n")
        for _ in range(MAX_BYTES // len(line) + 2):
            out.write(line)
    assert path.stat().st_size > MAX_BYTES
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["validate", "-f", "huge.yml"])
    _check_output("huge.yml", "KMLC102", "1:1", result.exit_code, result.output)
    assert _listing(tmp_path) == ["huge.yml"]


def test_corpus_is_complete() -> None:
    assert len(CASES) >= 110
    for name in CASES:
        code, _, _ = _expectation(name)
        assert re.fullmatch(r"KMLC[1-5]\d\d", code)
    binary = {name for name in CASES if name in EXPECTATIONS}
    assert binary == set(EXPECTATIONS), "expectations.json names a file that does not exist"
    assert set(KNOWN_BUGS) <= set(CASES)
    assert set(SUBPROCESS_CASES) <= set(CASES)
    covered = {_expectation(name)[0][:6] for name in CASES}
    assert covered >= {"KMLC10", "KMLC11", "KMLC12", "KMLC20", "KMLC30", "KMLC31", "KMLC32",
                       "KMLC33", "KMLC40", "KMLC50"}
