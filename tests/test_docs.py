"""The documentation site: built strictly, with its two references made from the code."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from kmlc.cli import main

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "docs"))
import gen_reference  # noqa: E402  (docs/ is not a package: its generator is imported by path)


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                           str(config), "-d", str(site)],
                          capture_output=True, text=True, timeout=180, cwd=config.parent)


def _schema_keys(node: object, found: set[str]) -> set[str]:
    """Every property name anywhere in the schema, read without the generator's walk."""
    if isinstance(node, dict):
        for name, child in node.get("properties", {}).items():
            found.add(name)
            _schema_keys(child, found)
        for key, child in node.items():
            if key != "properties":
                _schema_keys(child, found)
    elif isinstance(node, list):
        for child in node:
            _schema_keys(child, found)
    return found


def test_the_site_builds_strictly_with_every_key_and_every_option(tmp_path: Path) -> None:
    done = _build(REPO / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr
    raw = (tmp_path / "site/reference/mlproject/index.html").read_text()
    headings = [html.unescape(h) for h in re.findall(r"<h2 id=\"[^\"]*\"><code>([^<]+)</code>",
                                                        raw)]
    keys_page = html.unescape(raw)
    schema = json.loads((REPO / "schemas/mlproject.schema.json").read_text())
    keys = _schema_keys(schema, set())
    assert len(keys) > 60
    shown = {re.split(r"[.\[\]]+", h.rstrip("[]"))[-1] for h in headings}
    assert keys - {"$schema"} <= shown | {"$schema"}, sorted(keys - shown)
    assert len(headings) == len(set(headings)), "a key is listed twice"
    for path, node in (("tracking.uri", schema["properties"]["tracking"]["properties"]["uri"]),
                       ("model.input", schema["properties"]["model"]["properties"]["input"])):
        section = keys_page.split(f"<code>{path}</code>", 1)[1].split("<h2", 1)[0]
        assert node["description"] in section
    assert "sqlite:///mlflow.db" in keys_page.split("<code>tracking.uri</code>")[1][:2000]

    cli_page = html.unescape((tmp_path / "site/reference/cli/index.html").read_text())
    for name, command in main.commands.items():
        assert f'<h2 id="kmlc-{name}">kmlc {name}<' in cli_page, name
        section = cli_page.split(f'<h2 id="kmlc-{name}">', 1)[1].split("<h2", 1)[0]
        for param in command.params:
            if isinstance(param, click.Option):
                for spelling in param.opts:
                    assert spelling in section, f"kmlc {name} {spelling}"
    # the generator's source is not published as a page or a file of the site
    assert not list((tmp_path / "site").rglob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize(("link", "complaint"), [
    ("[gone](how-to/sweeps.md)", "how-to/sweeps.md"),
    ("[a removed key](reference/mlproject.md#trackingurl)", "#trackingurl"),
])
def test_a_broken_link_or_anchor_fails_the_strict_build(tmp_path: Path, link: str,
                                                        complaint: str) -> None:
    """A page linking to a page that does not exist, or to a key or option the generated
    references no longer have, fails `mkdocs build --strict`."""
    import shutil

    docs = tmp_path / "docs"
    shutil.copytree(REPO / "docs", docs)
    with (docs / "tutorial.md").open("a") as page:
        page.write(f"\nSee {link}.\n")
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    config["docs_dir"] = str(docs)
    config["hooks"] = [str(REPO / "docs" / "gen_reference.py")]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    done = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 1
    assert f"contains a link '{link.split('(')[1].rstrip(')')}'" in done.stderr, done.stderr
    assert complaint in done.stderr
    # the same pages without the bad link build
    (docs / "tutorial.md").write_text((REPO / "docs/tutorial.md").read_text())
    assert _build(tmp_path / "mkdocs.yml", tmp_path / "site").returncode == 0


def test_the_command_reference_follows_the_command_line() -> None:
    """A command or option added to click is in the next build's page, with its help."""
    group = click.Group("kmlc")
    group.add_command(main.commands["schema"])

    @group.command("fresh")
    @click.argument("target", default="here")
    @click.option("--shiny/--dull", default=True, help="A new option | with a bar.")
    def fresh(target: str, shiny: bool) -> None:
        """A command added after the docs were written."""

    page = gen_reference.cli_reference(group)
    assert "## kmlc fresh" in page and "A command added after the docs were written." in page
    assert "| `--shiny / --dull` | A new option \\| with a bar. |" in page
    assert "| `TARGET` | no | `here` |" in page
    assert "## kmlc init" not in page


def test_the_key_reference_follows_the_schema() -> None:
    schema = json.loads((REPO / "schemas/mlproject.schema.json").read_text())
    schema["properties"]["tracking"]["properties"]["fresh_key"] = {
        "description": "A key added after the docs were written.", "type": "integer",
        "default": 3, "examples": [7]}
    page = gen_reference.schema_reference(schema)
    section = page.split("## `tracking.fresh_key`", 1)[1].split("\n## ", 1)[0]
    assert "A key added after the docs were written." in section
    assert "- **type**: integer" in section and "- **default**: `3`" in section
    assert "- **example**: `fresh_key: 7`" in section
    # an example from a file the tests validate, naming the file
    assert "- **example**: `prefix: test` (the README's tour)" in page


@pytest.mark.slow
def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    """Every command of the tutorial's bash blocks, in order, in an empty folder: each exits
    0, `kmlc validate` prints what the page shows, and the two predictions agree."""
    import os

    import pandas as pd

    page = (REPO / "docs" / "tutorial.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", page, re.S)
    commands = [line.split() for block in blocks for line in block.splitlines() if line.strip()]
    assert commands[:2] == [["kmlc", "init", "demo"], ["cd", "demo"]]
    kmlc = str(Path(sys.executable).parent / "kmlc")
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cwd, printed = tmp_path, {}
    for words in commands:
        if words[0] == "cd":
            cwd = cwd / words[1]
            continue
        assert words[0] == "kmlc", words
        done = subprocess.run([kmlc, *words[1:]], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=240)
        assert done.returncode == 0, f"{' '.join(words)}:\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        printed[" ".join(words)] = done.stdout
    shown = page.split("kmlc validate\n```", 1)[1].split("```text\n", 1)[1].split("```")[0]
    assert printed["kmlc validate"] == shown
    served = pd.read_csv(cwd / "data/07_model_output/served.csv")
    ran = pd.read_csv(cwd / "data/07_model_output/predictions.csv")
    assert len(served) == 80
    pd.testing.assert_frame_equal(served, ran)
