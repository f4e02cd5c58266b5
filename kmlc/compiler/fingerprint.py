"""Compile stage: what a node's result depends on, as far as the file and the code tell.

``node_fingerprint`` is the one home of a node's static hash: its function's source and
its whole module file (local helpers the function calls live there), the parameter
values it reads, its input and output names and the configs of those datasets, and the
plan format. ``kmlc plan`` shows it per node; the run cache (``kmlc.cache``) adds the
content of the node's inputs to it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from kmlc.compiler.plan import PLAN_VERSION
from kmlc.config.params import param_inputs
from kmlc.config.spec import ProjectSpec, io_shape

__all__ = ["FINGERPRINT_VERSION", "node_fingerprint", "node_hash"]

FINGERPRINT_VERSION = 1


def _source(func: Callable[..., Any]) -> tuple[str, str]:
    """The function's own source and its whole module file (empty where unknown).

    The module is read from its file, as the next fresh process would import it.
    """
    static = getattr(func, "kmlc_source", None)  # read from the source, never imported
    if static is not None:
        return static
    target = inspect.unwrap(func)
    try:
        own = inspect.getsource(target)
    except (OSError, TypeError):
        own = getattr(target, "__qualname__", repr(target))
    module = sys.modules.get(getattr(target, "__module__", "") or "")
    whole = ""
    if module is not None:
        try:
            file = inspect.getsourcefile(module)
            if file:
                with open(file, encoding="utf-8", errors="replace") as handle:
                    whole = handle.read()
        except (OSError, TypeError):
            whole = ""
    return own, whole


def node_hash(func: Callable[..., Any], params: Mapping[str, Any],
              datasets: Mapping[str, Any], inputs: Any = None, outputs: Any = None) -> str:
    """sha256 of the function's and its module's source, the parameter values, the
    dataset configs and the shapes of the inputs and outputs (which argument gets what)."""
    own, module = _source(func)
    payload = {"function": own, "module": module, "params": params, "datasets": datasets,
               "inputs": inputs, "outputs": outputs,
               "fingerprint_version": FINGERPRINT_VERSION, "plan_version": PLAN_VERSION}
    text = json.dumps(payload, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def node_fingerprint(node: Any, spec: ProjectSpec) -> str:
    """The static hash of a Kedro node of ``spec``'s compiled pipelines."""
    reads = param_inputs(tuple(node.inputs), spec.parameters)
    configs = {d: {"type": spec.datasets[d].type, **spec.datasets[d].config}
               if d in spec.datasets else None
               for d in (*node.inputs, *node.outputs) if d not in reads}
    return node_hash(node.func, reads, configs,
                     io_shape(getattr(node, "_inputs", node.inputs)),
                     io_shape(getattr(node, "_outputs", node.outputs)))
