"""The two reference pages of the documentation, made from their sources of truth.

- ``reference/mlproject.md``: every key of ``mlproject.yml``, read from the JSON Schema
  (``schemas/mlproject.schema.json``): its description, type, default, whether it is
  required, and an example taken from the schema's ``examples`` or else from a file the
  tests validate (the README's tour, the project of ``kmlc init``,
  ``examples/*/mlproject.yml``).
- ``reference/cli.md``: every command, argument and option of ``kmlc``, read from click
  (``kmlc.cli.main``).

It is a MkDocs hook (``hooks:`` in mkdocs.yml): the pages are made at every build and
never committed, so they cannot go stale. ``python docs/gen_reference.py OUT_DIR`` writes
them to OUT_DIR to read them without a build.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import yaml

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "schemas" / "mlproject.schema.json"
MLFLOW_TYPES_NOTE = "when `type` is"


def _resolve(schema: dict[str, Any], node: Any) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}  # a boolean schema (`true`): anything
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def _type(schema: dict[str, Any], node: dict[str, Any]) -> str:
    """A short, readable type: ``string``, ``list of string``, ``mapping of name to X``."""
    node = _resolve(schema, node)
    if "const" in node:
        return f"the value `{json.dumps(node['const'])}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    for key in ("oneOf", "anyOf"):
        if key in node:
            return " or ".join(dict.fromkeys(_type(schema, alt) for alt in node[key]))
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        items = node.get("items")
        return f"list of {_type(schema, items)}" if isinstance(items, dict) else "list"
    if kind == "object":
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and not node.get("properties"):
            return f"mapping of name to {_type(schema, extra)}"
        return "mapping"
    return kind or "any"


def _condition(branch: dict[str, Any]) -> str:
    """``when `type` is `mlflow.metric` `` from an ``if`` of the dataset definition."""
    type_rule = branch.get("properties", {}).get("type", {})
    if "const" in type_rule:
        return f"{MLFLOW_TYPES_NOTE} `{type_rule['const']}`"
    excluded = type_rule.get("not", {}).get("enum")
    if excluded:
        return f"{MLFLOW_TYPES_NOTE} a Kedro dataset type (not `mlflow.*`)"
    return "under a condition of the schema"


def _entries(schema: dict[str, Any], node: dict[str, Any], path: str, required: bool,
             when: str = "") -> Iterator[dict[str, Any]]:
    """Every key under ``node``, depth first, in the schema's order."""
    node = _resolve(schema, node)
    yield {"path": path, "node": node, "required": required, "when": when}
    yield from _children(schema, node, path, when)


def _children(schema: dict[str, Any], node: dict[str, Any], path: str,
              when: str) -> Iterator[dict[str, Any]]:
    needed = set(node.get("required", ()))
    for name, child in node.get("properties", {}).items():
        yield from _entries(schema, child, f"{path}.{name}" if path else name, name in needed,
                            when)
    for branch in node.get("allOf", ()):
        then = branch.get("then")
        if isinstance(then, dict):
            yield from _children(schema, then, path, _condition(branch.get("if", {})))
    items = node.get("items")
    if isinstance(items, dict) and _resolve(schema, items).get("properties"):
        yield from _children(schema, _resolve(schema, items), f"{path}[]", when)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and (_resolve(schema, extra).get("properties")
                                    or _resolve(schema, extra).get("allOf")
                                    or _resolve(schema, extra).get("oneOf")):
        yield from _children(schema, _resolve(schema, extra), f"{path}.<name>", when)
    for alternative in node.get("oneOf", ()):
        alternative = _resolve(schema, alternative)
        if alternative.get("properties"):
            yield from _children(schema, alternative, path, when)


def _merged(entries: Iterator[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One entry per key path. A dataset key that several ``type`` branches allow is one
    entry naming the types it applies to (none when it applies to every type), with one
    description per branch where the branches describe it differently."""
    merged: dict[str, dict[str, Any]] = {}
    whens: dict[str, list[str]] = {}
    texts: dict[str, dict[str, str]] = {}
    for entry in entries:
        path = entry["path"]
        seen = merged.get(path)
        node = {**(seen["node"] if seen else {}), **entry["node"]}
        if seen and "description" in seen["node"]:
            node["description"] = seen["node"]["description"]
        merged[path] = {**entry, "node": node}
        whens.setdefault(path, []).append(entry["when"])
        if entry["node"].get("description"):
            texts.setdefault(path, {})[entry["when"]] = entry["node"]["description"]
    branches: dict[str, set[str]] = {}
    for path, conditions in whens.items():
        branches.setdefault(path.rpartition(".")[0], set()).update(conditions)
    for path, conditions in whens.items():
        every = branches[path.rpartition(".")[0]] - {""}
        always = "" in conditions or set(conditions) >= every
        merged[path]["when"] = "" if always else f"{MLFLOW_TYPES_NOTE} " + _types(conditions)
        by_text: dict[str, list[str]] = {}
        for when, text in texts.get(path, {}).items():
            by_text.setdefault(text, []).append(when)
        if len(by_text) > 1:
            merged[path]["node"]["description"] = "\n".join(
                f"- When `type` is {_types(conditions)}: {text}"
                for text, conditions in by_text.items())
    return merged


def _types(conditions: list[str]) -> str:
    return ", ".join(w.partition("`type` is ")[2] for w in dict.fromkeys(conditions))


def _example_documents() -> list[tuple[str, Any]]:
    """The files the tests validate, as parsed YAML: the README's tour, then the examples."""
    documents: list[tuple[str, Any]] = []
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    tour = readme[readme.find("## A tour of `mlproject.yml`"):]
    block = re.search(r"```yaml\n(.*?)```", tour, re.S)
    if block:
        documents.append(("the README's tour", yaml.safe_load(block.group(1))))
    from kmlc.scaffold import project_files

    documents.append(("the project `kmlc init` writes",
                      yaml.safe_load(project_files("demo")["mlproject.yml"])))
    for path in sorted((REPO / "examples").glob("*/mlproject.yml")):
        documents.append((str(path.relative_to(REPO)), yaml.safe_load(path.read_text("utf-8"))))
    return documents


def _find(document: Any, parts: list[str]) -> Iterator[Any]:
    if not parts:
        yield document
        return
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        value = document.get(head[:-2]) if isinstance(document, dict) else None
        for item in value if isinstance(value, list) else ():
            yield from _find(item, rest)
    elif head == "<name>":
        for value in document.values() if isinstance(document, dict) else ():
            yield from _find(value, rest)
    elif isinstance(document, dict) and head in document:
        yield from _find(document[head], rest)


def _example(entry: dict[str, Any], documents: list[tuple[str, Any]]) -> str | None:
    node, path = entry["node"], entry["path"]
    key = path.rpartition(".")[2].removesuffix("[]")
    if node.get("examples"):
        return _yaml(key, node["examples"][0])
    parts = path.replace("[]", "[]\0").replace(".", "\0").split("\0")
    parts = [p for p in parts if p]
    const = entry["when"].partition("`type` is `")[2].rstrip("`")
    for source, document in documents:
        for value in _find(document, parts[:-1]):
            if not isinstance(value, dict) or parts[-1] not in value:
                continue
            if const and value.get("type") != const:
                continue
            if "default" in node and value[parts[-1]] == node["default"]:
                continue
            return f"{_yaml(parts[-1].removesuffix('[]'), value[parts[-1]])} ({source})"
    return None


def _yaml(key: str, value: Any) -> str:
    text = yaml.safe_dump({key: value}, default_flow_style=True, sort_keys=False,
                          width=10_000).strip()
    return f"`{text[1:-1]}`"


def schema_reference(schema: dict[str, Any] | None = None) -> str:
    """The page of every key of mlproject.yml."""
    schema = schema or json.loads(SCHEMA.read_text(encoding="utf-8"))
    documents = _example_documents()
    lines = ["# mlproject.yml reference", "",
             "Generated at each build from the JSON Schema kmlc validates with "
             "(`kmlc schema` prints it). `<name>` stands for a name you choose, `[]` for "
             "each item of a list. Examples come from the schema or from files the test "
             "suite validates.", ""]
    entries = _merged(_entries(schema, schema, "", False))
    parents = {path.rpartition(".")[0].removesuffix("[]") for path in entries}
    for path, entry in entries.items():
        node = entry["node"]
        if not path:
            continue
        lines += [f"## `{path}`", ""]
        description = node.get("description")
        lines += [description if description else "*(no description in the schema)*", ""]
        facts = [f"- **type**: {_type(schema, node)}"]
        if entry["required"]:
            facts.append("- **required**")
        if "default" in node:
            facts.append(f"- **default**: `{json.dumps(node['default'])}`")
        if entry["when"]:
            facts.append(f"- **applies** {entry['when']}")
        # a mapping or list of keys gets its examples at its keys
        example = None if path in parents else _example(entry, documents)
        if example:
            facts.append(f"- **example**: {example}")
        lines += [*facts, ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def cli_reference(group: click.Group | None = None) -> str:
    """The page of every command and option of kmlc."""
    if group is None:
        from kmlc.cli import main as group
    lines = ["# Command reference", "",
             "Generated at each build from the command line itself (`kmlc COMMAND --help` "
             "prints the same).", ""]
    root = click.Context(group, info_name="kmlc")
    for name in sorted(group.commands):
        command = group.commands[name]
        ctx = click.Context(command, info_name=name, parent=root)
        usage = " ".join(command.collect_usage_pieces(ctx))
        lines += [f"## kmlc {name}", "", "```text", f"kmlc {name} {usage}".rstrip(), "```", ""]
        lines += [command.help.strip() if command.help else "", ""]
        arguments = [p for p in command.params if isinstance(p, click.Argument)]
        options = [p for p in command.params if isinstance(p, click.Option)]
        if arguments:
            lines += ["| argument | required | default |", "| --- | --- | --- |"]
            for param in arguments:
                value = None if param.required else param.get_default(ctx, call=False)
                default = f"`{value}`" if isinstance(value, str | int | float) else ""
                lines.append(f"| `{param.human_readable_name}` | "
                             f"{'yes' if param.required else 'no'} | {default} |")
            lines.append("")
        lines += ["| option | what it does |", "| --- | --- |"]
        for param in [*options, command.get_help_option(ctx)]:
            if param is None:
                continue
            record = param.get_help_record(ctx)
            if record:
                lines.append(f"| `{_cell(record[0])}` | {_cell(record[1])} |")
        lines.append("")
    return "\n".join(lines)


def pages() -> dict[str, str]:
    return {"reference/mlproject.md": schema_reference(), "reference/cli.md": cli_reference()}


def on_files(files: Any, config: Any) -> Any:
    """MkDocs hook: add the generated pages to the build."""
    from mkdocs.structure.files import File

    for uri, text in pages().items():
        files.append(File.generated(config, uri, content=text))
    return files


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "reference-pages")
    for uri, text in pages().items():
        (out / uri).parent.mkdir(parents=True, exist_ok=True)
        (out / uri).write_text(text, encoding="utf-8")
        print(out / uri)
