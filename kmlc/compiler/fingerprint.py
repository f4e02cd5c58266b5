"""Compile stage: what a node's result depends on, as far as the file and the code tell.

``node_fingerprint`` is the one home of a node's static hash: its function's source and
its whole module file (local helpers the function calls live there), the parameter
values it reads, its input and output names and the configs of those datasets, and the
plan format. ``kmlc plan`` shows it per node; the run cache (``kmlc.cache``) adds the
content of the node's inputs to it. A secret's value is in neither as it is (see
``node_fingerprint``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import inspect
import json
import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kmlc.compiler.inference_plan import PLAN_VERSION
from kmlc.config.nodes import io_shape
from kmlc.config.params import ALL_PARAMS, PARAMS_PREFIX, param_inputs
from kmlc.config.spec import ProjectSpec

__all__ = ["FINGERPRINT_VERSION", "SECRET_KEY_FILE", "local_key", "node_fingerprint", "node_hash"]

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


def node_fingerprint(node: Any, spec: ProjectSpec, *, keyed: bool = False) -> str:
    """The static hash of a Kedro node of ``spec``'s compiled pipelines.

    A value computed from a secret (a parameter, a dataset argument) is never hashed as
    it is: a weak secret (a PIN) would be found by hashing every candidate. In the hash
    ``kmlc plan`` shows, it counts by its presence only; with ``keyed`` (the run cache,
    whose keys must change when the secret does) by its HMAC under the project's local
    key (``local_key``), which leaves the machine with neither the manifest nor the cache.
    """
    reads = param_inputs(tuple(node.inputs), spec.parameters)
    configs = {d: {"type": spec.datasets[d].type, **spec.datasets[d].config}
               if d in spec.datasets else None
               for d in (*node.inputs, *node.outputs) if d not in reads}
    if spec.secrets.paths:
        hide = _Hider(spec, keyed)
        reads = {name: hide(value, ("parameters",) if name == ALL_PARAMS
                            else ("parameters", *name[len(PARAMS_PREFIX):].split(".")))
                 for name, value in reads.items()}
        configs = {d: cfg if cfg is None else hide(cfg, ("datasets", d))
                   for d, cfg in configs.items()}
    return node_hash(node.func, reads, configs,
                     io_shape(getattr(node, "_inputs", node.inputs)),
                     io_shape(getattr(node, "_outputs", node.outputs)))


SECRET_KEY_FILE = Path(".kmlc") / "secret.key"


def local_key(root: Path) -> bytes:
    """The project's local key for hashing secrets (``.kmlc/secret.key``, made on first
    use, readable by its owner only); it never leaves the project folder."""
    path = root / SECRET_KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret.key.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
        with contextlib.suppress(FileExistsError):  # never replaces another run's key
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path.read_bytes()


class _Hider:
    """Replaces, in a value at a key path of the document, whatever is at a secret path."""

    def __init__(self, spec: ProjectSpec, keyed: bool):
        self.paths = {tuple(map(str, p)) for p in spec.secrets.paths}
        self.root = spec.root
        self.keyed = keyed
        self._key: bytes | None = None

    def __call__(self, value: Any, path: tuple[str, ...]) -> Any:
        path = tuple(map(str, path))
        if path in self.paths or any(path[:len(p)] == p for p in self.paths):
            return self._hidden(value)
        if not any(p[:len(path)] == path for p in self.paths):
            return value  # nothing secret below
        if isinstance(value, Mapping):
            return {k: self(v, (*path, str(k))) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v, (*path, str(i))) for i, v in enumerate(value)]
        return value

    def _hidden(self, value: Any) -> str:
        if not self.keyed:
            return "<secret>"
        if self._key is None:
            self._key = local_key(self.root)
        text = json.dumps(value, sort_keys=True, default=str)
        return "hmac:" + hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
