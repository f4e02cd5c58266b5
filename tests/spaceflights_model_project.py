"""The ported spaceflights project: kedro-starters' spaceflights-pandas as one mlproject.yml.

The starter's package (node and pipeline code unchanged) and raw data subset come from
``tests/data/kedro_starters/spaceflights-pandas`` (see its SOURCE.md); the file and the
one inference node the starter lacks come from ``tests/data/spaceflights``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["write_spaceflights"]

DATA = Path(__file__).resolve().parent / "data"
STARTER = DATA / "kedro_starters" / "spaceflights-pandas" / "template"
OURS = DATA / "spaceflights"
# these need a Kedro project template; the kmlc file replaces them
_TEMPLATE_ONLY = ("__main__.py", "settings.py", "pipeline_registry.py")


def write_spaceflights(dest: Path) -> Path:
    """Write the project into ``dest`` (created); returns its ``mlproject.yml``."""
    shutil.copytree(OURS, dest, ignore=shutil.ignore_patterns("__pycache__"))
    package = dest / "src" / "spaceflights"
    shutil.copytree(STARTER / "src" / "{{ cookiecutter.python_package }}", package,
                    ignore=shutil.ignore_patterns("__pycache__", *_TEMPLATE_ONLY))
    for file in package.rglob("*.py"):
        text = file.read_text(encoding="utf-8")
        file.write_text(text.replace("{{ cookiecutter.project_name }}", "Spaceflights"),
                        encoding="utf-8")
    shutil.copytree(STARTER / "data" / "01_raw", dest / "data" / "01_raw")
    return dest / "mlproject.yml"
