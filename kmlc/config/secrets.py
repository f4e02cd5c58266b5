"""Secrets: the values that must never be logged, stored in a model or printed.

The renderer collects them (``env('TOKEN', secret=true)``), the loader adds the values
of the credentials file and the password part of tracking and registry URIs
(``http://user:token@host``). ``Secrets.mask`` is the one rule every boundary applies
before it hands a value to something that keeps or shows it (MLflow params, tags and
run names, the logged ``mlproject.yml``, the model's plan, messages and errors); where
masking would make no sense (a name or a path), ``refusals`` has validate refuse the
secret instead.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:  # light at run time: the tracking worker imports this module
    from kmlc.config.source import Document, KeyPath
    from kmlc.errors import ConfigError

__all__ = ["MASK", "Secrets", "redact_uri", "refusals", "uri_secrets"]

MASK = "***"
# scheme://user:password@ — the whole userinfo goes (a user name alone is no secret)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s:'\"]*:[^/@\s'\"]*@")


def redact_uri(uri: str) -> str:
    """``uri`` (or any text holding URIs) without the ``user:password@`` part."""
    return _USERINFO.sub(rf"\g<scheme>{MASK}@", uri)


def uri_secrets(uri: str | None) -> set[str]:
    """The userinfo of ``uri`` with a password, as written and percent-decoded."""
    if not uri or "@" not in uri:
        return set()
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return set()
    if not password:
        return set()
    userinfo = parts.netloc.rpartition("@")[0]
    return {value for value in (userinfo, unquote(userinfo), password, unquote(password))
            if value}


class Secrets:
    """A set of secret values; iterating gives them longest first (the masking order).

    ``paths``: the key paths of the document whose values are secret, or computed from
    one (``RenderResult.secret_paths``). A value too short to be masked as text (``{{
    env('PIN', secret=true) | length }}``) is still masked where it is shown by its key:
    the logged file, the manifest, the parameters logged to MLflow.
    """

    def __init__(self, values: Iterable[str] = (), paths: Iterable[KeyPath] = ()):
        self._values = tuple(sorted({str(v) for v in values if v not in (None, "")},
                                    key=lambda v: (-len(v), v)))
        self.paths: tuple[KeyPath, ...] = tuple(dict.fromkeys(tuple(p) for p in paths))

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secrets):
            return self._values == other._values
        if isinstance(other, tuple | list | set | frozenset):
            return set(self._values) == set(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"Secrets({len(self._values)} values)"

    def __or__(self, other: Iterable[str]) -> Secrets:
        return Secrets([*self._values, *other],
                       [*self.paths, *(other.paths if isinstance(other, Secrets) else ())])

    def param_is_secret(self, dotted: str, sep: str = ".") -> bool:
        """Whether the parameter ``dotted`` (``a.b``; ``parameters``: all of them) is, or
        holds, or is part of a secret value."""
        if dotted == "parameters":
            return any(p[:1] == ("parameters",) for p in self.paths)
        parts = tuple(dotted.split(sep))
        for path in self.paths:
            if path[:1] != ("parameters",):
                continue
            secret = tuple(str(p) for p in path[1:])
            if secret[:len(parts)] == parts or parts[:len(secret)] == secret:
                return True
        return False

    def mask_value(self, value: Any) -> Any:
        """A value computed from a secret: its text masked where it holds a secret's text
        (``http://u:***@host`` stays readable), else ``***`` whole (``pin: 4821``,
        ``size: 18``)."""
        if isinstance(value, str):
            masked = self.mask(value)
            if masked != value:
                return masked
        return MASK

    def mask_document(self, data: Any) -> Any:
        """``data``, a rendered document, with the value at every secret path masked
        (``mask_value``) and every other value masked as text (``mask_data``)."""
        def walk(value: Any, path: tuple[Any, ...]) -> Any:
            if path in secret_paths:
                return self.mask_value(value)
            if isinstance(value, Mapping):
                return {k: walk(v, (*path, k)) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v, (*path, i)) for i, v in enumerate(value)]
            return value

        secret_paths = set(self.paths)
        return self.mask_data(walk(data, ()) if secret_paths else data)

    def found_in(self, text: str) -> bool:
        """Whether ``text`` holds a secret (or a URI password)."""
        return any(value in text for value in self._values) or redact_uri(text) != text

    def mask(self, text: str) -> str:
        """``text`` with every secret and URI password replaced by ``***``."""
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return redact_uri(text)

    def mask_data(self, value: Any) -> Any:
        """``value`` with every string in it (keys too) masked, and every number whose
        text holds a secret (``pin: 987654321987``) replaced by ``***``; other leaves kept."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = str(value)
            return MASK if self.mask(text) != text else value
        if isinstance(value, Mapping):
            return {self.mask_data(k): self.mask_data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.mask_data(v) for v in value)
        return value

    @contextlib.contextmanager
    def masked_logs(self) -> Iterator[None]:
        """Mask every log record created inside the block (its rendered message)."""
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            with contextlib.suppress(Exception):  # a broken record is logging's to report
                message = record.getMessage()
                masked = self.mask(message)
                if masked != message:
                    record.msg, record.args = masked, None
            return record

        logging.setLogRecordFactory(factory)
        try:
            yield
        finally:
            logging.setLogRecordFactory(previous)


# ---------------------------------------------------------------- where a secret may go

_HINT = ("secrets may go where kmlc masks them: parameters inference does not read, "
         "tracking tags, run_name and URIs, dataset arguments; or in the credentials file")
_MASKED_TRACKING = ("run_name", "uri", "registry_uri")
# dataset keys that name, place or wire a dataset: stored and shown as they are
_DATASET_PLAIN = ("type", "filepath", "path", "track", "credentials", "flavor", "artifact_path",
                  "key", "prefix", "run_id", "model_uri", "versioned", "allow_outside")
_NAMES: dict[tuple[str, ...], str] = {
    ("name",): "the project's name is the default MLflow experiment name",
    ("tracking", "experiment"): "the MLflow experiment name",
    ("model", "registered_name"): "the registered model's name",
    ("model", "alias"): "the registered model's alias",
    ("model", "artifact_path"): "the model's artifact path in the run",
}


def refusals(doc: Document, paths: Iterable[KeyPath],
             nodes: Sequence[Any] | None = None) -> list[ConfigError]:
    """A located error for each secret-holding value that cannot be masked.

    ``nodes``: every node the project runs (``nodes.expand_nodes``: namespaced copies
    included), once the document has passed the schema; else the nodes as written.
    """
    from kmlc.config.spec import PLAN_DROPPED_KEYS  # spec imports this module

    packed_params, packed_datasets = _packed(doc.data, nodes)
    datasets = doc.data.get("datasets") if isinstance(doc.data, dict) else None
    logged = {name for name, cfg in (datasets if isinstance(datasets, dict) else {}).items()
              if isinstance(cfg, dict) and cfg.get("type") == "mlflow.model"}
    errors = []
    for path in paths:
        why = _why_not(path, packed_params, packed_datasets, PLAN_DROPPED_KEYS, logged)
        if why is not None:
            errors.append(doc.error(f"a secret cannot be used here: {why}", path,
                                    code="KMLC115", hint=_HINT))
    return errors


def _why_not(path: KeyPath, packed_params: set[str] | None, packed_datasets: set[str],
             dropped: tuple[str, ...], logged: set[str]) -> str | None:
    named = _NAMES.get(tuple(map(str, path[:2]))) or _NAMES.get((str(path[0]),))
    if named:
        return f"{named} is stored and shown in clear"
    if path[0] == "parameters":
        dotted = ".".join(str(p) for p in path[1:])
        if packed_params is None or any(
                dotted == p or dotted.startswith(p + ".") or p.startswith(dotted + ".")
                for p in packed_params):
            return ("inference reads this parameter, and the model carries what inference "
                    "reads in clear")
        return None
    if path[0] == "tracking" and ((len(path) == 3 and path[1] == "tags")
                                  or (len(path) == 2 and path[1] in _MASKED_TRACKING)):
        return None
    if path[0] == "datasets" and len(path) >= 3:
        name, key = str(path[1]), str(path[2])
        if key in _DATASET_PLAIN:
            return f"datasets.{name}.{key} names, places or wires the dataset, in clear"
        if name in logged and key == "save_args":
            return f"the save_args of '{name}' are logged with its model, in clear"
        if name in packed_datasets and key not in dropped:
            return f"'{name}' is packed into a model, which carries its {key} in clear"
        return None
    return "names, paths and the pipeline's wiring are stored and shown in clear"


def _packed(data: Any, expanded: Sequence[Any] | None = None
            ) -> tuple[set[str] | None, set[str]]:
    """The parameters (dotted; ``None``: all of them) and datasets the model carries
    (with their config but the keys the plan drops, such as ``save_args``)."""
    from kmlc.config.inference import inference_graph  # it imports spec, which imports us
    from kmlc.config.nodes import tag_list
    from kmlc.config.params import ALL_PARAMS, PARAMS_PREFIX

    model = data.get("model") if isinstance(data, dict) else None
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(model, dict) or not isinstance(nodes, list):
        return set(), set()
    # the document has not passed the schema yet: read only what is well formed
    model_input = model.get("input")
    if expanded is not None:
        graph_nodes = [_RawNode(n.name, n.inputs, n.outputs, tuple(n.tags)) for n in expanded]
    else:
        graph_nodes = [_RawNode(f"nodes[{i}]", n.get("inputs"), n.get("outputs"),
                                tag_list(n["tags"]))
                       for i, n in enumerate(nodes) if isinstance(n, dict)
                       and isinstance(n.get("tags"), (str, list))]
    graph = inference_graph(graph_nodes, model_input if isinstance(model_input, str) else None)
    free = graph.free_inputs
    params: set[str] | None = {n[len(PARAMS_PREFIX):] for n in free if n.startswith(PARAMS_PREFIX)}
    if ALL_PARAMS in free:
        params = None
    return params, set(graph.needed)


class _RawNode(NamedTuple):
    """A node of the document as the inference graph reads it."""

    name: str
    inputs: Any
    outputs: Any
    tags: tuple[str, ...]
