"""What a Kedro user writes that kmlc spells differently: the message that says so.

``interpolation_problem`` finds Kedro's OmegaConf interpolation (``${folder}``,
``${globals:...}``, ``${oc.env:X}``) in a value and gives the kmlc template that does
the same; ``KEDRO_KEYS`` names the Kedro feature behind a key the schema does not know
and the kmlc way to get it. Both are used by the schema and checks stages, so a Kedro
form never meets a generic "unknown key" or "not valid here".
"""

from __future__ import annotations

import re

__all__ = ["KEDRO_KEYS", "interpolation_problem", "kedro_key_hint"]

_INTERPOLATION = re.compile(r"\$\{\s*([^}]*)\}")

# (section, key) -> (the Kedro feature, the kmlc way); section "" is the top level
KEDRO_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("", "catalog"): ("Kedro's catalog.yml", "declare the entries under `datasets:`"),
    ("", "globals"): ("Kedro's globals.yml",
                      "put the values under `parameters:` and write {{ params.KEY }}"),
    ("", "pipeline_registry"): ("Kedro's pipeline_registry.py",
                                "list named pipelines under `pipelines:`"),
    ("", "settings"): ("Kedro's settings.py", "hooks go under `hooks:`, logging under "
                       "`logging:`, the rest has no equivalent"),
    ("", "runtime_params"): ("Kedro's runtime parameters",
                             "pass `kmlc run --params KEY=VALUE`"),
    ("node", "confirms"): ("Kedro's node `confirms=` (dataset confirmation)",
                           "not supported: confirm in a hook's after_node_run"),
    ("node", "preview_fn"): ("Kedro-Viz's node `preview_fn=`", "not supported by kmlc"),
    ("pipeline", "prefix_datasets_with_namespace"): (
        "Kedro's pipeline(prefix_datasets_with_namespace=False)",
        "not supported: list the datasets to keep unprefixed in `inputs`/`outputs`"),
    ("pipeline", "pipe"): ("Kedro's pipeline(pipe, ...)",
                           "select the nodes to copy with `nodes: [...]` or `tags: [...]`"),
}


def kedro_key_hint(section: str, key: str) -> str | None:
    """``"<feature>: <kmlc way>"`` when ``key`` is a Kedro form kmlc spells otherwise."""
    found = KEDRO_KEYS.get((section, key))
    return f"{found[0]}: {found[1]}" if found else None


def _replacement(expr: str) -> str:
    resolver, sep, arg = expr.partition(":")
    if not sep:  # ${folder} or ${a.b}: another value of the same file
        return "{{ params." + expr.strip() + " }}"
    name, _, default = arg.partition(",")
    name, default = name.strip(), default.strip()
    if resolver.strip() == "oc.env":
        return "{{ env('" + name + "'" + (f", '{default}'" if default else "") + ") }}"
    if resolver.strip() == "globals":
        return "{{ params." + name + " }} (kmlc has no globals: put the value under `parameters:`)"
    if resolver.strip() == "runtime_params":
        return ("{{ params." + name + " }} with `kmlc run --params " + name + "=VALUE`")
    return ""


def interpolation_problem(value: str) -> tuple[str, str] | None:
    """``(message, hint)`` when ``value`` holds Kedro's ``${...}`` interpolation, else None."""
    match = _INTERPOLATION.search(value)
    if match is None:
        return None
    expr = match.group(1)
    instead = _replacement(expr)
    message = (f"'${{{expr}}}' is Kedro's OmegaConf interpolation, which kmlc does not "
               "resolve")
    hint = (f"write {instead}" if instead else
            "kmlc's templates: {{ params.KEY }}, {{ env('NAME', default) }}, {{ now() }}")
    return message, hint
