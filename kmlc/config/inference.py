"""The inference graph: the nodes tagged ``inference`` and what they need from training.

One computation for the two places that need it: the checks (on the expanded nodes of
the document, at validate, turning each finding into a located error) and the compiler's
inference plan (on the spec's nodes). Both hand their nodes as they are: anything with
``name``, ``inputs``, ``outputs`` (in Kedro's forms) and ``tags`` will do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from kmlc.config.nodes import io_names
from kmlc.config.params import is_param_input

__all__ = ["GraphNode", "InferenceGraph", "inference_graph"]


class GraphNode(Protocol):
    """A node as the graph reads it (``NodeDef`` of the checks, ``NodeSpec`` of the spec)."""

    @property
    def name(self) -> str: ...

    @property
    def inputs(self) -> Any: ...

    @property
    def outputs(self) -> Any: ...

    @property
    def tags(self) -> tuple[str, ...]: ...


N = TypeVar("N", bound=GraphNode)


@dataclass(frozen=True)
class InferenceGraph(Generic[N]):
    """The inference subgraph of a project's nodes, with the training side it relies on."""

    nodes: tuple[N, ...]  # the inference nodes, in the file's order
    order: tuple[N, ...]  # the same in execution order (the file's where the graph allows)
    cycle: bool  # the inference nodes form a cycle: ``order`` stops before it
    has_training: bool
    inputs: frozenset[str]  # every input of the inference nodes
    outputs: frozenset[str]  # every output of the inference nodes
    training_inputs: frozenset[str]
    training_outputs: frozenset[str]
    free_inputs: tuple[str, ...]  # sorted: read, not produced by inference, not model.input
    free_outputs: tuple[str, ...]  # sorted: produced, read by no inference node

    @property
    def needed(self) -> tuple[str, ...]:
        """The free inputs that are datasets (not parameters): the model must carry them."""
        return tuple(name for name in self.free_inputs if not is_param_input(name))

    def readers(self, name: str) -> list[N]:
        """The inference nodes reading ``name``, in the file's order."""
        return [n for n in self.nodes if name in io_names(n.inputs)]


def inference_graph(nodes: Sequence[N], model_input: str | None) -> InferenceGraph[N]:
    """The inference graph of ``nodes`` (all of the project's), fed ``model_input``."""
    inference = [n for n in nodes if "inference" in n.tags]
    training = [n for n in nodes if "training" in n.tags]
    producers = {out: n.name for n in inference for out in io_names(n.outputs)}
    deps = {n.name: {producers[i] for i in io_names(n.inputs) if i in producers}
            for n in inference}
    order: list[N] = []
    placed: set[str] = set()
    while len(order) < len(inference):
        ready = next((n for n in inference if n.name not in placed and deps[n.name] <= placed),
                     None)
        if ready is None:
            break
        order.append(ready)
        placed.add(ready.name)
    inputs = frozenset(i for n in inference for i in io_names(n.inputs))
    outputs = frozenset(producers)
    return InferenceGraph(
        nodes=tuple(inference), order=tuple(order), cycle=len(order) < len(inference),
        has_training=bool(training), inputs=inputs, outputs=outputs,
        training_inputs=frozenset(i for n in training for i in io_names(n.inputs)),
        training_outputs=frozenset(o for n in training for o in io_names(n.outputs)),
        free_inputs=tuple(sorted(inputs - outputs - {model_input})),
        free_outputs=tuple(sorted(outputs - inputs)))
