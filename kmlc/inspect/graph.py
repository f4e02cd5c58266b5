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
from graphlib import CycleError, TopologicalSorter
from itertools import pairwise
from typing import Any

from kmlc.compiler.inference_plan import plan_from_spec
from kmlc.compiler.project import CompiledProject
from kmlc.config.nodes import split_func
from kmlc.config.params import is_param_input
from kmlc.config.spec import ProjectSpec
from kmlc.inspect.manifest import dataset_kind

TRANSCODING = "@"  # Kedro's transcoding separator: x@pandas and x@spark are one dataset

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
    """A node (``kind`` is its tag colour) or a dataset (``kind`` is its style).

    ``name`` is Kedro's name (a transcoded dataset's without its ``@…`` suffix); ``label``
    is what the picture prints, as kedro-viz reads it: a node without its namespace and
    without the ``__<hash>`` Kedro gives an unnamed node, a dataset without the namespace of
    the box it is drawn in. ``namespace`` is that box (kedro-viz's modular pipeline).
    """

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
    name: str = ""
    layer: str | None = None


@dataclass
class PipelineGraph:
    """``groups``: each namespace (nested ones included) and the namespace holding it;
    ``layers``: the datasets' ``metadata.kedro-viz.layer`` values, in kedro-viz's order."""

    name: str
    items: dict[str, GraphItem] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    groups: dict[str, str | None] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)


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


def _base(name: str) -> str:
    """A dataset's name without Kedro's transcoding suffix (``x@pandas`` -> ``x``)."""
    return name.partition(TRANSCODING)[0]


def _layer(config: Any) -> str | None:
    meta = config.get("metadata") if isinstance(config, dict) else None
    viz = meta.get("kedro-viz") if isinstance(meta, dict) else None
    layer = viz.get("layer") if isinstance(viz, dict) else None
    return str(layer) if layer is not None else None


def _node_label(name: str, namespace: str | None, func: str) -> str:
    """kedro-viz's name for a node: no namespace, no hash Kedro added to an unnamed node."""
    short = name[len(namespace) + 1:] if namespace and name.startswith(namespace + ".") else name
    attr = split_func(func)[1].rpartition(".")[2] if func else ""
    if attr and re.fullmatch(rf"{re.escape(attr)}__[0-9a-f]{{8}}", short):
        return attr
    if re.fullmatch(r"lambda__[0-9a-f]{8}", short) and attr.endswith(short):
        return "<lambda>"  # Kedro's `<lambda>__hash`, copied by import-kedro
    return short


def _ancestors(namespace: str) -> list[str]:
    parts = namespace.split(".")
    return [".".join(parts[:i + 1]) for i in range(len(parts))]


def _common(namespaces: set[str]) -> str | None:
    """The innermost namespace holding all of ``namespaces``."""
    chains = [ns.split(".") for ns in namespaces]
    common: list[str] = []
    for parts in zip(*chains, strict=False):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    return ".".join(common) or None


def _dataset_groups(nodes: list[tuple[str, str | None, set[str], set[str]]],
                    params: set[str]) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """kedro-viz's modular-pipeline tree: each namespace's parent, and each dataset's box.

    A dataset belongs to the namespace whose nodes read or write it when it is not one of
    that namespace's inputs or outputs (its free inputs, and what it writes that nothing
    reads or that a node outside it reads); an input or output of a nested namespace
    belongs to the parent, unless it is the parent's too; parameters stay outside.
    """
    groups: dict[str, str | None] = {}
    for _, ns, _, _ in nodes:
        for level in _ancestors(ns) if ns else []:
            groups[level] = level.rpartition(".")[0] or None
    io: dict[str, set[str]] = {}
    for group in groups:
        inside = [n for n in nodes if n[1] and (n[1] == group or n[1].startswith(group + "."))]
        reads = set().union(*(n[2] for n in inside))
        writes = set().union(*(n[3] for n in inside))
        outside = [n for n in nodes if n not in inside]
        rest = set().union(*(n[2] for n in outside)) - set().union(*(n[3] for n in outside))
        io[group] = (reads - writes) | (writes - reads) | (rest & writes)
    claims: dict[str, set[str]] = {}
    for _, ns, reads, writes in nodes:
        if ns:
            for data in (reads | writes) - io[ns] - params:
                claims.setdefault(data, set()).add(ns)
    for group, parent in groups.items():
        if parent:
            for data in io[group] - io[parent] - params:
                claims.setdefault(data, set()).add(parent)
    return groups, {data: _common(owners) for data, owners in claims.items()}


def _sort_layers(graph: PipelineGraph) -> list[str]:
    """kedro-viz's order of layers: one before another when its data flows into the other's."""
    succ: dict[str, list[str]] = {}
    for source, target in graph.edges:
        succ.setdefault(source, []).append(target)
    below: dict[str, set[str]] = {}

    def reach(key: str) -> set[str]:
        if key not in below:
            below[key] = set()
            found = {graph.items[key].layer} - {None}
            for nxt in succ.get(key, []):
                found |= reach(nxt)
            below[key] = {str(layer) for layer in found}
        return below[key]

    deps: dict[str, set[str]] = {}
    for key in sorted(graph.items):
        layer = graph.items[key].layer
        if layer is not None:
            deps.setdefault(layer, set())
            for other in reach(key) - {layer}:
                deps.setdefault(other, set()).add(layer)
    try:
        order = list(TopologicalSorter({k: deps[k] for k in sorted(deps)}).static_order())
    except CycleError:  # kedro-viz shows no layers then
        return []
    return sorted(order, key=lambda layer: (order.index(layer), layer))


def pipeline_graph(compiled: CompiledProject, name: str = "__default__") -> PipelineGraph:
    """The graph of one pipeline: nodes and datasets, ranked in Kedro's order, nested in
    namespaces and labelled as kedro-viz reads the same pipeline."""
    spec = compiled.spec
    pipeline = compiled.pipeline(name)
    packed = ({a.name for a in plan_from_spec(spec).artifacts}
              if spec.model is not None else set())
    funcs = {n.name: n.func for n in spec.nodes}
    graph = PipelineGraph(name)
    ranks: dict[str, int] = {}
    raw: dict[str, list[str]] = {}  # each dataset drawn, and the catalog names it stands for
    for index, group in enumerate(pipeline.grouped_nodes):
        for node in group:
            rank = 2 * index + 1
            namespace = node.namespace or (node.name.rpartition(".")[0] or None)
            func = funcs.get(node.name, "")
            graph.items[f"n:{node.name}"] = GraphItem(
                f"n:{node.name}", _node_label(node.name, namespace, func), True,
                _node_kind(set(node.tags)), rank, namespace, func, name=node.name)
            for out in node.outputs:
                ranks.setdefault(_base(out), rank + 1)
    edges: dict[tuple[str, str], None] = {}
    shapes: list[tuple[str, str | None, set[str], set[str]]] = []
    for node in pipeline.nodes:
        for data in node.inputs:
            base = _base(data)
            raw.setdefault(base, []).append(data)
            edges[(f"d:{base}", f"n:{node.name}")] = None
            if base not in ranks or is_param_input(data):
                # free inputs start the picture; parameters sit just before their reader
                first = 0 if dataset_kind(data, spec) != "parameter" else (
                    graph.items[f"n:{node.name}"].rank - 1)
                ranks[base] = min(ranks.get(base, first), first)
        for data in node.outputs:
            raw.setdefault(_base(data), []).append(data)
            edges[(f"n:{node.name}", f"d:{_base(data)}")] = None
        shapes.append((node.name, graph.items[f"n:{node.name}"].namespace,
                       {_base(d) for d in node.inputs}, {_base(d) for d in node.outputs}))
    graph.edges = list(edges)
    params = {data for data in ranks if is_param_input(data)}
    graph.groups, boxes = _dataset_groups(shapes, params)
    for data, rank in ranks.items():
        names = list(dict.fromkeys(raw.get(data, [data])))
        entries = [spec.datasets[n] for n in names if n in spec.datasets]
        box = boxes.get(data)
        label = data[len(box) + 1:] if box and data.startswith(box + ".") else data
        graph.items[f"d:{data}"] = GraphItem(
            f"d:{data}", label, False, _dataset_kind(names[0], spec, packed), rank, box,
            detail=", ".join(dict.fromkeys(ds.type for ds in entries)), name=data,
            layer=next((layer for ds in entries if (layer := _layer(ds.config))), None))
    graph.layers = _sort_layers(graph)
    return graph


# --- Mermaid --------------------------------------------------------------------------

_SHAPES = {"persisted": ("[(", ")]"), "memory": ("([", "])"), "tracked": ("{{", "}}"),
           "packed": ("[[", "]]"), "parameter": (">", "]")}


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def _mermaid_text(item: GraphItem) -> str:
    """A node's Kedro name (what ``--nodes`` takes) less the hash of an unnamed node."""
    if item.is_node and not item.name.endswith(item.label):
        return item.name.rpartition("__")[0]
    return item.name or item.label


def to_mermaid(graph: PipelineGraph) -> str:
    """Mermaid ``flowchart`` text: one class per node colour and dataset style, one
    ``subgraph`` per namespace, nested as the namespaces are."""
    ids: dict[str, str] = {}
    for i, key in enumerate(graph.items):
        ids[key] = f"{'n' if key.startswith('n:') else 'd'}{i}_" + re.sub(r"\W", "_", key[2:])
    lines = ["flowchart LR"]
    for kind, fill in NODE_FILL.items():
        lines.append(f"  classDef {kind} fill:{fill},stroke:#333,color:#fff")
    for kind, (fill, stroke, dash) in DATASET_STYLE.items():
        extra = f",stroke-dasharray:{dash.replace(',', ' ')}" if dash else ""
        lines.append(f"  classDef {kind} fill:{fill},stroke:{stroke},color:#222{extra}")
    members: dict[str | None, list[GraphItem]] = {}
    for item in graph.items.values():
        members.setdefault(item.namespace, []).append(item)

    def block(namespace: str | None, depth: int) -> None:
        indent = "  " * depth
        if namespace:
            safe = re.sub(r"\W", "_", namespace)
            lines.append(f"{indent}subgraph ns_{safe}"
                         f"[{_mermaid_label(namespace.rpartition('.')[2])}]")
            indent += "  "
        for item in members.get(namespace, []):
            text = _mermaid_label(_mermaid_text(item))
            if item.is_node:
                lines.append(f"{indent}{ids[item.id]}[{text}]:::{item.kind}")
            else:
                left, right = _SHAPES[item.kind]
                lines.append(f"{indent}{ids[item.id]}{left}{text}{right}:::{item.kind}")
        for child in sorted(g for g, parent in graph.groups.items() if parent == namespace):
            block(child, depth + 1)
        if namespace:
            lines.append("  " * depth + "end")

    block(None, 1)
    for source, target in graph.edges:
        lines.append(f"  {ids[source]} --> {ids[target]}")
    return "\n".join(lines) + "\n"


# --- HTML (a layered SVG) ---------------------------------------------------------------
#
# Columns are Kedro's ranks, left to right. Each namespace is a block: its items and the
# blocks of the namespaces inside it, packed top-down (a child starts below whatever its
# columns already hold), so two boxes either nest or stand apart and no two items share
# a place. An edge crosses each column between its ends through a gap in that column, and
# bends only in the empty space between columns: it never passes behind an item.

_CHAR = 7.2  # px per character of the 12px monospace font
_HEIGHT = 34
_GAP_X = 44
_GAP_Y = 16
_MARGIN = 20
_LEGEND_H = 40
_PAD = 8  # a namespace box's margin around what it holds, per level of nesting
_TITLE = 18  # a namespace box's title line
_CLEAR = 5  # how far an edge keeps from an item it passes


@dataclass
class _Box:
    namespace: str
    depth: int
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0


@dataclass
class _Layout:
    width: float
    height: float
    boxes: list[_Box]
    column: dict[str, int]
    left: list[float]
    right: list[float]


def _depth(namespace: str | None) -> int:
    return namespace.count(".") + 1 if namespace else 0


def _layout(graph: PipelineGraph) -> _Layout:
    groups = graph.groups
    deepest = max((_depth(g) for g in groups), default=0)
    pad = {g: _PAD * (deepest - _depth(g) + 1) for g in groups}
    gap = _GAP_X + 2 * _PAD * deepest
    ranks = sorted({item.rank for item in graph.items.values()})
    column = {key: ranks.index(item.rank) for key, item in graph.items.items()}
    widths = [60.0] * len(ranks)
    for key, item in graph.items.items():
        item.width = max(60.0, len(item.label) * _CHAR + 24)
        widths[column[key]] = max(widths[column[key]], item.width)
    left, right, x = [], [], float(_MARGIN + _PAD * deepest)
    for width in widths:
        left.append(x)
        right.append(x + width)
        x += width + gap
    span: dict[str, tuple[int, int]] = {}
    for key, item in graph.items.items():
        for level in _ancestors(item.namespace) if item.namespace else []:
            c0, c1 = span.get(level, (column[key], column[key]))
            span[level] = (min(c0, column[key]), max(c1, column[key]))
    kids: dict[str | None, list[str]] = {}
    for key, item in graph.items.items():
        kids.setdefault(item.namespace, []).append(key)
    for group, parent in groups.items():
        kids.setdefault(parent, []).append(f"g:{group}")
    neighbours: dict[str, list[str]] = {}
    for source, target in graph.edges:
        neighbours.setdefault(source, []).append(target)
        neighbours.setdefault(target, []).append(source)
    order = {key: float(i) for i, key in enumerate(graph.items)}
    boxes: dict[str, _Box] = {g: _Box(g, _depth(g)) for g in groups}

    held: dict[str, list[str]] = {g: [] for g in groups}  # each box's items, nested ones too
    for key, item in graph.items.items():
        for level in _ancestors(item.namespace) if item.namespace else []:
            held[level].append(key)

    def members(kid: str) -> list[str]:
        return held[kid[2:]] if kid.startswith("g:") else [kid]

    def key_of(kid: str) -> tuple[float, int]:
        inside = set(members(kid))
        outside = [n for m in inside for n in neighbours.get(m, []) if n not in inside]
        spots = [order[n] for n in outside] or [order[m] for m in inside]
        first = column[kid] if not kid.startswith("g:") else span[kid[2:]][0]
        return sum(spots) / len(spots), first

    packed: dict[str | None, tuple[float, dict[str, float]]] = {}  # one pass's blocks

    def pack(group: str | None) -> tuple[float, dict[str, float]]:
        """The height of a group's block and the offsets of its children inside it."""
        if group in packed:
            return packed[group]
        top = float(_TITLE if group else 0)
        sky: dict[int, float] = {}
        offsets: dict[str, float] = {}
        sizes: dict[str, float] = {}
        for kid in kids.get(group, []):
            sizes[kid] = pack(kid[2:])[0] if kid.startswith("g:") else _HEIGHT
        for kid in sorted(kids.get(group, []), key=key_of):
            c0, c1 = span[kid[2:]] if kid.startswith("g:") else (column[kid], column[kid])
            y = max((sky.get(c, 0.0) for c in range(c0, c1 + 1)), default=0.0)
            offsets[kid] = top + y
            for c in range(c0, c1 + 1):
                sky[c] = y + sizes[kid] + _GAP_Y
        inner = max(sky.values(), default=_GAP_Y) - _GAP_Y
        packed[group] = (top + inner + (_PAD if group else 0), offsets)
        return packed[group]

    def place(group: str | None, y0: float) -> None:
        for kid, offset in pack(group)[1].items():
            if kid.startswith("g:"):
                box = boxes[kid[2:]]
                c0, c1 = span[kid[2:]]
                box.x = left[c0] - pad[kid[2:]]
                box.width = right[c1] + pad[kid[2:]] - box.x
                box.y = y0 + offset
                box.height = pack(kid[2:])[0]
                place(kid[2:], box.y)
            else:
                item = graph.items[kid]
                c = column[kid]
                item.x = left[c] + (right[c] - left[c] - item.width) / 2
                item.y = y0 + offset

    for _ in range(3):  # order each block by where its neighbours were drawn last time
        packed.clear()
        place(None, float(_MARGIN + _LEGEND_H))
        order = {key: item.y for key, item in graph.items.items()}
    height = max([it.y + _HEIGHT for it in graph.items.values()]
                 + [b.y + b.height for b in boxes.values()], default=0.0)
    return _Layout(x - gap + _MARGIN + _PAD * deepest, height + _MARGIN,
                   sorted(boxes.values(), key=lambda b: (b.depth, b.namespace)),
                   column, left, right)


def _free_y(blocked: list[tuple[float, float]], want: float) -> float:
    """The height nearest ``want`` where a line crosses a column without touching an item."""
    spans = sorted((a - _CLEAR, b + _CLEAR) for a, b in blocked)
    if all(not (a < want < b) for a, b in spans):
        return want
    spots = [a for a, _ in spans] + [b for _, b in spans]
    spots = [y for y in spots if all(not (a < y < b) for a, b in spans)]
    return min(spots, key=lambda y: abs(y - want))


def _edge_path(layout: _Layout, graph: PipelineGraph, source: str, target: str,
               blocked: dict[int, list[tuple[float, float]]]) -> str:
    a, b = graph.items[source], graph.items[target]
    ca, cb = layout.column[source], layout.column[target]
    y1, y2 = a.y + _HEIGHT / 2, b.y + _HEIGHT / 2
    points = [(a.x + a.width, layout.right[ca], y1)]  # (enter, leave, y) per column crossed
    for c in range(ca + 1, cb):
        want = y1 + (y2 - y1) * (c - ca) / (cb - ca)
        y = _free_y(blocked.get(c, []), want)
        points.append((layout.left[c], layout.right[c], y))
    points.append((min(layout.left[cb], b.x - 2), b.x - 2, y2))
    d = f"M{points[0][0]:.1f},{y1:.1f} H{points[0][1]:.1f}"
    for (_, leave, ya), (enter, out, yb) in pairwise(points):
        mid = (leave + enter) / 2
        d += f" C{mid:.1f},{ya:.1f} {mid:.1f},{yb:.1f} {enter:.1f},{yb:.1f}"
        if out - enter >= 1:  # (a zero-length last step would turn the arrow head)
            d += f" H{out:.1f}"
    return d


def _box(item: GraphItem) -> str:
    title = html.escape(f"{item.name or item.label}" + (f" ({item.detail})" if item.detail else "")
                        + (f" [layer: {item.layer}]" if item.layer else ""))
    label = html.escape(item.label)
    name = html.escape(item.name or item.label)
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
    layer = ""
    text_y = item.y + _HEIGHT / 2 + 4
    if item.layer:
        text_y -= 5
        layer = (f'<text x="{cx:.1f}" y="{item.y + _HEIGHT - 5:.1f}" text-anchor="middle" '
                 f'class="layer">{html.escape(item.layer)}</text>')
    layer_attr = f' data-layer="{html.escape(item.layer)}"' if item.layer else ""
    return (f'<g class="{kind} {item.kind}" data-name="{name}"{layer_attr}><title>{title}</title>'
            f'{shape}<text x="{cx:.1f}" y="{text_y:.1f}" text-anchor="middle" '
            f'fill="{color}">{label}</text>{layer}</g>')


def _legend(layers: list[str]) -> str:
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
    if layers:
        out.append(f'<text x="{x:.1f}" y="{_MARGIN + 11}" class="legend layers">layers: '
                   f'{html.escape(" → ".join(layers))}</text>')
    return "".join(out)


def _namespaces(layout: _Layout) -> str:
    out = []
    for box in layout.boxes:
        name = html.escape(box.namespace)
        out.append(f'<g class="namespace"><rect data-name="{name}" x="{box.x:.1f}" '
                   f'y="{box.y:.1f}" width="{box.width:.1f}" height="{box.height:.1f}" '
                   f'fill="#8881" stroke="#888" stroke-dasharray="6,3"/><text '
                   f'x="{box.x + 4:.1f}" y="{box.y + 12:.1f}" class="legend">'
                   f'{html.escape(box.namespace.rpartition(".")[2])}</text></g>')
    return "".join(out)


def to_html(graph: PipelineGraph, title: str) -> str:
    """One self-contained HTML page: the pipeline as an inline SVG, no scripts, no network.

    The SVG shrinks to the page's width, to half its size at most; a wider one pans in its
    frame: the page itself never scrolls sideways."""
    layout = _layout(graph)
    blocked: dict[int, list[tuple[float, float]]] = {}
    for key, item in graph.items.items():
        blocked.setdefault(layout.column[key], []).append((item.y, item.y + _HEIGHT))
    edges = [f'<path d="{_edge_path(layout, graph, source, target, blocked)}" class="edge" '
             'marker-end="url(#arrow)"/>' for source, target in graph.edges]
    legend_width = _MARGIN + sum(24 + len(t) * 6.2 for t, _ in LEGEND) + (
        (len(" → ".join(graph.layers)) + 8) * 6.2 if graph.layers else 0)
    width = max(layout.width, legend_width)
    height = layout.height
    # as wide as the page, shrinking down to half size; wider still, its frame pans
    svg = (f'<div class="frame"><svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
           f'height="{height:.0f}" style="min-width:{width / 2:.0f}px;max-width:{width:.0f}px" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
           f'aria-label="{html.escape(title)}"><defs><marker id="arrow" viewBox="0 0 10 10" '
           'refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
           '<path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>'
           + _legend(graph.layers) + _namespaces(layout) + "".join(edges)
           + "".join(_box(item) for item in graph.items.values()) + "</svg></div>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:16px;background:#fff}"
            ".frame{max-width:100%;overflow:auto}.frame svg{width:100%;height:auto}"
            "svg text{font:12px monospace}svg text.legend{font:11px sans-serif;fill:#333}"
            "svg text.layer{font:9px sans-serif;fill:#666}"
            ".edge{fill:none;stroke:#888;stroke-width:1.3}"
            "</style></head><body>"
            f"<h1 style=\"font-size:16px\">{html.escape(title)}</h1>\n{svg}\n</body></html>\n")


def graph_title(spec: ProjectSpec, graph: PipelineGraph) -> str:
    return f"{spec.name}: pipeline {graph.name}"


def describe(graph: PipelineGraph) -> dict[str, Any]:
    """Counts for a one-line summary."""
    nodes = sum(1 for i in graph.items.values() if i.is_node)
    return {"nodes": nodes, "datasets": len(graph.items) - nodes}
