"""Model stage, probing: the inference plan run once on the first rows of ``model.input``.

``probe_model`` runs it in the process that ran training (the node modules are loaded
there; no MLflow is needed): its output gives the signature, the rows the input
example. On the way it finds which inference step changes which of its inputs.

Kedro hands every node its own copy of each input (``MemoryDataset``), so node code
may change its inputs in place. The logged model keeps that promise at the price of
a copy only where it is needed: at logging time the plan runs once on the input
example, each step on copies of its inputs, with a fingerprint of every input before
and after the call (a content hash for DataFrames and arrays, the pickled bytes
otherwise). The inputs whose fingerprint changed are the ones the model copies
before that step at every call.
"""

from __future__ import annotations

import copy
import hashlib
import pickle
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kmlc.compiler.catalog import dataset_config
from kmlc.compiler.inference_plan import PLAN_ARTIFACT, PLAN_FILE, plan_from_spec
from kmlc.config.functions import code_path
from kmlc.config.spec import ProjectSpec
from kmlc.errors import ExportError
from kmlc.model import runtime
from kmlc.model.artifacts import artifact_files
from kmlc.model.runtime import store_outputs, with_keys

__all__ = [
    "Probe",
    "fingerprint",
    "first_rows",
    "load_model_input",
    "model_input_missing",
    "probe_model",
    "probe_mutations",
]

EXAMPLE_ROWS = 5  # the rows of ``model.input`` the model is probed on and shows


def _frame_digest(value: Any) -> bytes:
    import pandas as pd

    digest = hashlib.blake2b(digest_size=16)
    if isinstance(value, pd.DataFrame):
        header: tuple[Any, ...] = (list(value.columns), [str(t) for t in value.dtypes])
    else:
        header = (value.name, str(value.dtype))
    digest.update(repr((type(value).__name__, header, list(value.index.names),
                        value.attrs)).encode())
    digest.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    return digest.digest()


def fingerprint(value: Any) -> bytes | None:
    """A digest of ``value``'s content, or None when it can be neither hashed nor pickled."""
    module = type(value).__module__.partition(".")[0]
    try:
        if module == "pandas" and type(value).__name__ in ("DataFrame", "Series"):
            return _frame_digest(value)
        if module == "numpy" and hasattr(value, "dtype") and value.dtype != object:
            header = repr((value.dtype.str, value.shape)).encode()
            return hashlib.blake2b(header + value.tobytes(), digest_size=16).digest()
    except (TypeError, ValueError):  # unhashable cells (lists, dicts): pickle them
        pass
    try:
        return hashlib.blake2b(pickle.dumps(value, protocol=4), digest_size=16).digest()
    except Exception:
        return None


def copy_mode_of(value: Any) -> str:
    """Kedro's choice of copy for a value it hands to a node (``copy`` or ``deepcopy``)."""
    from kedro.io.memory_dataset import _infer_copy_mode

    mode = _infer_copy_mode(value)
    return "deepcopy" if mode == "assign" else str(mode)


def _copied(value: Any) -> Any:
    try:
        return value.copy() if copy_mode_of(value) == "copy" else copy.deepcopy(value)
    except Exception:  # some objects cannot be copied; the probe then uses the original
        return value


def probe_mutations(model: Any, sample: Any) -> tuple[dict[str, dict[str, str]], Any]:
    """Run a loaded runtime model's steps on ``sample``; (step -> input -> mode, output).

    Each step is given copies of its inputs, so the loaded values, ``sample`` and the
    values later steps read stay as they were: what each step sees is what it would
    see in a model that copies what it changes.
    """
    values: dict[str, Any] = dict(model._values)
    values[model.plan["input"]] = sample
    mutated: dict[str, dict[str, str]] = {}
    for step, (func, names, keywords, outputs, *_) in zip(model.plan["steps"], model._steps,
                                                        strict=True):
        args = [_copied(values[name]) for name in names]
        before = [fingerprint(arg) for arg in args]
        result = func(**dict(zip(keywords, args, strict=True))) if keywords else func(*args)
        for name, arg, seen in zip(names, args, before, strict=True):
            if seen is not None and fingerprint(arg) != seen:
                mutated.setdefault(step["name"], {})[name] = copy_mode_of(values[name])
        if outputs is not None:
            store_outputs(values, outputs, result)
    output = values[model.plan["output"]]
    keys = model.plan.get("keys") or []  # the output as predict returns it: with the keys
    return mutated, with_keys(output, sample, keys) if keys else output


# ---------------------------------------------------------------- the first rows


def _load_runtime(artifacts: Mapping[str, str]) -> Any:
    """The model's own runtime, loaded in this process (to probe it): no MLflow needed."""
    model = runtime.PipelineRuntime()
    model.load_context(SimpleNamespace(artifacts=dict(artifacts), model_config={}))
    return model


def first_rows(data: Any) -> Any:
    """The rows of ``model.input`` the model is probed on and shows as its example."""
    return _head(data, EXAMPLE_ROWS)


def _head(data: Any, rows: int) -> Any:
    """The first rows of ``data``, as a copy of their own: no step ever sees it."""
    if hasattr(data, "iloc"):
        return data.iloc[:rows].copy()
    if isinstance(data, (list, tuple)):
        return copy.deepcopy(data[:rows])
    if hasattr(data, "shape") and getattr(data, "ndim", 0) >= 1:
        return data[:rows].copy()
    return copy.deepcopy(data)


_PARAM_TYPES = ((bool, "boolean"), (int, "long"), (float, "double"), (str, "string"))


def _param_type(value: Any) -> str | None:
    return next((name for kind, name in _PARAM_TYPES if isinstance(value, kind)), None)


ParamLeaf = tuple[str, str, Any, "tuple[int, ...] | None"]  # name, type, default, shape


def _param_leaves(model: Any) -> tuple[ParamLeaf, ...]:
    """A pyfunc param for each scalar or list leaf of the parameters inference reads."""
    specs: list[ParamLeaf] = []
    for name, targets in sorted(model.param_targets.items()):
        key, path = targets[0]
        value = model._values[key]
        for part in path:
            value = value[part]
        if isinstance(value, list):
            kinds = {_param_type(item) for item in value}
            kind = kinds.pop() if len(kinds) == 1 else None
            if kind is not None:  # MLflow's list params hold one scalar type
                specs.append((name, kind, value, (-1,)))
        elif (kind := _param_type(value)) is not None:
            specs.append((name, kind, value, None))
    return tuple(specs)



@dataclass(frozen=True)
class Probe:
    """What running the inference plan once on the first rows of ``model.input`` found.

    Computed without MLflow (in the process that ran training, which has the node
    modules loaded); the model is then built from it wherever MLflow is.
    """

    sample: Any  # the first rows as read: the input example and signature input
    output: Any  # what the plan returned for them: the signature output
    copies: dict[str, dict[str, str]]  # step -> input -> copy mode (``probe_mutations``)
    params: tuple[ParamLeaf, ...]


def probe_model(spec: ProjectSpec, input_data: Any,
                staged: Mapping[str, str] | None = None) -> Probe:
    """Run the inference plan on the first rows of ``input_data``; see ``Probe``.

    ``staged``: this run's copies of the artifacts it saved (``stage_artifact``).
    """
    assert spec.model is not None
    plan = plan_from_spec(spec)
    sample = _head(input_data, EXAMPLE_ROWS)
    with tempfile.TemporaryDirectory(prefix="kmlc-probe-") as tmp:
        plan_path = Path(tmp) / PLAN_FILE
        plan_path.write_text(spec.secrets.mask(plan.to_json()), encoding="utf-8")
        artifacts = {name: str(path)
                     for name, path in artifact_files(spec, plan, staged).items()}
        try:
            with code_path(spec.code):
                model = _load_runtime({**artifacts, PLAN_ARTIFACT: str(plan_path)})
                copies, output = probe_mutations(model, _head(sample, EXAMPLE_ROWS))
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"the inference pipeline fails on the first rows of "
                              f"'{spec.model.input}': {type(exc).__name__}: {exc}") from exc
    return Probe(sample, output, copies, _param_leaves(model))



def _model_input_dataset(spec: ProjectSpec) -> Any | None:
    """The dataset of ``model.input`` as the catalog builds it (None for a memory one)."""
    from kedro.io import AbstractDataset  # lazy: Kedro's io, only when a model is built

    assert spec.model is not None
    ds = spec.datasets.get(spec.model.input)
    if ds is None:
        return None
    config = dataset_config(ds, spec.root)
    if isinstance(config.get("credentials"), str):
        config["credentials"] = spec.credentials.get(config["credentials"])
    return AbstractDataset.from_config(ds.name, config)


def model_input_missing(spec: ProjectSpec) -> str | None:
    """Why ``model.input`` cannot be loaded for the example (it is not there), or None.

    kedro-mlflow's ``input_name`` may name data only inference reads, which need not
    exist when training runs: the model then has no signature and no input example."""
    assert spec.model is not None
    try:
        with code_path(spec.code):  # a dataset class of the project's own
            dataset = _model_input_dataset(spec)
            if dataset is None or dataset.exists():
                return None
    except Exception as exc:  # loading it reports the real problem
        return f"{type(exc).__name__}: {exc}"
    return "it does not exist yet"


def load_model_input(spec: ProjectSpec) -> Any | None:
    """A fresh load of ``model.input`` from its dataset (None for a memory dataset, or a
    dataset that does not exist: a model input only inference reads, not there yet)."""
    dataset = _model_input_dataset(spec)
    if dataset is None or not dataset.exists():
        return None
    return dataset.load()

