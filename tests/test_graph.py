"""``kmlc graph``: Mermaid text and an offline HTML page, rendered in a real Chromium."""

from __future__ import annotations

import html
import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tools import which

from kmlc.cli import main
from kmlc.compiler.project import compile_project
from kmlc.config.functions import code_path
from kmlc.config.loader import load_project
from kmlc.inspect.graph import PipelineGraph, _ancestors, pipeline_graph


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


NESTED = """\
version: 1
name: nested
datasets:
  raw: {type: pandas.CSVDataset, filepath: raw.csv, metadata: {kedro-viz: {layer: raw}}}
  "a.typed@one": {type: pandas.CSVDataset, filepath: typed.csv,
                  metadata: {kedro-viz: {layer: intermediate}}}
  "a.typed@two": {type: pandas.CSVDataset, filepath: typed.csv}
nodes:
  - {name: prep__0123abcd, namespace: a, func: ns_nodes.prep, inputs: raw,
     outputs: "a.typed@one"}
  - {name: fit, namespace: a.b, func: ns_nodes.ident, inputs: "a.typed@two",
     outputs: a.b.model}
  - {name: score, namespace: a.b, func: ns_nodes.ident, inputs: a.b.model, outputs: score}
"""


def test_transcoded_nested_layered_and_labelled_as_kedro_viz(write_project) -> None:  # type: ignore[no-untyped-def]
    """One dataset for ``x@one``/``x@two``; ``a.b`` drawn inside ``a``; layers shown, in
    their order; an unnamed node's Kedro hash left out of its label."""
    file = write_project(NESTED, nodes=None, files={
        "ns_nodes.py": "def prep(x):\n    return x\n\ndef ident(x):\n    return x\n"})
    mermaid = _graph(file)
    assert "@" not in mermaid and mermaid.count('"a.typed"') == 1
    outer = mermaid.split('subgraph ns_a["a"]\n', 1)[1]
    inner = outer.split('subgraph ns_a_b["b"]\n', 1)
    assert '"a.prep"' in inner[0] and '"a.typed"' in inner[0]  # the hash is left out
    assert '"a.b.fit"' in inner[1] and '"a.b.model"' in inner[1]
    assert re.search(r"d\d+_a_typed\S* --> n\d+_a_b_fit", mermaid)  # read through @two
    page = _graph(file, "--format", "html")
    assert 'data-name="a.prep__0123abcd"' in page and ">prep</text>" in page
    assert 'data-name="a.typed" data-layer="intermediate"' in page
    assert 'data-name="raw" data-layer="raw"' in page
    assert "layers: raw → intermediate" in page
    assert '<rect data-name="a.b"' in page and ">b</text>" in page


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


# --- beside kedro-viz ------------------------------------------------------------------

DATA = Path(__file__).resolve().parent / "data"
VIZ_REFERENCE = DATA / "kedro_viz_reference" / "__default__.json"


def _kmlc_name(kedro_name: str) -> str:
    """The demo's `lambda x: x` node is Kedro's `ingestion.<lambda>__2de1c226`; import-kedro
    copies it and names it without the `<>` a kmlc name cannot hold."""
    return kedro_name.replace("<lambda>", "lambda")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(DO_NOT_TRACK="1", KEDRO_DISABLE_TELEMETRY="true", PYTHONDONTWRITEBYTECODE="1")
    return env


@pytest.fixture(scope="module")
def viz_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kedro-viz's demo project, imported by ``kmlc import-kedro`` as a user would."""
    root = shutil.copytree(DATA / "kedro_viz_demo", tmp_path_factory.mktemp("viz") / "demo")
    done = subprocess.run([str(Path(sys.executable).with_name("kmlc")), "import-kedro", "."],
                          cwd=root, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "mlproject.yml"


def _kmlc_graph(file: Path) -> PipelineGraph:
    spec = load_project(file)
    with code_path(spec.code):
        return pipeline_graph(compile_project(spec, run=False))


@pytest.mark.slow
def test_kedro_viz_demo_reads_as_kedro_viz_reads_it(viz_demo: Path) -> None:
    """kmlc's graph of kedro-viz's demo project against kedro-viz 12.5's own export of it
    (``kedro viz build``: tests/data/kedro_viz_reference): the same nodes with the same
    labels, one node for a transcoded dataset, the same edges, the same nested boxes
    holding the same things, the same layers in the same order."""
    viz = json.loads(VIZ_REFERENCE.read_text())
    graph = _kmlc_graph(viz_demo)
    by_id = {n["id"]: n for n in viz["nodes"]}
    tasks = {n["full_name"]: n for n in viz["nodes"] if n["type"] == "task"}
    data = {n["name"]: n for n in viz["nodes"] if n["type"] in ("data", "parameters")}

    def name(viz_id: str) -> str:
        node = by_id[viz_id]
        return _kmlc_name(node.get("full_name") or node["name"])

    ours = {item.name: item for item in graph.items.values()}
    assert {k for k, i in ours.items() if i.is_node} == {_kmlc_name(k) for k in tasks}
    assert {k for k, i in ours.items() if not i.is_node} == set(data)
    # one dataset for `ingestion.int_typed_shuttles@pandas1` / `@pandas2`
    assert "ingestion.int_typed_shuttles" in ours
    assert not any("@" in key for key in ours)
    for key, task in tasks.items():  # kedro-viz's name: no namespace, no hash of an unnamed node
        assert ours[_kmlc_name(key)].label == task["name"], key
    assert ours["ingestion.lambda__2de1c226"].label == "<lambda>"
    assert ours["train_evaluation.random_forest.train_model__86546ff0"].label == "train_model"
    edges = {(name(e["source"]), name(e["target"])) for e in viz["edges"]
             if by_id[e["source"]]["type"] != "modularPipeline"
             and by_id[e["target"]]["type"] != "modularPipeline"}
    assert {(graph.items[a].name, graph.items[b].name) for a, b in graph.edges} == edges
    # the modular pipelines, nested, and what each holds
    tree = viz["modular_pipelines"]
    assert graph.groups == {key: (key.rpartition(".")[0] or None)
                            for key in tree if key != "__root__"}
    for key, group in tree.items():
        theirs = {child["id"] if child["type"] == "modularPipeline" else name(child["id"])
                  for child in group["children"]}
        mine = ({i.name for i in graph.items.values() if i.namespace == (
            None if key == "__root__" else key)}
                | {g for g, parent in graph.groups.items()
                   if parent == (None if key == "__root__" else key)})
        assert mine == theirs, key
    # the layers, and each dataset's
    assert graph.layers == viz["layers"]
    for key, node in data.items():
        if key in ours:
            assert ours[key].layer == node.get("layer"), key


def _normal(value: Any) -> Any:
    """kedro-viz's JSON with its lists in one order (it builds several from sets)."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((_normal(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


@pytest.mark.slow
def test_the_reference_is_kedro_vizs_own_export(tmp_path: Path) -> None:
    """tests/data/kedro_viz_reference is what ``kedro viz build`` writes for the demo.

    kedro-viz is no dependency of kmlc: this runs where it is installed (``pip install
    kedro-viz`` in the test's environment) and skips elsewhere, CI included."""
    if importlib.util.find_spec("kedro_viz") is None:
        pytest.skip("kedro-viz is not installed here (pip install kedro-viz==12.5.0 to check "
                    "the stored reference against it)")
    root = shutil.copytree(DATA / "kedro_viz_demo", tmp_path / "demo")
    done = subprocess.run([sys.executable, "-m", "kedro", "viz", "build"], cwd=root,
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    built = json.loads((root / "build" / "api" / "pipelines" / "__default__").read_text())
    assert _normal(built) == _normal(json.loads(VIZ_REFERENCE.read_text()))


GEOMETRY = """<script>
const box = e => {
  const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom];
};
const svg = document.querySelector('svg[role=img]');
const m = svg.getScreenCTM();
const out = {
  items: [...document.querySelectorAll('g.node > rect, g.dataset > rect')].map(
    e => [e.parentNode.dataset.name, box(e)]),
  groups: [...document.querySelectorAll('g.namespace > rect')].map(e => [e.dataset.name, box(e)]),
  edges: [...document.querySelectorAll('path.edge')].map(p => {
    const pts = [];
    for (let l = 0; l <= p.getTotalLength(); l += 2) {
      const q = p.getPointAtLength(l).matrixTransform(m); pts.push([q.x, q.y]);
    }
    return pts;
  }),
  page: [document.documentElement.scrollWidth, window.innerWidth],
};
const pre = document.createElement('pre'); pre.id = 'geometry';
pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
</script>"""


def _inside(point: list[float], rect: list[float], margin: float = 1.0) -> bool:
    x, y = point
    return rect[0] + margin < x < rect[2] - margin and rect[1] + margin < y < rect[3] - margin


def _overlap(a: list[float], b: list[float]) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > 0.5 and min(a[3], b[3]) - max(a[1], b[1]) > 0.5


def _contains(a: list[float], b: list[float]) -> bool:
    return a[0] <= b[0] + 0.5 and a[1] <= b[1] + 0.5 and a[2] >= b[2] - 0.5 and a[3] >= b[3] - 0.5


@pytest.mark.slow
def test_kedro_viz_demo_layout_in_chromium(viz_demo: Path, tmp_path: Path) -> None:
    """The page Chromium draws for kedro-viz's demo, read back by geometry: namespace boxes
    nest or stand apart, no two items overlap, no edge runs behind an item, and the wide
    graph stays inside the page (it shrinks, then pans in its frame)."""
    chromium = which("chromium", "chromium-browser",
                     reason="Chromium is not installed (apt-get install chromium; .ci/run "
                            "installs it)")
    page = tmp_path / "graph.html"
    _graph(viz_demo, "-o", str(page))
    source = page.read_text()
    assert "<script" not in source
    probe = tmp_path / "probe.html"
    probe.write_text(source.replace("</body>", GEOMETRY + "</body>"))
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
         "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120,
        check=True).stdout
    found = re.search(r'<pre id="geometry">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    geometry = json.loads(html.unescape(found.group(1)))
    items, groups = geometry["items"], dict(geometry["groups"])
    drawn = _kmlc_graph(viz_demo)
    assert len(items) == len(drawn.items) == 57
    assert len(geometry["edges"]) == len(drawn.edges)
    assert set(groups) == {"ingestion", "feature_engineering", "reporting", "train_evaluation",
                           "train_evaluation.linear_regression",
                           "train_evaluation.random_forest"}
    assert _contains(groups["train_evaluation"], groups["train_evaluation.random_forest"])
    for (a, ra), (b, rb) in itertools.combinations(groups.items(), 2):
        assert not _overlap(ra, rb) or _contains(ra, rb) or _contains(rb, ra), (a, b)
    for (a, ra), (b, rb) in itertools.combinations(items, 2):
        assert not _overlap(ra, rb), (a, b)
    for points in geometry["edges"]:
        assert len(points) > 10
        for name, rect in items:
            assert not any(_inside(p, rect) for p in points), (name, points[0], points[-1])
    scroll_width, window_width = geometry["page"]
    assert scroll_width <= window_width  # the page itself never scrolls sideways


def _cubic(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float],
           p3: tuple[float, float]) -> list[tuple[float, float]]:
    return [tuple(  # type: ignore[misc]
        (1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b + 3 * (1 - t) * t ** 2 * c + t ** 3 * d
        for a, b, c, d in zip(p0, p1, p2, p3, strict=True)) for t in (i / 40 for i in range(41))]


def _path_points(d: str) -> list[tuple[float, float]]:
    """Points along one edge as to_html writes it (M, H and C commands), 2 px apart or less."""
    tokens = re.findall(r"[MHC]|-?\d+(?:\.\d+)?", d)
    points: list[tuple[float, float]] = []
    x = y = 0.0
    i = 0
    while i < len(tokens):
        command = tokens[i]
        if command == "M":
            x, y = float(tokens[i + 1]), float(tokens[i + 2])
            points.append((x, y))
            i += 3
        elif command == "H":
            end = float(tokens[i + 1])
            steps = max(1, int(abs(end - x) / 2))
            points += [(x + (end - x) * k / steps, y) for k in range(1, steps + 1)]
            x = end
            i += 2
        else:
            c = [float(v) for v in tokens[i + 1:i + 7]]
            points += _cubic((x, y), (c[0], c[1]), (c[2], c[3]), (c[4], c[5]))
            x, y = c[4], c[5]
            i += 7
    return points


def test_layout_never_overlaps_on_random_nested_graphs() -> None:
    """Random pipelines with random nested namespaces, laid out: namespace boxes nest or
    stand apart, no two items overlap, no edge passes through an item (the same
    geometry the Chromium test reads, here on many shapes, without a browser)."""
    import random

    from kmlc.inspect.graph import GraphItem, to_html

    rng = random.Random(23)
    spaces = [None, "a", "a.b", "a.b.c", "a.d", "e", "e.f"]
    for _ in range(20):
        graph = PipelineGraph("random")
        for i in range(rng.randint(5, 30)):
            rank = rng.randint(0, 8)
            graph.items[f"x:{i}"] = GraphItem(
                f"x:{i}", "n" * rng.randint(1, 30), rank % 2 == 1, "other" if rank % 2
                else "memory", rank, rng.choice(spaces), name=f"item_{i}")
        keys = list(graph.items)
        for _ in range(len(keys) * 2):
            a, b = rng.sample(keys, 2)
            if graph.items[a].rank < graph.items[b].rank and (a, b) not in graph.edges:
                graph.edges.append((a, b))
        for item in graph.items.values():
            for level in _ancestors(item.namespace) if item.namespace else []:
                graph.groups[level] = level.rpartition(".")[0] or None
        page = to_html(graph, "random")
        boxes = [(float(x), float(y), float(x) + float(w), float(y) + float(h))
                 for x, y, w, h in re.findall(
                     r'<g class="namespace"><rect data-name="[^"]+" x="([\d.]+)" '
                     r'y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', page)]
        assert len(boxes) == len(graph.groups)
        for ra, rb in itertools.combinations(boxes, 2):
            assert not _overlap(list(ra), list(rb)) or _contains(list(ra), list(rb)) \
                or _contains(list(rb), list(ra)), (ra, rb)
        rects = [[i.x, i.y, i.x + i.width, i.y + 34.0] for i in graph.items.values()]
        for ra, rb in itertools.combinations(rects, 2):
            assert not _overlap(ra, rb), (ra, rb)
        for item in graph.items.values():  # each item inside the box of its namespace
            if item.namespace:
                index = sorted(graph.groups, key=lambda g: (g.count("."), g)).index(
                    item.namespace)
                assert _contains(list(boxes[index]), [item.x, item.y, item.x + item.width,
                                                      item.y + 34.0])
        paths = re.findall(r'<path d="(M[^"]+)" class="edge"', page)
        assert len(paths) == len(graph.edges)
        for d in paths:
            points = _path_points(d)
            for rect in rects:
                assert not any(rect[0] + 1 < x < rect[2] - 1 and rect[1] + 1 < y < rect[3] - 1
                               for x, y in points), (d, rect)
