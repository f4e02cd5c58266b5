"""Stage 3, render: jinja2 in string values, in a sandbox, with exact positions."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from kmlc.config import render
from kmlc.config.render import MAX_TOTAL, render_document
from kmlc.config.source import parse_text
from kmlc.errors import ConfigErrors

UNSET = "KMLC_TEST_SURELY_UNSET_VARIABLE"


def _render(text: str) -> dict[str, Any]:
    return render_document(parse_text(text, "m.yml")).doc.data


def _errors(text: str) -> ConfigErrors:
    with pytest.raises(ConfigErrors) as info:
        render_document(parse_text(text, "m.yml"))
    return info.value


def test_plain_values_are_untouched(demo_yaml: str) -> None:
    doc = parse_text(demo_yaml, "m.yml")
    before = repr(doc.data)
    result = render_document(doc)
    assert repr(result.doc.data) == before
    assert result.secrets == set()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"{{ 1 + 1 }}"', 2),
        ('"{{ 0.5 * 2 }}"', 1.0),
        ('"{{ 1 > 0 }}"', True),
        ('"{{ none }}"', None),
        ('"{{- none -}}"', None),
        ('"{{ params.split.missing is defined }}"', False),
        ('"{{ \'5\' }}"', 5),
        ('"  {{ \'abc\' | upper }}  "', "ABC"),
        ('"v{{ 1 + 1 }}"', "v2"),
        ('"{{ 1 }}-{{ 2 }}"', "1-2"),
        ('"{{ [1, 2] }}"', "[1, 2]"),
        ('"{% if true %}yes{% endif %}"', "yes"),
        ('"{{ params.alpha * 2 }}"', 1.0),
        ('"{{ params.split.seed }}"', 7),
    ],
)
def test_rendered_values(value: str, expected: Any) -> None:
    data = _render(f"parameters:\n  alpha: 0.5\n  split: {{seed: 7}}\nname: {value}\n")
    assert data["name"] == expected
    assert type(data["name"]) is type(expected)


def test_parameters_are_rendered_and_visible_to_other_sections() -> None:
    data = _render('parameters:\n  a: "{{ 2 * 3 }}"\n'
                   'tracking:\n  experiment: "exp-{{ params.a }}"\n')
    assert data["parameters"] == {"a": 6}
    assert data["tracking"]["experiment"] == "exp-6"


def test_environments_are_not_rendered() -> None:
    data = _render('name: x\nenvironments:\n  prod: {name: "{{ undefined_thing }}"}\n')
    assert data["environments"]["prod"]["name"] == "{{ undefined_thing }}"


def test_lists_and_nested_values_are_rendered() -> None:
    data = _render('nodes:\n  - {name: n, tags: ["{{ \'a\' ~ \'b\' }}", plain]}\n')
    assert data["nodes"][0]["tags"] == ["ab", "plain"]


def test_env_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMLC_TEST_NAME", "from-env")
    monkeypatch.delenv(UNSET, raising=False)
    data = _render(
        'name: "{{ env(\'KMLC_TEST_NAME\') }}"\n'
        f'run: "{{{{ env(\'{UNSET}\', \'fallback\') }}}}"\n'
        f'port: "{{{{ env(\'{UNSET}\', 5000) }}}}"\n')
    assert data == {"name": "from-env", "run": "fallback", "port": 5000}


def test_env_secret_is_collected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMLC_TEST_TOKEN", "s3cr3t-value")
    result = render_document(parse_text(
        "tracking:\n  uri: \"http://u:{{ env('KMLC_TEST_TOKEN', secret=true) }}@host\"\n", "m.yml"))
    assert result.doc.data["tracking"]["uri"] == "http://u:s3cr3t-value@host"
    assert result.secrets == {"s3cr3t-value"}


def test_missing_env_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    errors = _errors(f"version: 1\nname: \"{{{{ env('{UNSET}') }}}}\"\n").errors
    assert len(errors) == 1
    err = errors[0]
    assert (err.code, err.line, err.column, err.path) == ("KMLC113", 2, 7, "name")
    assert err.message == f"environment variable '{UNSET}' is not set"
    assert err.hint == f"set it, or give a default: env('{UNSET}', 'value')"


def test_now() -> None:
    data = _render("a: \"{{ now() }}\"\nb: \"{{ now('%Y') }}\"\n")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", data["a"])
    assert isinstance(data["b"], int) and data["b"] >= 2024


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("{{ project_name }}", "template error: 'project_name' is undefined"),
        ("{{ params.beta }}", "template error: 'dict object' has no attribute 'beta'"),
        ("{{ 1 + }}", "template syntax error: unexpected 'end of print statement'"),
        ("{% if x %}", "template syntax error: Unexpected end of template."),
        ("{{ 'a' | shout }}", "template syntax error: No filter named 'shout'."),
        ("{{ 1 / 0 }}", "template error: ZeroDivisionError: division by zero"),
        ("{% include '/etc/passwd' %}", "template error: TypeError: no loader"),
        ("{{ range(10**9) | list }}", "template error: OverflowError: Range too big."),
    ],
)
def test_template_errors(expression: str, message: str) -> None:
    errors = _errors(f"version: 1\nparameters:\n  alpha: 1\nname: \"{expression}\"\n").errors
    assert len(errors) == 1
    err = errors[0]
    assert (err.code, err.file, err.line, err.column, err.path) == ("KMLC112", "m.yml", 4, 7,
                                                                    "name")
    assert err.message.startswith(message)


def test_undefined_name_hint() -> None:
    err = _errors('name: "{{ nope }}"\n').errors[0]
    assert err.hint == "available: env('NAME', default), params, now()"


SANDBOX_ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].system('touch MARKER') }}",
    "{{ env.__globals__ }}",
    "{{ env.__func__.__globals__ }}",
    "{{ env.__self__.secrets }}",
    "{{ now.__globals__ }}",
    "{{ params.__class__.__base__.__subclasses__() }}",
    "{{ ''|attr('__class__') }}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ ''.__getattribute__('__class__') }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
]


@pytest.mark.parametrize("expression", SANDBOX_ESCAPES)
def test_sandbox_escapes_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     expression: str) -> None:
    monkeypatch.chdir(tmp_path)
    text = f"version: 1\nparameters:\n  alpha: 1\ndatasets:\n  d: {{filepath: \"{expression}\"}}\n"
    errors = _errors(text).errors
    assert len(errors) == 1
    err = errors[0]
    assert (err.code, err.line, err.column, err.path) == ("KMLC114", 5, 17, "datasets.d.filepath")
    assert err.message.startswith("template not allowed: access to attribute '__")
    assert "is unsafe" in err.message
    assert list(tmp_path.iterdir()) == []


def test_every_bad_value_is_reported_sorted() -> None:
    errors = _errors(
        'name: "{{ a }}"\n'
        "parameters:\n"
        '  x: "{{ b }}"\n'
        '  y: "{{ \'\'.__class__ }}"\n'
        "tracking:\n"
        '  uri: "{{ 1 + }}"\n').errors
    assert [(e.line, e.code, e.path) for e in errors] == [
        (1, "KMLC112", "name"),
        (3, "KMLC112", "parameters.x"),
        (4, "KMLC114", "parameters.y"),
        (6, "KMLC112", "tracking.uri"),
    ]


def test_template_in_an_environment_is_located_there(demo_yaml: str) -> None:
    from kmlc.config.overlay import apply_overlays

    text = demo_yaml + "  broken:\n    name: \"{{ nope }}\"\n"
    doc = apply_overlays(parse_text(text, "m.yml"), "broken")
    with pytest.raises(ConfigErrors) as info:
        render_document(doc)
    err = info.value.errors[0]
    assert (err.code, err.line, err.column, err.path) == ("KMLC112", 41, 11, "name")


# ----------------------------------------------------------------- resource limits

RUNAWAY_TEMPLATES = [
    "{{ 'a' * 10**10 }}",
    "{{ 10**10 * 'a' }}",
    "{{ [0] * 10**9 }}",
    "{{ ['x' * 999999] * 2 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ (10 ** 1200) * (10 ** 1200) }}",
    "{{ ('a' * 999999) + ('a' * 999999) }}",
    "{{ '%0999999999999d' % 1 }}",
    "{{ '%*d' % (10**12, 1) }}",
    "{{ '{:>99999999999}'.format(1) }}",
    "{{ '{:>{}}'.format(1, 10**12) }}",
    "{{ 'a'.center(10**12) }}",
    "{{ 'a'.zfill(10**12) }}",
    "{{ 'a' | center(10**12) }}",
    "{{ ('x\\n' * 400000) | indent(100) }}",
    "{{ 'x' | replace('x', 'x' * 999999) | replace('x', 'x' * 999999) }}",
    "{{ range(99999) | map('center', 999999) | join }}",
    "{{ lipsum(10**8) }}",
    "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s }}",
    "{% set ns = namespace(l=[1]) %}{% for i in range(80) %}{% set ns.l = [ns.l, ns.l] %}"
    "{% endfor %}{{ ns.l | string }}",
    "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s }}{% endmacro %}{{ f('x', 60) }}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% else %}x{% endif %}{% endmacro %}"
    "{{ f(60) }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set s = 'x' * 300000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "{% set l = [1] %}{% for i in range(64) %}{{ l.extend(l) }}{% endfor %}",
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("expression", RUNAWAY_TEMPLATES)
def test_runaway_templates_are_stopped(expression: str) -> None:
    errors = _errors(f'version: 1\nparameters:\n  alpha: "{expression}"\n').errors
    assert len(errors) == 1
    err = errors[0]
    assert (err.code, err.line, err.column, err.path) == ("KMLC114", 3, 10, "parameters.alpha")
    assert err.message.startswith("template not allowed: ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"{{ 2 ** 100 }}"', 2**100),
        ('"{{ \'ab\' * 3 }}"', "ababab"),
        ('"v{{ \'%5.2f\' % 1.5 }}"', "v 1.50"),
        ('"v{{ \'{:>4}\'.format(7) }}"', "v   7"),
        ('"{{ range(5) | map(\'string\') | join(\',\') }}"', "0,1,2,3,4"),
        ('"{% for x in [3, 1, 2] | sort if x > 1 %}{{ x }}{{ \',\' if not loop.last }}'
         '{% endfor %}"', "2,3"),
        ('"{% set ns = namespace(n=0) %}{% for i in range(10) %}{% set ns.n = ns.n + i %}'
         '{% endfor %}{{ ns.n }}"', "45"),
        ('"{% macro twice(s) %}{{ s ~ s }}{% endmacro %}{{ twice(\'ab\') }}"', "abab"),
        ('"{{ \'a-b\' | replace(\'-\', \'_\') | upper }}"', "A_B"),
    ],
)
def test_ordinary_templates_stay_within_the_limits(value: str, expected: Any) -> None:
    assert _render(f"name: {value}\n")["name"] == expected


@pytest.mark.timeout(120)
def test_a_file_of_many_big_values_is_refused_where_its_budget_runs_out(tmp_path: Path) -> None:
    """3,000 values each under the limit of one value would build 3 GB: ``kmlc validate``
    (a real process, its address space capped at 1.5 GB) refuses the file at the value
    where the file's budget runs out, once, in seconds."""
    lines = ["version: 1", "name: big", "parameters:"]
    lines += [f"  p{i}: \"{{{{ 'a' * 999999 }}}}\"" for i in range(3000)]
    (tmp_path / "mlproject.yml").write_text("\n".join(lines) + "\n")
    limit = 1_500_000_000
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", "import resource, sys; from kmlc.cli import main; "
         f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit})); "
         "sys.argv = ['kmlc', 'validate']; main()"],
        cwd=tmp_path, capture_output=True, text=True, timeout=110)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    errors = [line for line in done.stdout.splitlines() + done.stderr.splitlines()
              if ": error: " in line]
    budget = MAX_TOTAL // 999_999 + 1  # the first value past the budget
    assert errors == [
        f"mlproject.yml:{budget + 4}:{len(f'  p{budget}: ') + 1}: error: parameters.p{budget}: "
        f"template not allowed: the file's templates render over {MAX_TOTAL:,} characters "
        "in all; this value is over the budget (the sandbox bounds what one file may "
        "compute; build large values in a node) [KMLC114]"], errors
    assert took < 60, took


@pytest.mark.timeout(60)
def test_a_file_whose_templates_take_too_long_is_refused_where_its_time_runs_out(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Values each within their own budget of work, but slow all together: the value
    rendering when the file's time runs out is the one error. The file's clock is a counter
    (10 µs a reading; a value reads it some 30,000 times, once a loop step), so the budget
    runs out in the fourth value or so whatever the machine's load (CI's lowest-version
    step, nice'd beside the suite, took over 1 s of real time for p0 alone)."""
    monkeypatch.setattr(render, "MAX_SECONDS", 1.0)
    readings = itertools.count()
    monkeypatch.setattr(render, "time", types.SimpleNamespace(
        monotonic=lambda: next(readings) * 1e-5))
    slow = "{% for i in range(100) %}{% for j in range(300) %}{% endfor %}{% endfor %}x"
    text = "version: 1\nparameters:\n" + "".join(f'  p{i}: "{slow}"\n' for i in range(400))
    started = time.monotonic()
    errors = _errors(text).errors
    assert time.monotonic() - started < 10
    assert len(errors) == 1 and errors[0].code == "KMLC114", errors
    assert "take over 1 s to render; this value is over the budget" in errors[0].message
    assert errors[0].path.startswith("parameters.p") and errors[0].path != "parameters.p0"
    assert errors[0].line == int(errors[0].path.removeprefix("parameters.p")) + 3
