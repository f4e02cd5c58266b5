"""The schema in an editor: the real yaml-language-server (from the npm registry, as VS Code's
YAML extension runs it) driven over LSP on stdio, with the file's ``$schema`` modeline.

The server is installed once per version into a cache folder (``KMLC_TEST_CACHE``, else
``~/.cache/kmlc-tests``). Without npm the tests skip, saying so; in CI (``CI`` set) an npm
that cannot install the server fails them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsp_client import YAML_LANGUAGE_SERVER, LspClient, yaml_server

from kmlc.config.dataset_types import type_problem
from kmlc.config.schema import load_schema
from kmlc.config.shorthands import MLFLOW_TYPES as MLFLOW_DATASET_TYPES

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "mlproject.schema.json"


def _cache() -> Path:
    base = os.environ.get("KMLC_TEST_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "kmlc-tests"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def server_entry() -> Path:
    """The server's JS entry, installed with npm into the cache once (atomically, under a
    lock: parallel test processes install it once)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm and node are not installed: the editor tests need the real "
                    "yaml-language-server from the npm registry")
    folder = _cache() / f"yaml-language-server-{YAML_LANGUAGE_SERVER}"
    entry = folder / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
    if entry.exists():
        return entry
    with _locked(_cache() / ".yaml-language-server.lock"):
        if entry.exists():
            return entry
        staging = Path(tempfile.mkdtemp(prefix=".yls-", dir=_cache()))
        try:
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix",
                 str(staging), f"yaml-language-server@{YAML_LANGUAGE_SERVER}"],
                capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                why = (f"npm could not install yaml-language-server@{YAML_LANGUAGE_SERVER}: "
                       f"{done.stderr.strip()[-1500:]}")
                if os.environ.get("CI"):
                    pytest.fail(why)
                pytest.skip(why)
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return entry


_TEXT = """\
# yaml-language-server: $schema={schema}
version: 1
name: demo

datasets:
  instances:
    type: pandas.CSVDataset
    filepath: data/instances.csv
  accuracy:
    type: <cursor>
datasests: {{}}
tracking:
  experiment: demo
"""


@pytest.fixture(scope="module")
def editor(server_entry: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[LspClient, str, dict]]:
    """The server with mlproject.yml open: (client, document URI, first diagnostics)."""
    root = tmp_path_factory.mktemp("editor")
    text = _TEXT.format(schema=SCHEMA.as_uri()).replace("<cursor>", "")
    doc = root / "mlproject.yml"
    doc.write_text(text)
    with yaml_server(server_entry, root) as client:
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": doc.as_uri(), "languageId": "yaml", "version": 1, "text": text}})
        diagnostics = client.wait_notification("textDocument/publishDiagnostics", doc.as_uri())
        yield client, doc.as_uri(), diagnostics


def _labels(client: LspClient, uri: str, line: int, character: int) -> list[str]:
    result = client.request("textDocument/completion", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": character}})
    items = result["items"] if isinstance(result, dict) else result or []
    return sorted(item["label"] for item in items)


@pytest.mark.slow
def test_top_level_completion_offers_every_key_not_yet_written(editor) -> None:
    client, uri, _ = editor
    offered = set(_labels(client, uri, 3, 0))  # the empty line after `name:`
    written = {"version", "name", "datasets", "tracking"}
    missing = set(load_schema()["properties"]) - written - offered
    assert not missing, f"top-level completion lacks {sorted(missing)}"
    assert {"nodes", "model", "pipelines", "parameters", "code"} <= offered


@pytest.mark.slow
def test_a_datasets_type_completes_to_the_dataset_types(editor) -> None:
    client, uri, _ = editor
    offered = set(_labels(client, uri, 9, 10))  # after `type: ` of accuracy
    assert set(MLFLOW_DATASET_TYPES) <= offered
    assert {"pandas.CSVDataset", "pickle.PickleDataset", "json.JSONDataset"} <= offered


@pytest.mark.slow
def test_an_unknown_key_is_a_located_diagnostic(editor) -> None:
    _, _, published = editor
    found = [d for d in published["diagnostics"] if "datasests" in d["message"]]
    assert found, published["diagnostics"]
    start = found[0]["range"]["start"]
    assert (start["line"], start["character"]) == (10, 0)  # line 11, column 1 of the file
    assert found[0]["severity"] == 1  # an error


@pytest.mark.slow
def test_hover_shows_the_keys_description(editor) -> None:
    client, uri, _ = editor
    hover = client.request("textDocument/hover", {
        "textDocument": {"uri": uri}, "position": {"line": 12, "character": 4}})
    contents = hover["contents"]
    text = contents["value"] if isinstance(contents, dict) else str(contents)
    description = load_schema()["properties"]["tracking"]["properties"]["experiment"][
        "description"]
    assert description.split(";")[0].replace("`", "") in text.replace("\\", "").replace(
        "`", "")


def test_every_dataset_type_the_schema_suggests_is_one_kmlc_accepts() -> None:
    dataset = load_schema()["$defs"]["dataset"]["properties"]["type"]
    assert set(MLFLOW_DATASET_TYPES) <= set(dataset["examples"])
    assert [name for name in dataset["examples"] if type_problem(name) is not None] == []


def test_no_key_of_the_schema_has_a_null_default() -> None:
    """yaml-language-server offers no top-level key after a ``"default": null``."""
    def walk(node: object, path: str) -> list[str]:
        if isinstance(node, dict):
            found = [path] if "default" in node and node["default"] is None else []
            return found + [p for k, v in node.items() for p in walk(v, f"{path}/{k}")]
        if isinstance(node, list):
            return [p for i, v in enumerate(node) for p in walk(v, f"{path}/{i}")]
        return []

    assert walk(load_schema(), "") == []
