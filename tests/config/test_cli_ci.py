"""The conventions of CI and the shell: the pre-commit hook, ``kmlc validate --format
github`` and shell completion of commands and pipeline names, each run for real."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from project_text import edit_text

from kmlc.cli import main

REPO = Path(__file__).resolve().parents[2]
KMLC = str(Path(sys.executable).parent / "kmlc")


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true", **extra}


# ------------------------------------------------------------------ validate --format github

def test_format_github_annotates_each_problem_at_its_line(write_project, demo_yaml,
                                                          monkeypatch) -> None:
    path = write_project(edit_text(demo_yaml, ("datasets:", "datasests:"),
                                   ("func: demo_nodes.fit", "func: demo_nodes.fitt")))
    monkeypatch.chdir(path.parent)
    result = CliRunner().invoke(main, ["validate", "--format", "github"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == ("::error file=mlproject.yml,line=6,col=1,title=KMLC201 datasests::"
                        "unknown key 'datasests' (did you mean 'datasets'?)")
    assert len(lines) == 1  # the graph checks wait for a valid document


def test_format_github_escapes_and_reports_warnings_and_a_valid_file(write_project, demo_yaml,
                                                                     monkeypatch) -> None:
    path = write_project(edit_text(demo_yaml, ("  alpha: 0.5\n", "  alpha: 0.5\n  unused: 1\n"),
                                   ("func: demo_nodes.fit", "func: demo_nodes.fitt")))
    monkeypatch.chdir(path.parent)
    result = CliRunner().invoke(main, ["validate", "--format", "github"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert [re.match(r"::(\w+) file=mlproject\.yml,line=(\d+),col=\d+,title=(KMLC\d+)", line)
            .groups() for line in lines] == [("error", "33", "KMLC402"),
                                             ("warning", "6", "KMLC305")] or lines
    error = lines[0]
    # a property value holds no raw ':' or ',' and the message no raw newline
    props = error.split("::")[1]
    assert all(":" not in value for value in props.split(",")[1:])
    assert "\n" not in error
    path.write_text(demo_yaml)
    result = CliRunner().invoke(main, ["validate", "--format", "github"])
    assert (result.exit_code, result.stdout) == (0, "mlproject.yml: valid\n")


# ------------------------------------------------------------------------- pre-commit hook

def test_pre_commit_hook_manifest_is_valid_and_its_entry_runs_kmlc_validate(
        write_project, demo_yaml, tmp_path: Path) -> None:
    clientlib = pytest.importorskip("pre_commit.clientlib")
    (hook,) = clientlib.load_manifest(str(REPO / ".pre-commit-hooks.yaml"))
    assert hook["id"] == "kmlc-validate" and hook["language"] == "python"
    files = re.compile(hook["files"])
    assert files.search("mlproject.yml") and files.search("sub/dir/mlproject.yaml")
    assert files.search("src/nodes.py") and not files.search("README.md")
    # run as pre-commit runs it: the entry, then the hook's args, in the repository's top
    path = write_project(edit_text(demo_yaml, ("datasets:", "datasests:")))
    command = [KMLC if word == "kmlc" else word for word in shlex.split(hook["entry"])]
    bad = subprocess.run(command, cwd=path.parent, capture_output=True, text=True, env=_env())
    assert bad.returncode == 1
    assert "mlproject.yml:6:1: error: datasests: unknown key 'datasests'" in bad.stderr
    path.write_text(demo_yaml)
    sub = tmp_path / "sub"
    sub.mkdir()
    good = subprocess.run([*command, "-f", str(path)], cwd=sub, capture_output=True,
                          text=True, env=_env())
    assert good.returncode == 0, good.stderr


def test_pre_commit_hook_file_is_plain_yaml() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert [h["entry"].split()[:2] for h in hooks] == [["kmlc", "validate"]]
    assert hooks[0]["pass_filenames"] is False  # kmlc validate reads -f, not file arguments


# --------------------------------------------------------------------------- completion

def _complete(words: str, cwd: Path) -> list[str]:
    """What bash completion offers after ``words`` (click's bash_complete protocol)."""
    parts = shlex.split(words)
    cword = len(parts) - (0 if words.endswith(" ") else 1)
    out = subprocess.run([KMLC], cwd=cwd, capture_output=True, text=True, env=_env(
        _KMLC_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(cword)))
    assert out.returncode == 0, out.stderr
    return [line.split(",", 1)[1] for line in out.stdout.splitlines() if line]


@pytest.mark.slow
def test_pipeline_names_are_completed_from_the_file(write_project, tmp_path: Path) -> None:
    path = write_project()
    assert _complete("kmlc run ", path.parent) == [
        "__default__", "etl", "inference", "training"]
    assert _complete("kmlc run tr", path.parent) == ["training"]
    assert _complete("kmlc plan in", path.parent) == ["inference"]
    assert _complete("kmlc graph e", path.parent) == ["etl"]
    # a folder with no mlproject.yml in it nor in any folder above it
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    assert _complete(f"kmlc run -f {path} ", elsewhere) == [
        "__default__", "etl", "inference", "training"]
    assert _complete("kmlc run ", elsewhere) == []  # no file: nothing, and no traceback
    assert "validate" in _complete("kmlc va", elsewhere)


def test_the_readmes_completion_line_gives_a_bash_script(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    assert 'eval "$(_KMLC_COMPLETE=bash_source kmlc)"' in readme
    out = subprocess.run([KMLC], capture_output=True, text=True, cwd=tmp_path,
                         env=_env(_KMLC_COMPLETE="bash_source"))
    assert out.returncode == 0 and "complete -o nosort -F _kmlc_completion kmlc" in out.stdout
