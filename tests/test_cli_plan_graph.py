"""The options of ``kmlc plan``, ``kmlc graph`` and ``kmlc promote``, checked by their effect."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kmlc.cli import main


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_plan_env_params_and_output_file(write_project, tmp_path: Path) -> None:
    path = write_project()
    out = tmp_path / "target" / "manifest.json"
    code, output = _invoke("plan", "--file", str(path), "--env", "prod", "--format", "json",
                           "--output", str(out))
    assert code == 0, output
    assert json.loads(out.read_text())["parameters"]["alpha"] == 0.9  # from the prod overlay
    # with -o the terminal gets one line saying where the manifest went, not the manifest
    assert output == (f"manifest written to {out} (pipelines: __default__, etl, inference, "
                      "training)\n")
    code, output = _invoke("plan", "--file", str(path), "--env", "prod", "--params",
                           "alpha=0.3", "--format", "json", "--output", str(out))
    assert code == 0, output
    assert json.loads(out.read_text())["parameters"]["alpha"] == 0.3  # --params over --env


def test_graph_env_params_format_and_output_file(write_project, tmp_path: Path) -> None:
    path = write_project()
    mermaid = tmp_path / "graph.mmd"
    code, output = _invoke("graph", "--file", str(path), "--env", "prod", "--params",
                           "alpha=0.3", "--format", "mermaid", "--output", str(mermaid))
    assert code == 0, output
    text = mermaid.read_text()
    assert text.lstrip().startswith(("flowchart", "graph")) and "fit" in text
    page = tmp_path / "graph.html"
    code, output = _invoke("graph", "--file", str(path), "--format", "html",
                           "--output", str(page))
    assert code == 0, output
    assert "<svg" in page.read_text() and "evaluate" in page.read_text()


def test_promote_reads_the_store_given_by_tracking_uri(write_project, demo_yaml: str,
                                                       tmp_path: Path) -> None:
    text = demo_yaml.replace(
        "model:\n  input: instances\n",
        "model:\n  input: instances\n  registered_name: demo\n"
        "  promote: {alias: champion, when: \"metrics['score'] >= 0\"}\n")
    path = write_project(text)
    other = tmp_path / "elsewhere" / "other.db"
    other.parent.mkdir()
    code, output = _invoke("promote", "--file", str(path), "--run-id", "0" * 32,
                           "--tracking-uri", f"sqlite:///{other}")
    assert code == 1
    assert f"run '{'0' * 32}' was not found in sqlite:///{other}" in output
    assert "Traceback" not in output
