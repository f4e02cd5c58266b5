"""The mini project with secrets in many places, and a search for them afterwards.

The secret is a value of the credentials file that the model's input dataset uses
(``datasets.instances.credentials: db``; the local filesystem takes it as a storage
option and ignores it), and the same value read with ``env(..., secret=true)`` into a
parameter a training node reads (and checks it got in clear) and into a tracking tag.
A second secret looks like a number (``PIN``: the parameter ``pin`` is an int), and
values computed from the first (``DERIVED``: a filter, slices, a concatenation; ``SHOUT``:
a tag computed from a parameter computed from it) are read by the node too.
``SECRET_ENV`` is the environment a run needs; ``ALL_SECRETS``, what must be nowhere.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from mini_project import MINI_NODES, MINI_YAML, write_mini

SECRET = "Zq7-cr3d-s3cr3t-41"
TOKEN_ENV = "KMLC_TEST_TOKEN"
TEMPLATE = "{{ env('" + TOKEN_ENV + "', secret=true) }}"
PIN = "987654321987"
PIN_ENV = "KMLC_TEST_PIN"
SECRET_ENV = {TOKEN_ENV: SECRET, PIN_ENV: PIN}
_TOKEN = "env('" + TOKEN_ENV + "', secret=true)"
# parameter derived.KEY: (template, the value the node gets)
DERIVED = {
    "upper": ("{{ " + _TOKEN + " | upper }}", SECRET.upper()),
    "reversed": ("{{ " + _TOKEN + "[::-1] }}", SECRET[::-1]),
    "head": ("{{ " + _TOKEN + "[:12] }}", SECRET[:12]),
    "joined": ("{{ 'id-' ~ " + _TOKEN + "[4:] ~ '-x' }}", f"id-{SECRET[4:]}-x"),
}
# a tag computed from a parameter computed from the secret: tainted through ``params``
SHOUT = SECRET.upper().lower()
ALL_SECRETS = (SECRET, PIN, *(value for _, value in DERIVED.values()), SHOUT)

_PARAMS = (f'  token: "{TEMPLATE}"\n'
           + "  pin: \"{{ env('" + PIN_ENV + "', secret=true) }}\"\n"
           + "  derived:\n"
           + "".join(f'    {key}: "{template}"\n' for key, (template, _) in DERIVED.items()))
SECRET_YAML = (MINI_YAML
               .replace("name: mini\n", "name: mini\ncredentials: creds.yml\n")
               .replace("  tags: {team: tests}\n",
                        f'  tags: {{team: tests, owner: "{TEMPLATE}", '
                        'shout: "{{ params.derived.upper | lower }}"}\n')
               .replace("  fail: false\n", "  fail: false\n" + _PARAMS)
               .replace("instances: {type: pandas.CSVDataset, filepath: data/01_raw/instances.csv}",
                        "instances: {type: pandas.CSVDataset, "
                        "filepath: data/01_raw/instances.csv, credentials: db}")
               .replace("inputs: [report, params:fail, params:sleep]",
                        "inputs: [report, params:fail, params:sleep, params:token, "
                        "params:pin, params:derived]"))

# the node computes what it expects from the environment: its file holds no secret
_EXPECTED = ("{'upper': token.upper(), 'reversed': token[::-1], 'head': token[:12], "
             "'joined': 'id-' + token[4:] + '-x'}")
SECRET_NODES = MINI_NODES.replace("import time\n", "import os\nimport time\n").replace(
    "def check(report, fail, sleep):\n",
    "def check(report, fail, sleep, token, pin, derived):\n"
    f"    assert token == os.environ['{TOKEN_ENV}'], 'the node got a masked token'\n"
    f"    assert pin == int(os.environ['{PIN_ENV}']), 'the node got a masked pin'\n"
    f"    assert derived == {_EXPECTED}, 'the node got masked derived values'\n",
).replace('raise ValueError("the check failed on purpose")',
          'raise ValueError(f"the check failed on purpose with {pin} and {derived}")')


def write_secret_project(root: Path) -> Path:
    """The project and its credentials file in ``root``; returns its mlproject.yml."""
    assert SECRET_YAML.count(TEMPLATE) == 2 and "credentials: db}" in SECRET_YAML
    assert SECRET_YAML.count("params:derived]") == 1 and "shout:" in SECRET_YAML
    assert "token" in SECRET_NODES and "with {pin} and {derived}" in SECRET_NODES
    path = write_mini(root, SECRET_YAML, SECRET_NODES)
    (root / "creds.yml").write_text(f"db:\n  password: {SECRET}\n", encoding="utf-8")
    return path


def sqlite_dump(db: Path) -> str:
    """Every table, row and column of an sqlite database, as SQL text."""
    with closing(sqlite3.connect(db)) as connection:
        return "\n".join(connection.iterdump())


def files_holding(root: Path, secret: str, skip: tuple[str, ...] = ()) -> tuple[list[str], int]:
    """Files under ``root`` whose name or bytes hold ``secret``, and how many were read."""
    found, read = [], 0
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root).as_posix()
        if rel in skip:
            continue
        if secret in rel:
            found.append(f"file name {rel}")
        elif file.is_file():
            read += 1
            if secret.encode() in file.read_bytes():
                found.append(rel)
    return found, read
