"""Compile stage, model side: the inference pipeline as a small, explicit plan.

``plan_from_spec`` turns the nodes tagged ``inference`` into an ``InferencePlan``:
steps in execution order (function path, inputs, outputs), the artifacts training
persisted (with their Kedro dataset config, minus paths and credentials), and the
parameters inference reads, frozen. The plan is plain JSON: it is what the logged
model carries instead of pickled Kedro objects, and what ``kmlc.model.runtime`` executes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kmlc.config.inference import inference_graph
from kmlc.config.nodes import io_names, io_shape
from kmlc.config.params import param_inputs
from kmlc.config.shorthands import PLAN_DROPPED_KEYS
from kmlc.config.spec import ProjectSpec
from kmlc.errors import BindingError

__all__ = ["PLAN_ARTIFACT", "PLAN_FILE", "PLAN_VERSION", "ArtifactRef", "InferencePlan", "Step",
           "plan_from_spec"]

PLAN_VERSION = 2
COPY_MODES = ("deepcopy", "copy", "assign")
PLAN_FILE = "kmlc_plan.json"
# the artifact name the model runtime reads the plan under (kmlc/model/runtime.py keeps
# its own copy: it imports nothing of kmlc; a test checks the two agree)
PLAN_ARTIFACT = "kmlc_plan"


@dataclass(frozen=True)
class Step:
    """One node: ``func`` is ``module:function``; inputs/outputs keep their shape."""

    name: str
    func: str
    inputs: Any  # None | list[str] | dict[str, str]
    outputs: Any  # None | str | list[str] | dict[str, str]
    # the inputs handed to this step as a copy at each call: dataset -> Kedro copy mode
    copies: Mapping[str, str] = field(default_factory=dict)

    def input_names(self) -> list[str]:
        return list(io_names(self.inputs))

    def output_names(self) -> list[str]:
        return list(io_names(self.outputs))


@dataclass(frozen=True)
class ArtifactRef:
    """A training output packed into the model: its name and how to read it back."""

    name: str
    config: Mapping[str, Any]
    filename: str
    is_dir: bool = False
    produced: bool = True  # a training output (False: a persisted input training reads)


@dataclass(frozen=True)
class InferencePlan:
    input: str
    output: str
    steps: tuple[Step, ...]
    artifacts: tuple[ArtifactRef, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    modules: tuple[str, ...] = ()
    # `copy_mode` of the datasets inference reads, as the file sets them
    copy_modes: Mapping[str, str] = field(default_factory=dict)
    keys: tuple[str, ...] = ()  # model.keys: columns the predictions carry from the rows

    def with_mutations(self, mutated: Mapping[str, Mapping[str, str]]) -> InferencePlan:
        """This plan, each step copying the inputs it was seen to change (step -> name -> mode).

        A dataset whose ``copy_mode`` the file sets keeps it: the file has the last word.
        """
        steps = []
        for step in self.steps:
            copies = dict(step.copies)
            for name, mode in mutated.get(step.name, {}).items():
                if name not in self.copy_modes:
                    copies[name] = mode
            steps.append(replace(step, copies=copies))
        return replace(self, steps=tuple(steps))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kmlc_plan_version": PLAN_VERSION,
            "input": self.input,
            "output": self.output,
            "steps": [{"name": s.name, "func": s.func, "inputs": s.inputs,
                       "outputs": s.outputs, "copies": dict(s.copies)} for s in self.steps],
            "artifacts": [{"name": a.name, "config": dict(a.config), "filename": a.filename,
                           "is_dir": a.is_dir, "produced": a.produced}
                          for a in self.artifacts],
            "params": dict(self.params),
            "modules": list(self.modules),
            "copy_modes": dict(self.copy_modes),
            "keys": list(self.keys),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)


def plan_from_spec(spec: ProjectSpec) -> InferencePlan:
    """The inference plan of a project with a ``model:`` section."""
    if spec.model is None:
        raise BindingError("the project has no `model:` section", file=str(spec.path),
                           key_path=("model",), code="KMLC501")
    graph = inference_graph(spec.nodes, spec.model.input)
    if graph.cycle:
        raise BindingError("the inference nodes form a cycle", file=str(spec.path),
                           key_path=("nodes",), code="KMLC310")
    params = param_inputs(graph.free_inputs, spec.parameters)
    artifacts: list[ArtifactRef] = []
    for name in graph.needed:
        ds = spec.datasets[name]
        config = {k: v for k, v in ds.config.items() if k not in PLAN_DROPPED_KEYS}
        filepath = ds.filepath or name
        is_dir = "path" in ds.config and "filepath" not in ds.config
        artifacts.append(ArtifactRef(name, config, Path(filepath).name or name, is_dir,
                                     name in graph.training_outputs))
    modules = tuple(dict.fromkeys(n.module_name for n in graph.order))
    copy_modes = {name: ds.copy_mode for name, ds in spec.datasets.items()
                  if ds.copy_mode is not None and name in graph.inputs}
    # a single input is written as a list of one: the runtime passes inputs by position
    steps = tuple(Step(n.name, f"{n.module_name}:{n.function_name}",
                       [n.inputs] if isinstance(n.inputs, str) else io_shape(n.inputs),
                       io_shape(n.outputs), {name: copy_modes[name] for name in n.input_names
                                             if copy_modes.get(name, "assign") != "assign"})
                  for n in graph.order)
    output = graph.free_outputs[0] if graph.free_outputs else ""
    return InferencePlan(spec.model.input, output, steps, tuple(artifacts), params, modules,
                         copy_modes, spec.model.keys)
