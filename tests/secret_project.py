"""The mini project with one secret in three places, and a search for it afterwards.

The secret is a value of the credentials file that the model's input dataset uses
(``datasets.instances.credentials: db``; the local filesystem takes it as a storage
option and ignores it), and the same value read with ``env(..., secret=true)`` into a
parameter a training node reads (and checks it got in clear) and into a tracking tag.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from mini_project import MINI_NODES, MINI_YAML, write_mini

SECRET = "Zq7-cr3d-s3cr3t-41"
TOKEN_ENV = "KMLC_TEST_TOKEN"
TEMPLATE = "{{ env('" + TOKEN_ENV + "', secret=true) }}"

SECRET_YAML = (MINI_YAML
               .replace("name: mini\n", "name: mini\ncredentials: creds.yml\n")
               .replace("  tags: {team: tests}\n",
                        f'  tags: {{team: tests, owner: "{TEMPLATE}"}}\n')
               .replace("  fail: false\n", f'  fail: false\n  token: "{TEMPLATE}"\n')
               .replace("instances: {type: pandas.CSVDataset, filepath: data/01_raw/instances.csv}",
                        "instances: {type: pandas.CSVDataset, "
                        "filepath: data/01_raw/instances.csv, credentials: db}")
               .replace("inputs: [report, params:fail, params:sleep]",
                        "inputs: [report, params:fail, params:sleep, params:token]"))

SECRET_NODES = MINI_NODES.replace("import time\n", "import os\nimport time\n").replace(
    "def check(report, fail, sleep):\n",
    "def check(report, fail, sleep, token):\n"
    f"    assert token == os.environ['{TOKEN_ENV}'], 'the node got a masked token'\n")


def write_secret_project(root: Path) -> Path:
    """The project and its credentials file in ``root``; returns its mlproject.yml."""
    assert SECRET_YAML.count(TEMPLATE) == 2 and "credentials: db}" in SECRET_YAML
    assert "token" in SECRET_NODES
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
