"""``kmlc import-kedro``: an existing Kedro (+ kedro-mlflow) project -> one ``mlproject.yml``.

load (Kedro's own bootstrap and config loader) -> convert -> write -> ``kmlc validate``.
Nothing in config, compiler, tracking or model imports this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kmlc.importer.convert import Unconverted, convert_project
from kmlc.importer.kedro_project import KedroImportError, load_kedro_project
from kmlc.importer.lambdas import LAMBDA_DIR, LAMBDA_MODULE, lambda_module_text
from kmlc.importer.write import write_yaml

__all__ = ["ImportResult", "Unconverted", "import_kedro"]


@dataclass
class ImportResult:
    """The written file and what could not be converted."""

    output: Path
    unconverted: list[Unconverted] = field(default_factory=list)
    nodes: int = 0
    datasets: int = 0
    pipelines: list[str] = field(default_factory=list)


def import_kedro(project_dir: str | Path, output: str | Path | None = None,
                 env: str | None = None, pipelines: Mapping[str, str] | None = None,
                 force: bool = False) -> ImportResult:
    """Convert the Kedro project in ``project_dir`` and write ``output``.

    ``output`` defaults to ``mlproject.yml`` in the project; ``pipelines`` maps kmlc
    pipeline names to Kedro's (``{"training": "__default__"}``); an existing ``output``
    is replaced only with ``force``.
    """

    project_path = Path(project_dir)
    target = Path(output) if output is not None else project_path / "mlproject.yml"
    if target.exists() and not force:
        raise KedroImportError(f"{target} exists", hint="pass --force to replace it")
    if not target.parent.is_dir():
        raise KedroImportError(f"{target.parent} is not a folder")
    project = load_kedro_project(project_path, env=env)
    conv = convert_project(project, target.parent, pipelines)
    if conv.lambdas:
        module = target.parent / LAMBDA_DIR / f"{LAMBDA_MODULE}.py"
        if module.exists() and not force:
            raise KedroImportError(f"{module} exists (the project's lambda nodes, copied)",
                                   hint="pass --force to replace it")
        module.parent.mkdir(exist_ok=True)
        tmp = module.with_name(f".{module.name}.tmp")
        tmp.write_text(lambda_module_text(conv.lambdas), "utf-8")
        tmp.replace(module)
    write_yaml(conv, target)
    doc = conv.document
    return ImportResult(output=target, unconverted=conv.unconverted,
                        nodes=len(doc.get("nodes", [])), datasets=len(doc.get("datasets", {})),
                        pipelines=list(doc.get("pipelines", {})))
