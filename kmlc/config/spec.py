"""The typed, frozen project specification.

A ``ProjectSpec`` is built only from a document that passed the JSON Schema and the
semantic checks (see ``loader.py``); it is what the compiler reads. Each spec object
keeps its key path and position so that later stages can still point at the YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kmlc.config.nodes import NodeIO, io_names, pipeline_names, split_func
from kmlc.config.secrets import Secrets, redact_uri
from kmlc.config.shorthands import PATH_KEYS, dataset_path, shorthand

__all__ = [
    "PATH_KEYS",  # kmlc.model.build reads it here; its home is kmlc.config.shorthands
    "RUNNERS",
    "DatasetSpec",
    "ModelSpec",
    "NodeIO",
    "NodeSpec",
    "ParamsSpec",
    "PipelineSpec",
    "ProjectSpec",
    "PromoteSpec",
    "RunnerSpec",
    "SourceRef",
    "SweepParam",
    "SweepSpec",
    "TrackingSpec",
    "TrackingTarget",
    "pipeline_names",  # kmlc.cli reads it here; its home is kmlc.config.nodes
]

RUNNERS = ("sequential", "thread", "parallel", "dask")  # Kedro's runners + kmlc's Dask runner


@dataclass(frozen=True)
class SourceRef:
    """Where a spec object came from: file, position and key path."""

    file: str
    line: int
    column: int
    key_path: tuple[str | int, ...]


@dataclass(frozen=True)
class ParamsSpec:
    flatten: bool = False
    sep: str = "."
    long_values: Literal["fail", "tag", "truncate"] = "fail"


@dataclass(frozen=True)
class TrackingSpec:
    uri: str | None = None  # None: not in the file (``kmlc.config.target``)
    registry_uri: str | None = None
    experiment: str = ""
    run_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    params: ParamsSpec = field(default_factory=ParamsSpec)
    disable_for: tuple[str, ...] = ()
    ui_host: str = "127.0.0.1"
    ui_port: int = 5000
    http_max_retries: int | None = None
    http_timeout: int | None = None


@dataclass(frozen=True)
class TrackingTarget:
    """The resolved tracking and registry URIs, each with where it came from.

    ``source``: ``--tracking-uri``, ``tracking.uri``, ``MLFLOW_TRACKING_URI`` or
    ``default``; ``registry_source``: ``tracking.registry_uri``, ``MLFLOW_REGISTRY_URI``
    or None (``registry_uri`` is None: the registry is the tracking store). ``given`` and
    ``registry_given`` are the URIs as their source wrote them (``kmlc plan`` shows those:
    a manifest names no folder of this machine).
    """

    uri: str
    source: str
    given: str
    registry_uri: str | None = None
    registry_source: str | None = None
    registry_given: str | None = None
    # what the resolution read besides the file: --tracking-uri, the two variables and the
    # current folder; ``tracking_target`` reuses this value while they are unchanged
    read: tuple[str | None, ...] = field(default=(), compare=False, repr=False)

    def describe(self) -> str:
        """``URI (from SOURCE)``, credentials redacted, for a terminal."""
        text = f"{redact_uri(self.uri)} (from {self.source})"
        if self.registry_uri is not None:
            text += f"; registry {redact_uri(self.registry_uri)} (from {self.registry_source})"
        return text


@dataclass(frozen=True)
class DatasetSpec:
    """One catalog entry. ``config`` is the Kedro catalog config without kmlc keys."""

    name: str
    type: str
    config: Mapping[str, Any]
    track_artifact: bool = False
    artifact_path: str | None = None
    secret_keys: tuple[str, ...] = ()
    source: SourceRef | None = None
    pattern: str | None = None  # the dataset factory this entry was resolved from
    # how the logged model hands this value to the inference steps (Kedro's vocabulary);
    # None: copied only for the steps seen to change it
    copy_mode: Literal["deepcopy", "copy", "assign"] | None = None

    @property
    def is_factory(self) -> bool:
        """A Kedro dataset factory pattern (``"{name}_csv"``), not a dataset."""
        return "{" in self.name

    @property
    def is_mlflow(self) -> bool:
        """An ``mlflow.*`` dataset: its value lives in the MLflow run (``shorthands``)."""
        kind = shorthand(self.type)
        return kind is not None and kind.tracking

    @property
    def filepath(self) -> str | None:
        value = dataset_path(self.config)
        return str(value) if value is not None else None


@dataclass(frozen=True)
class NodeSpec:
    """One node. ``inputs``/``outputs`` keep their shape: None, str, list or mapping."""

    name: str
    func: str
    inputs: NodeIO
    outputs: NodeIO
    tags: tuple[str, ...] = ()
    source: SourceRef | None = None
    namespace: str | None = None
    pipeline: str | None = None  # the namespaced pipeline that made this copy
    template: str | None = None  # the node this one copies

    @property
    def base_name(self) -> str:
        """The name given to Kedro's ``node(name=...)``: without the node's namespace."""
        if self.namespace and self.pipeline is None:
            return self.name[len(self.namespace) + 1:]
        return self.name

    @property
    def input_names(self) -> tuple[str, ...]:
        return io_names(self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return io_names(self.outputs)

    @property
    def module_name(self) -> str:
        return split_func(self.func)[0]

    @property
    def function_name(self) -> str:
        return split_func(self.func)[1]


@dataclass(frozen=True)
class PipelineSpec:
    """A named pipeline; with ``namespace`` a modular pipeline (Kedro's ``pipeline(...)``)."""

    name: str
    tags: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    source: SourceRef | None = None
    namespace: str | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PromoteSpec:
    """``model.promote``: move ``alias`` only when ``when`` holds and the metric improves."""

    alias: str
    when: str | None = None
    metric: str | None = None  # better_than_current.metric
    mode: Literal["max", "min"] = "max"

    def to_dict(self) -> dict[str, Any]:
        return {"alias": self.alias, "when": self.when,
                "better_than_current": ({"metric": self.metric, "mode": self.mode}
                                        if self.metric else None)}


@dataclass(frozen=True)
class ModelSpec:
    input: str
    pipeline: str = "training"  # the bound training pipeline's name: its run logs the model
    artifact_path: str = "model"
    signature: Literal["auto", "none"] = "auto"
    input_example: bool = True
    registered_name: str | None = None
    alias: str | None = None
    pip_requirements: Literal["auto"] | tuple[str, ...] = "auto"
    extra_pip_requirements: tuple[str, ...] = ()  # added to pip_requirements'
    keys: tuple[str, ...] = ()  # input columns the predictions carry back (row keys)
    promote: PromoteSpec | None = None
    source: SourceRef | None = None


@dataclass(frozen=True)
class RunnerSpec:
    """``runner:``: how ``kmlc run`` runs the nodes (the command line overrides it)."""

    type: Literal["sequential", "thread", "parallel", "dask"] = "sequential"
    address: str | None = None
    workers: int | None = None


@dataclass(frozen=True)
class SweepParam:
    """One swept parameter: ``values`` to try, or a range ``low``..``high``."""

    path: str  # dotted, as ``params:`` reads it
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    type: Literal["int", "float"] = "float"
    candidate: str | None = None  # varied only in this candidate's trials
    source: SourceRef | None = None


@dataclass(frozen=True)
class SweepSpec:
    """``sweep:``: what ``kmlc sweep`` varies, how it searches and what it optimises."""

    metric: str
    direction: Literal["maximize", "minimize"]
    parameters: tuple[SweepParam, ...] = ()
    candidates: tuple[str, ...] = ()
    method: Literal["grid", "random", "optuna"] = "grid"
    trials: int | None = None
    seed: int | None = None
    parallel: int = 1
    fail_fast: bool = False
    pipeline: str | None = None
    source: SourceRef | None = None


@dataclass(frozen=True)
class ProjectSpec:
    """A validated ``mlproject.yml``."""

    path: Path
    name: str
    version: int
    code: tuple[Path, ...]
    tracking: TrackingSpec
    parameters: Mapping[str, Any]
    datasets: Mapping[str, DatasetSpec]
    nodes: tuple[NodeSpec, ...]
    pipelines: Mapping[str, PipelineSpec]
    model: ModelSpec | None = None
    hooks: tuple[str, ...] = ()
    env: str | None = None
    credentials: Mapping[str, Any] = field(default_factory=dict)
    secrets: Secrets = field(default_factory=Secrets)
    rendered_text: str = ""
    rendered_hash: str = ""
    runner: RunnerSpec = field(default_factory=RunnerSpec)
    logging: Mapping[str, Any] | str | None = None  # a dictConfig, or a file holding one
    cache: bool = False  # `kmlc run` skips nodes whose inputs, code and params did not change
    sweep: SweepSpec | None = None
    cache_memory_limit: int = 256 * 1024 * 1024  # bytes: the largest memory output it keeps
    templates: tuple[NodeSpec, ...] = ()  # `template: true`: copied by namespaces, never run
    # where the runs go, resolved once as the project loads (``kmlc.config.target``);
    # None: not resolved (a refused store: ``tracking_target`` raises the refusal)
    target: TrackingTarget | None = None
    tracking_uri_option: str | None = None  # the --tracking-uri it was loaded with

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every node namespace, outermost first, as ``kmlc run --namespace`` takes them."""
        found: dict[str, None] = {}
        for node in self.nodes:
            parts = (node.namespace or "").split(".")
            for i in range(1, len(parts) + 1):
                if parts[0]:
                    found.setdefault(".".join(parts[:i]))
        return tuple(found)

    @property
    def pipeline_names(self) -> tuple[str, ...]:
        return pipeline_names(self.pipelines, (tag for node in self.nodes for tag in node.tags))

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)
