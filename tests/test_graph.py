"""``kmlc graph``: Mermaid text and an offline HTML page, rendered in a real Chromium."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from click.testing import CliRunner
from tools import which

from kmlc.cli import main


def _graph(file: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["graph", "-f", str(file), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_mermaid_distinguishes_datasets_and_tags(iris_file: Path) -> None:
    text = _graph(iris_file)
    assert text.startswith("flowchart LR\n")
    shapes = {m.group(2): m.group(1) for m in re.finditer(
        r"^\s+d\d+_\w+(\S*?)\"([^\"]+)\"\S*?:::(\w+)$", text, re.M)}
    classes = dict(re.findall(r"\"([^\"]+)\"\S*:::(\w+)$", text, re.M))
    assert classes["clean"] == "both" and classes["split"] == "training"
    assert classes["predict"] == "inference"
    assert classes["scaler"] == "packed" and classes["classifier"] == "packed"
    assert classes["accuracy"] == "tracked" and classes["confusion_matrix"] == "tracked"
    assert classes["instances"] == "persisted" and classes["x_train"] == "memory"
    assert classes["params:split"] == "parameter"
    assert shapes["instances"] == "[(" and shapes["x_train"] == "(["
    ids = dict((label, ident) for ident, label in re.findall(r"^\s+(\w+)\S*?\"([^\"]+)\"", text,
                                                             re.M))
    assert f"  {ids['instances']} --> {ids['clean']}" in text
    assert f"  {ids['fit_classifier']} --> {ids['classifier']}" in text


def test_namespaces_are_grouped(write_project) -> None:  # type: ignore[no-untyped-def]
    text = """\
version: 1
name: ns
datasets:
  raw: {type: pandas.CSVDataset, filepath: raw.csv}
nodes:
  - {name: prep.clean, func: ns_nodes.ident, inputs: raw, outputs: prep.out, tags: [training]}
  - {name: prep.more, func: ns_nodes.ident, inputs: prep.out, outputs: prep.more_out,
     tags: [training]}
  - {name: report, func: ns_nodes.ident, inputs: prep.more_out, outputs: final}
"""
    file = write_project(text, nodes=None,
                         files={"ns_nodes.py": "def ident(x):\n    return x\n"})
    mermaid = _graph(file)
    block = mermaid.split('subgraph ns_prep["prep"]\n', 1)[1].split("  end\n", 1)[0]
    assert '"prep.clean"' in block and '"prep.more"' in block and '"report"' not in block
    html = _graph(file, "--format", "html")
    assert '<g class="namespace">' in html and ">prep</text>" in html


def test_html_renders_offline_in_chromium(iris_file: Path, tmp_path: Path) -> None:
    chromium = which("chromium", "chromium-browser",
                     reason="Chromium is not installed (apt-get install chromium; .ci/run "
                            "installs it)")
    page = tmp_path / "graph.html"
    out = _graph(iris_file, "-o", str(page))
    assert "6 nodes, 16 datasets" in out
    source = page.read_text()
    assert "http" not in source.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in source
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    names = {name: kind for kind, name in re.findall(
        r'<g class="(?:node|dataset) (\w+)" data-name="([^"]+)"', dom)}
    assert {"clean", "split", "fit_scaler", "fit_classifier", "evaluate", "predict"} <= set(names)
    assert names["predict"] == "inference" and names["scaler"] == "packed"
    shot = tmp_path / "graph.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", "--window-size=1780,340", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, timeout=120, check=True, cwd=tmp_path)
    from PIL import Image

    with Image.open(shot) as image:
        colours = {rgb for _, rgb in image.convert("RGB").getcolors(1 << 20) or []}
    assert (0x59, 0xA1, 0x4F) in colours  # an inference node was painted
    assert (0x4E, 0x79, 0xA7) in colours  # a training node was painted


def test_unknown_pipeline_is_one_line(iris_file: Path) -> None:
    result = CliRunner().invoke(main, ["graph", "-f", str(iris_file), "trainig"])
    assert result.exit_code == 1
    assert "did you mean 'training'" in result.output and "Traceback" not in result.output
