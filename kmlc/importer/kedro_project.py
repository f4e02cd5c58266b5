"""Import stage 1: load a Kedro project the way Kedro does.

Kedro's own bootstrap, settings and config loader (with the chosen environment) give
the resolved catalog, parameters and ``mlflow.yml``; the project's pipeline registry
gives the real ``Pipeline`` objects. Beside the resolved values, the raw YAML files the
loader reads are scanned for ``${...}`` interpolations and each top-level key's place,
so the written file can name where a value came from.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from kmlc.errors import KmlcError
from kmlc.importer.stand_in import kedro_mlflow_stand_in

__all__ = ["KedroImportError", "KedroProject", "Origin", "load_kedro_project"]

_MLFLOW_PATTERNS = ["mlflow*", "mlflow*/**", "**/mlflow*"]
_SUFFIXES = (".yml", ".yaml", ".json")


class KedroImportError(KmlcError):
    """The folder is not a Kedro project, or Kedro could not load it."""

    code = "KMLC801"


@dataclass(frozen=True)
class Origin:
    """Where a key was written in the Kedro project (path relative to the project)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class KedroProject:
    """What Kedro loaded, plus the raw text facts the conversion reports."""

    path: Path
    package_name: str
    project_name: str
    source_dir: Path
    env: str | None
    catalog: dict[str, Any]
    parameters: dict[str, Any]
    mlflow: dict[str, Any] | None
    pipelines: dict[str, Any]
    hooks: list[Any]
    credentials_file: Path | None
    # (config kind, key path) -> the raw text of an interpolated value
    interpolations: dict[tuple[str, tuple[str | int, ...]], str] = field(default_factory=dict)
    # (config kind, top-level key) -> where it was defined (the last file that set it)
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)  # kind -> files read, in order

    def origin(self, kind: str, key: str) -> str:
        found = self.origins.get((kind, key))
        return str(found) if found else self.describe(kind)

    def describe(self, kind: str) -> str:
        """The files Kedro read for ``kind`` (``catalog``, ``parameters``, ``mlflow``)."""
        return ", ".join(self.files.get(kind, [])) or f"Kedro's {kind} config"


def load_kedro_project(path: Path, env: str | None = None) -> KedroProject:
    """Bootstrap the Kedro project at ``path`` and read its configuration and pipelines."""
    if "kedro.framework.project" not in sys.modules:  # Kedro's INFO lines stay quiet
        quiet = resources.files("kmlc").joinpath("logging.yml")
        os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(quiet))

    with warnings.catch_warnings(), kedro_mlflow_stand_in() as standing_in:
        warnings.simplefilter("ignore")  # deprecations inside Kedro and OmegaConf
        try:
            return _load(path, env)
        except KedroImportError as exc:
            missing = _missing_kedro_mlflow(exc)
            if standing_in and missing:
                raise KedroImportError(
                    f"{exc.message}: the project imports {missing} from kedro-mlflow, "
                    "beyond the names kmlc stands in for without it (pipeline_ml_factory, "
                    "PipelineML, MlflowHook)",
                    hint="install kedro-mlflow in this environment for the import, or "
                         "import only those names") from exc
            raise


def _missing_kedro_mlflow(exc: BaseException) -> str | None:
    """The kedro-mlflow module or name behind ``exc`` (a project importing more of
    kedro-mlflow than the stand-in offers), or None."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ImportError):
            name = getattr(cause, "name", None) or ""
            if name.startswith("kedro_mlflow"):
                text = str(cause)
                if "cannot import name" in text:  # from kedro_mlflow.x import y
                    return f"'{text.split(chr(39))[1]}' (from {name})"
                return f"'{name}'"
        cause = cause.__cause__ or cause.__context__
    return None


def _load(path: Path, env: str | None) -> KedroProject:
    from kedro.framework.project import pipelines, settings
    from kedro.framework.startup import bootstrap_project

    path = path.resolve()
    pyproject = path / "pyproject.toml"
    if not pyproject.is_file() or "[tool.kedro]" not in pyproject.read_text("utf-8"):
        raise KedroImportError(f"{path} is not a Kedro project",
                               hint="its pyproject.toml needs a [tool.kedro] table")
    try:
        metadata = bootstrap_project(path)
    except Exception as exc:  # Kedro raises several types for a broken project
        raise KedroImportError(f"Kedro could not bootstrap {path}: {exc}") from exc
    env = env or os.environ.get("KEDRO_ENV") or None
    conf_source = path / settings.CONF_SOURCE
    try:
        loader = settings.CONFIG_LOADER_CLASS(conf_source=str(conf_source), env=env,
                                              **settings.CONFIG_LOADER_ARGS)
    except Exception as exc:
        raise KedroImportError(f"Kedro could not create its config loader: {exc}") from exc
    for folder in dict.fromkeys(filter(None, (getattr(loader, "base_env", None),
                                               env or _default_env(loader)))):
        if not (conf_source / folder).is_dir():  # Kedro refuses to load such a project
            raise KedroImportError(
                f"the configuration folder {conf_source / folder} does not exist "
                "(Kedro's loader refuses the project the same way)",
                hint=f"create it (mkdir -p {conf_source / folder}; `kedro new` ships it "
                     "with a .gitkeep), or import another environment with --env")
    if "mlflow" not in loader.config_patterns:
        loader.config_patterns["mlflow"] = list(_MLFLOW_PATTERNS)
    problems: list[tuple[str, str, str]] = []
    catalog = _section(loader, "catalog", problems) or {}
    parameters = _section(loader, "parameters", problems) or {}
    mlflow = _section(loader, "mlflow", problems)
    try:
        registry = dict(pipelines)
    except Exception as exc:
        raise KedroImportError(
            f"the pipeline registry of '{metadata.package_name}' failed: "
            f"{type(exc).__name__}: {exc}",
            hint="`kedro registry list` shows the same error; fix it there first") from exc
    project = KedroProject(
        path=path, package_name=metadata.package_name, project_name=metadata.project_name,
        source_dir=Path(metadata.source_dir), env=env or _default_env(loader),
        catalog={k: v for k, v in catalog.items() if not str(k).startswith("_")},
        parameters=dict(parameters), mlflow=mlflow, pipelines=registry,
        hooks=list(getattr(settings, "HOOKS", ()) or ()),
        credentials_file=None, problems=problems)
    envs = [getattr(loader, "base_env", "base"), project.env]
    for kind in ("catalog", "parameters", "mlflow", "credentials"):
        for file in _config_files(conf_source, envs, loader.config_patterns.get(kind, [])):
            _scan(project, kind, file)
            if kind == "credentials":
                project.credentials_file = file
    return project


def _default_env(loader: Any) -> str | None:
    return getattr(loader, "default_run_env", None) or getattr(loader, "env", None)


def _section(loader: Any, kind: str, problems: list[tuple[str, str, str]]) -> Any:
    from kedro.config import MissingConfigException

    try:
        return loader[kind]
    except (KeyError, MissingConfigException):
        return None
    except Exception as exc:
        where = f"conf/*/{kind}*"
        problems.append((where, f"Kedro could not resolve the {kind} config: {exc}",
                         "fix it so that `kedro run` loads it, then import again"))
        return None


def _config_files(conf_source: Path, envs: list[str | None],
                  patterns: list[str]) -> Iterator[Path]:
    seen: set[Path] = set()
    for env in dict.fromkeys(e for e in envs if e):
        folder = conf_source / env
        for pattern in patterns:
            for file in sorted(folder.glob(pattern)):
                if (file.is_file() and file.suffix in _SUFFIXES and file not in seen
                        and not any(part.startswith(".") for part in file.parts)):
                    seen.add(file)
                    yield file


def _scan(project: KedroProject, kind: str, file: Path) -> None:
    try:
        data = YAML(typ="rt", pure=True).load(file.read_text("utf-8"))
    except (OSError, YAMLError, UnicodeDecodeError):
        return
    if not hasattr(data, "items"):
        return
    rel = file.relative_to(project.path).as_posix()
    project.files.setdefault(kind, []).append(rel)
    for key in data:
        line = data.lc.key(key)[0] + 1 if hasattr(data, "lc") else 0
        project.origins[(kind, str(key))] = Origin(rel, line)
        # a later file (the environment) replaces the whole key, as Kedro's merge does
        for stale in [k for k in project.interpolations if k[0] == kind and k[1][:1] == (key,)]:
            del project.interpolations[stale]
    for key_path, text in _interpolated(data, ()):
        project.interpolations[(kind, key_path)] = text


def _interpolated(value: Any, path: tuple[str | int, ...]
                  ) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        if "${" in value:
            yield path, value
    elif hasattr(value, "items"):
        for key, item in value.items():
            yield from _interpolated(item, (*path, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _interpolated(item, (*path, i))
