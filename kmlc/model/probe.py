"""Model stage, probing: which inference step changes which of its inputs.

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
from typing import Any

from kmlc.model.runtime import store_outputs, with_keys

__all__ = ["fingerprint", "probe_mutations"]


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
