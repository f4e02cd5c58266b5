"""``kmlc init``: a new project that validates and trains on the first try.

The project is written whole or not at all: its files are made in a hidden folder on the
same file system as the target, then moved into place (one rename when the target does not
exist; when it is an empty folder, one rename per top-level entry with SIGINT and SIGTERM
held back, and the moved entries taken back if a rename fails). A folder that holds
anything is refused: nothing of the user's is overwritten or removed.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kmlc.config.schema import schema_text
from kmlc.errors import KmlcError

__all__ = ["InitError", "InitResult", "init_project", "project_files"]

_TEMP_PREFIX = ".kmlc-init-"


class InitError(KmlcError):
    """The project cannot be written where asked."""

    code = "KMLC901"


@dataclass(frozen=True)
class InitResult:
    """What ``init_project`` wrote: the folder and its files, relative to it."""

    root: Path
    name: str
    files: tuple[str, ...]


def _module_name(name: str) -> str:
    """The nodes module's name: ``NAME_nodes`` as a Python identifier."""
    stem = re.sub(r"\W+", "_", name.lower()).strip("_")
    if not stem or not stem[0].isalpha():
        stem = f"project_{stem}".rstrip("_")
    return f"{stem}_nodes"


_PROJECT = """\
# yaml-language-server: $schema=mlproject.schema.json
# {name}: made by `kmlc init`. `kmlc validate` checks this file, `kmlc run training`
# trains and logs the model, `kmlc ui` shows the runs. `kmlc schema > mlproject.schema.json`
# refreshes the schema your editor reads after upgrading kmlc.
version: 1
name: {name}

parameters:
  split: {{test_size: 0.25, seed: 42}}
  model: {{alpha: 1.0}}

datasets:
  houses: {{type: pandas.CSVDataset, filepath: data/01_raw/houses.csv}}
  prices: {{type: pandas.CSVDataset, filepath: data/01_raw/prices.csv}}
  model: {{type: json.JSONDataset, filepath: data/06_models/model.json}}
  r2: {{type: mlflow.metric}}
  metrics: {{type: mlflow.metrics, prefix: test}}
  predictions:
    type: pandas.CSVDataset
    filepath: data/07_model_output/predictions.csv
    save_args: {{index: true}}

nodes:
  - name: prepare
    func: {module}.prepare
    inputs: houses
    outputs: features
    tags: [training, inference]
  - name: split
    func: {module}.split
    inputs: [features, prices, params:split]
    outputs: [x_train, x_test, y_train, y_test]
    tags: [training]
  - name: fit
    func: {module}.fit
    inputs: {{x_train: x_train, y_train: y_train, alpha: params:model.alpha}}
    outputs: model
    tags: [training]
  - name: evaluate
    func: {module}.evaluate
    inputs: [model, x_test, y_test]
    outputs: [r2, metrics]
    tags: [training]
  - name: predict
    func: {module}.predict
    inputs: [model, features]
    outputs: predictions
    tags: [inference]

model:
  input: houses
"""

_NODES = '''\
"""Node functions of {name}: plain Python, no kmlc or MLflow imports.

A ridge regression of a house's price on its area, rooms and age, written with numpy so the
project needs nothing beyond kmlc. Replace it with your own model: change a function here,
wire a new one under `nodes:` in mlproject.yml.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FEATURES = ["area", "rooms", "age"]


def prepare(houses: pd.DataFrame) -> pd.DataFrame:
    """Shared by training and inference: the feature columns as floats, rows indexed by id."""
    frame = houses.set_index("id") if "id" in houses.columns else houses
    return frame[FEATURES].astype("float64")


def split(features: pd.DataFrame, prices: pd.DataFrame, options: dict[str, Any]
          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """A random train/test split of the rows, reproducible from ``options["seed"]``."""
    target = prices.set_index("id").loc[features.index, "price"].astype("float64")
    test = np.random.default_rng(options["seed"]).random(len(features)) < options["test_size"]
    return features[~test], features[test], target[~test], target[test]


def fit(x_train: pd.DataFrame, y_train: pd.Series, alpha: float) -> dict[str, Any]:
    """Ridge regression in closed form on standardised features, kept as plain numbers."""
    mean, std = x_train.mean(), x_train.std(ddof=0).replace(0.0, 1.0)
    x = ((x_train - mean) / std).to_numpy()
    y = y_train.to_numpy() - y_train.mean()
    coef = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ y)
    return {{"features": list(x_train.columns), "mean": mean.tolist(), "std": std.tolist(),
            "coef": coef.tolist(), "intercept": float(y_train.mean())}}


def predict(model: dict[str, Any], features: pd.DataFrame) -> pd.DataFrame:
    """The inference output: one predicted price per row."""
    x = (features[model["features"]].to_numpy() - np.array(model["mean"])) / np.array(model["std"])
    price = x @ np.array(model["coef"]) + model["intercept"]
    return pd.DataFrame({{"price": price}}, index=features.index)


def evaluate(model: dict[str, Any], x_test: pd.DataFrame, y_test: pd.Series
             ) -> tuple[float, dict[str, float]]:
    """R² (logged as the metric ``r2``) and the errors (``test.rmse``, ``test.mae``)."""
    errors = predict(model, x_test)["price"] - y_test
    r2 = 1.0 - float((errors ** 2).sum()) / float(((y_test - y_test.mean()) ** 2).sum())
    return r2, {{"rmse": float(np.sqrt((errors ** 2).mean())), "mae": float(errors.abs().mean())}}
'''

_GITIGNORE = """\
# written by kmlc run: the tracking store, the runs' artifacts, the run cache
mlflow.db
mlartifacts/
mlruns/
.kmlc/
# what the nodes write (data/01_raw is the input and is kept)
data/06_models/
data/07_model_output/
data/08_reporting/
# what kmlc export-model -o build/... writes
build/
__pycache__/
"""

_README = """\
# {name}

Made by `kmlc init`: a ridge regression of house prices written as plain functions in
`{module}.py`, wired in `mlproject.yml`, trained on `data/01_raw/`.

```bash
kmlc validate
kmlc run training
kmlc run inference
```

`kmlc run training` logs the parameters, the metrics `r2`, `test.rmse` and `test.mae`,
and the inference pipeline (`prepare` then `predict`) as one MLflow model into
`mlflow.db`, an sqlite store beside this file; `kmlc ui` opens the MLflow UI on it.
"""


def _data(rows: int = 80, seed: int = 0) -> tuple[str, str]:
    """``houses.csv`` and ``prices.csv``: a small, fixed table with a learnable price."""
    rng = random.Random(seed)
    houses, prices = ["id,area,rooms,age"], ["id,price"]
    for row in range(1, rows + 1):
        area = rng.randint(30, 160)
        rooms = max(1, min(6, round(area / 30 + rng.uniform(-1, 1))))
        age = rng.randint(0, 60)
        price = 20000 + 1500 * area + 8000 * rooms - 400 * age + rng.gauss(0, 10000)
        houses.append(f"{row},{area},{rooms},{age}")
        prices.append(f"{row},{round(price, 2)}")
    return "\n".join(houses) + "\n", "\n".join(prices) + "\n"


def project_files(name: str) -> dict[str, str]:
    """The files of a new project named ``name``: relative path -> text."""

    module = _module_name(name)
    houses, prices = _data()
    return {
        "mlproject.yml": _PROJECT.format(name=name, module=module),
        f"{module}.py": _NODES.format(name=name),
        "data/01_raw/houses.csv": houses,
        "data/01_raw/prices.csv": prices,
        "mlproject.schema.json": schema_text(),
        ".gitignore": _GITIGNORE,
        "README.md": _README.format(name=name, module=module),
    }


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.\- ]+", name):
        raise InitError(f"'{name}' cannot name a project",
                        hint="use letters, digits, '_', '-', '.' or spaces; pass --name NAME")


def _refuse_if_used(target: Path) -> bool:
    """Whether ``target`` exists (then as an empty folder); raise if it cannot take a project."""
    if not target.exists():
        if target.is_symlink():
            raise InitError(f"{target} is a broken symbolic link")
        return False
    if not target.is_dir():
        raise InitError(f"{target} exists and is not a folder",
                        hint="give kmlc init a new or empty folder")
    entries = sorted(p.name for p in target.iterdir())
    if entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise InitError(f"{target} is not empty ({shown}): kmlc init writes only into a new "
                        "or empty folder, and never replaces a file",
                        hint="give it a new folder: kmlc init my-project")
    return True


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the few renames that put the project in place."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """While the staging folder is written, SIGTERM raises SystemExit (as Ctrl-C raises
    KeyboardInterrupt), so the folder is removed on the way out rather than left behind."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write(folder: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def init_project(target: Path, name: str | None = None) -> InitResult:
    """Write a new project into ``target`` (a new or empty folder).

    Raises:
        InitError: ``target`` is a file or a folder with anything in it, or ``name``
            cannot name a project.
    """
    target = Path(target).absolute()
    name = name or target.name or "project"
    _check_name(name)
    exists = _refuse_if_used(target)
    files = project_files(name)
    if exists:
        staging = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=target))
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=target.parent))
    try:
        with _terminate_as_exit():
            _write(staging, files)
        staging.chmod(0o777 & ~_umask())  # mkdtemp's 0o700 would make the project private
        with _signals_held():
            if exists:
                _move_entries(staging, target)
            else:
                try:
                    staging.rename(target)
                except OSError as exc:
                    raise InitError(f"cannot create {target}: {exc.strerror}") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return InitResult(target, name, tuple(sorted(files)))


def _move_entries(staging: Path, target: Path) -> None:
    """Move the staged top-level entries into the empty ``target``; ``mlproject.yml`` last.
    A failed move takes back the entries already moved (made by this call, nothing else)."""
    entries = sorted(os.listdir(staging), key=lambda n: (n == "mlproject.yml", n))
    moved: list[str] = []
    try:
        for entry in entries:
            if (target / entry).exists():
                raise InitError(f"{target / entry} appeared while kmlc init was writing",
                                hint="nothing was written; run kmlc init again")
            (staging / entry).rename(target / entry)
            moved.append(entry)
    except (OSError, InitError) as exc:
        for entry in reversed(moved):
            (target / entry).rename(staging / entry)
        if isinstance(exc, InitError):
            raise
        raise InitError(f"cannot write into {target}: {exc.strerror}") from exc
