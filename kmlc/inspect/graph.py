"""Plan stage, drawn: one pipeline and its datasets as Mermaid text or offline HTML.

``pipeline_graph`` reads the compiled pipeline (Kedro's own topological groups give
the layers) and the manifest's view of each dataset: persisted, memory, tracked in
MLflow, packed into the model, or a parameter. ``to_mermaid`` writes Mermaid for
READMEs and pull requests; ``to_html`` lays the graph out in layers and draws it as an
inline SVG in one HTML file that needs no network.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from kmlc.compiler.inference_plan import plan_from_spec
from kmlc.compiler.project import CompiledProject
from kmlc.config.params import is_param_input
from kmlc.config.spec import ProjectSpec
from kmlc.inspect.manifest import dataset_kind

__all__ = ["GraphItem", "PipelineGraph", "describe", "graph_title", "pipeline_graph", "to_html",
           "to_mermaid"]

# node colours by tag, dataset styles by kind (kept in step in Mermaid and SVG)
NODE_FILL = {"training": "#4e79a7", "inference": "#59a14f", "both": "#76b7b2",
             "other": "#9c755f"}
DATASET_STYLE = {  # fill, stroke, dash
    "persisted": ("#ffffff", "#444444", ""),
    "memory": ("#f4f4f4", "#999999", "5,4"),
    "tracked": ("#fde3c8", "#f28e2b", ""),
    "packed": ("#fff3b0", "#b8860b", ""),
    "parameter": ("#eeeeee", "#bbbbbb", "2,3"),
}
LEGEND = [("node: training", "training"), ("node: inference", "inference"),
          ("node: both", "both"), ("persisted dataset", "persisted"),
          ("memory dataset", "memory"), ("tracked in MLflow", "tracked"),
          ("packed into the model", "packed"), ("parameter", "parameter")]


@dataclass
class GraphItem:
    """A node (``kind`` is its tag colour) or a dataset (``kind`` is its style)."""

    id: str
    label: str
    is_node: bool
    kind: str
    rank: int
    namespace: str | None = None
    detail: str = ""
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0


@dataclass
class PipelineGraph:
    name: str
    items: dict[str, GraphItem] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)


def _node_kind(tags: set[str]) -> str:
    if {"training", "inference"} <= tags:
        return "both"
    for tag in ("training", "inference"):
        if tag in tags:
            return tag
    return "other"


def _dataset_kind(name: str, spec: ProjectSpec, packed: set[str]) -> str:
    kind = dataset_kind(name, spec)
    if name in packed:
        return "packed"
    ds = spec.datasets.get(name)
    if kind == "mlflow" or (ds is not None and ds.track_artifact):
        return "tracked"
    return kind


def pipeline_graph(compiled: CompiledProject, name: str = "__default__") -> PipelineGraph:
    """The graph of one pipeline: nodes and datasets, ranked in Kedro's order."""
    spec = compiled.spec
    pipeline = compiled.pipeline(name)
    packed = ({a.name for a in plan_from_spec(spec).artifacts}
              if spec.model is not None else set())
    graph = PipelineGraph(name)
    ranks: dict[str, int] = {}
    for index, group in enumerate(pipeline.grouped_nodes):
        for node in group:
            rank = 2 * index + 1
            graph.items[f"n:{node.name}"] = GraphItem(
                f"n:{node.name}", node.name, True, _node_kind(set(node.tags)), rank,
                node.namespace or (node.name.rpartition(".")[0] or None),
                spec.node(node.name).func if node.name in {n.name for n in spec.nodes} else "")
            for out in node.outputs:
                ranks[out] = rank + 1
    for node in pipeline.nodes:
        for data in node.inputs:
            graph.edges.append((f"d:{data}", f"n:{node.name}"))
            if data not in ranks or is_param_input(data):
                # free inputs start the picture; parameters sit just before their reader
                first = 0 if dataset_kind(data, spec) != "parameter" else (
                    graph.items[f"n:{node.name}"].rank - 1)
                ranks[data] = min(ranks.get(data, first), first)
        for data in node.outputs:
            graph.edges.append((f"n:{node.name}", f"d:{data}"))
    for data, rank in ranks.items():
        ds = spec.datasets.get(data)
        graph.items[f"d:{data}"] = GraphItem(
            f"d:{data}", data, False, _dataset_kind(data, spec, packed), rank,
            detail=ds.type if ds is not None else "")
    return graph


# --- Mermaid --------------------------------------------------------------------------

_SHAPES = {"persisted": ("[(", ")]"), "memory": ("([", "])"), "tracked": ("{{", "}}"),
           "packed": ("[[", "]]"), "parameter": (">", "]")}


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(graph: PipelineGraph) -> str:
    """Mermaid ``flowchart`` text: one class per node colour and dataset style."""
    ids: dict[str, str] = {}
    for i, key in enumerate(graph.items):
        ids[key] = f"{'n' if key.startswith('n:') else 'd'}{i}_" + re.sub(r"\W", "_", key[2:])
    lines = ["flowchart LR"]
    for kind, fill in NODE_FILL.items():
        lines.append(f"  classDef {kind} fill:{fill},stroke:#333,color:#fff")
    for kind, (fill, stroke, dash) in DATASET_STYLE.items():
        extra = f",stroke-dasharray:{dash.replace(',', ' ')}" if dash else ""
        lines.append(f"  classDef {kind} fill:{fill},stroke:{stroke},color:#222{extra}")
    groups: dict[str | None, list[GraphItem]] = {}
    for item in graph.items.values():
        groups.setdefault(item.namespace, []).append(item)
    for namespace, items in groups.items():
        indent = "  "
        if namespace:
            safe = re.sub(r"\W", "_", namespace)
            lines.append(f"  subgraph ns_{safe}[{_mermaid_label(namespace)}]")
            indent = "    "
        for item in items:
            if item.is_node:
                lines.append(f"{indent}{ids[item.id]}[{_mermaid_label(item.label)}]:::{item.kind}")
            else:
                left, right = _SHAPES[item.kind]
                lines.append(f"{indent}{ids[item.id]}{left}{_mermaid_label(item.label)}{right}"
                             f":::{item.kind}")
        if namespace:
            lines.append("  end")
    for source, target in graph.edges:
        lines.append(f"  {ids[source]} --> {ids[target]}")
    return "\n".join(lines) + "\n"


# --- HTML (a layered SVG) ---------------------------------------------------------------

_CHAR = 7.2  # px per character of the 12px monospace font
_HEIGHT = 34
_GAP_X = 60
_GAP_Y = 18
_MARGIN = 20
_LEGEND_H = 40


def _layout(graph: PipelineGraph) -> tuple[float, float]:
    columns: dict[int, list[GraphItem]] = {}
    for item in graph.items.values():
        item.width = max(60.0, len(item.label) * _CHAR + 24)
        columns.setdefault(item.rank, []).append(item)
    # order each column by the mean position of its predecessors (one sweep is enough
    # for pipelines of this size), keeping namespaces together
    preds: dict[str, list[str]] = {}
    for source, target in graph.edges:
        preds.setdefault(target, []).append(source)
    x = float(_MARGIN)
    height = 0.0
    for rank in sorted(columns):
        column = columns[rank]
        if rank:
            column.sort(key=lambda it: (it.namespace or "",
                                        sum(graph.items[p].y for p in preds.get(it.id, [])) /
                                        max(1, len(preds.get(it.id, [])))))
        width = max(it.width for it in column)
        y = float(_MARGIN + _LEGEND_H)
        for item in column:
            item.x = x + (width - item.width) / 2
            item.y = y
            y += _HEIGHT + _GAP_Y
        height = max(height, y)
        x += width + _GAP_X
    return x + _MARGIN - _GAP_X, height + _MARGIN


def _box(item: GraphItem) -> str:
    title = html.escape(f"{item.label}" + (f" ({item.detail})" if item.detail else ""))
    label = html.escape(item.label)
    cx = item.x + item.width / 2
    if item.is_node:
        shape = (f'<rect x="{item.x:.1f}" y="{item.y:.1f}" width="{item.width:.1f}" '
                 f'height="{_HEIGHT}" rx="4" fill="{NODE_FILL[item.kind]}" stroke="#333"/>')
        color = "#fff"
    else:
        fill, stroke, dash = DATASET_STYLE[item.kind]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        width = 3 if item.kind == "packed" else 1.5
        shape = (f'<rect x="{item.x:.1f}" y="{item.y:.1f}" width="{item.width:.1f}" '
                 f'height="{_HEIGHT}" rx="{_HEIGHT / 2}" fill="{fill}" stroke="{stroke}" '
                 f'stroke-width="{width}"{dash_attr}/>')
        color = "#222"
    kind = "node" if item.is_node else "dataset"
    return (f'<g class="{kind} {item.kind}" data-name="{label}"><title>{title}</title>{shape}'
            f'<text x="{cx:.1f}" y="{item.y + _HEIGHT / 2 + 4:.1f}" text-anchor="middle" '
            f'fill="{color}">{label}</text></g>')


def _legend() -> str:
    out, x = [], float(_MARGIN)
    for text, kind in LEGEND:
        if kind in NODE_FILL:
            fill, stroke, dash = NODE_FILL[kind], "#333", ""
        else:
            fill, stroke, dash = DATASET_STYLE[kind]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<rect x="{x:.1f}" y="{_MARGIN}" width="14" height="14" fill="{fill}" '
                   f'stroke="{stroke}"{dash_attr}/><text x="{x + 18:.1f}" y="{_MARGIN + 11}" '
                   f'class="legend">{html.escape(text)}</text>')
        x += 24 + len(text) * 6.2
    return "".join(out)


def _namespaces(graph: PipelineGraph) -> str:
    boxes: dict[str, list[GraphItem]] = {}
    for item in graph.items.values():
        if item.namespace:
            boxes.setdefault(item.namespace, []).append(item)
    out = []
    for namespace, items in sorted(boxes.items()):
        left = min(i.x for i in items) - 8
        top = min(i.y for i in items) - 18
        right = max(i.x + i.width for i in items) + 8
        bottom = max(i.y for i in items) + _HEIGHT + 8
        out.append(f'<g class="namespace"><rect x="{left:.1f}" y="{top:.1f}" '
                   f'width="{right - left:.1f}" height="{bottom - top:.1f}" fill="#8881" '
                   f'stroke="#888" stroke-dasharray="6,3"/><text x="{left + 4:.1f}" '
                   f'y="{top + 12:.1f}" class="legend">{html.escape(namespace)}</text></g>')
    return "".join(out)


def to_html(graph: PipelineGraph, title: str) -> str:
    """One self-contained HTML page: the pipeline as an inline SVG, no scripts, no network."""
    width, height = _layout(graph)
    edges = []
    for source, target in graph.edges:
        a, b = graph.items[source], graph.items[target]
        x1, y1 = a.x + a.width, a.y + _HEIGHT / 2
        x2, y2 = b.x, b.y + _HEIGHT / 2
        mid = (x1 + x2) / 2
        edges.append(f'<path d="M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} '
                     f'{x2 - 2:.1f},{y2:.1f}" class="edge" marker-end="url(#arrow)"/>')
    width = max(width, _MARGIN + sum(24 + len(t) * 6.2 for t, _ in LEGEND))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
           f'aria-label="{html.escape(title)}"><defs><marker id="arrow" viewBox="0 0 10 10" '
           'refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
           '<path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>'
           + _legend() + _namespaces(graph) + "".join(edges)
           + "".join(_box(item) for item in graph.items.values()) + "</svg>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:16px;background:#fff}"
            "svg text{font:12px monospace}svg text.legend{font:11px sans-serif;fill:#333}"
            ".edge{fill:none;stroke:#888;stroke-width:1.3}"
            "</style></head><body>"
            f"<h1 style=\"font-size:16px\">{html.escape(title)}</h1>\n{svg}\n</body></html>\n")


def graph_title(spec: ProjectSpec, graph: PipelineGraph) -> str:
    return f"{spec.name}: pipeline {graph.name}"


def describe(graph: PipelineGraph) -> dict[str, Any]:
    """Counts for a one-line summary."""
    nodes = sum(1 for i in graph.items.values() if i.is_node)
    return {"nodes": nodes, "datasets": len(graph.items) - nodes}
