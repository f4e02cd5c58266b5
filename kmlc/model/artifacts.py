"""Model stage, artifacts: the files a model packs, where training left them.

``artifact_files`` finds each artifact of the inference plan (its latest version);
``stage_artifact`` keeps this run's own copy of one as it is saved, so that the model is
built from what this run wrote even when another run rewrites the catalog's file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kmlc.compiler.inference_plan import InferencePlan
from kmlc.config.spec import PATH_KEYS, ProjectSpec
from kmlc.errors import ExportError

__all__ = ["artifact_files", "stage_artifact"]


def artifact_files(spec: ProjectSpec, plan: InferencePlan,
                   staged: Mapping[str, str] | None = None) -> dict[str, Path]:
    """The file (or folder) of each artifact as training left it (latest version).

    ``staged``: the artifacts this run saved, as copies of its own (``stage_artifact``);
    the others are read where the catalog keeps them.
    """
    out: dict[str, Path] = {}
    for artifact in plan.artifacts:
        if staged and artifact.name in staged:
            out[artifact.name] = Path(staged[artifact.name])
            continue
        ds = spec.datasets[artifact.name]
        raw = ds.filepath or ""
        path = Path(raw) if Path(raw).is_absolute() else spec.root / raw
        if ds.config.get("versioned") and path.is_dir():
            versions = sorted(p for p in path.iterdir() if (p / path.name).exists())
            if versions:
                path = versions[-1] / path.name
        if not path.exists():
            raise ExportError(f"artifact '{artifact.name}' was not found at {path}",
                              hint="run `kmlc run training` first")
        out[artifact.name] = path
    return out


# keys of an artifact's config that its staged copy, one local file, has no use for
# (an artifact is a local file: ``artifact_files``)
_STAGE_DROPS = ("versioned", "credentials")


def stage_artifact(spec: ProjectSpec, name: str, data: Any, folder: Path) -> Path:
    """Save ``data``, what this run saved as artifact ``name``, again under ``folder``.

    The dataset's own class writes it (the same bytes a load returns), so the model is
    built from this run's artifact even when another run of the project rewrites the
    catalog's file meanwhile (Kedro writes files in place, not atomically).
    """
    from kedro.io import AbstractDataset  # lazy: Kedro's io, only when a model is built

    ds = spec.datasets[name]
    config = {k: v for k, v in ds.config.items() if k not in _STAGE_DROPS}
    key = next(k for k in PATH_KEYS if k in config)
    target = folder / name / Path(str(config[key])).name
    target.parent.mkdir(parents=True, exist_ok=True)
    config[key] = str(target)
    AbstractDataset.from_config(name, config).save(data)
    return target

