"""kedro-starters' projects kept under ``tests/data/kedro_starters``, rendered as ``kedro new``.

Each ``<starter>/template`` is the starter's ``{{ cookiecutter.repo_name }}`` folder at the
commit its ``SOURCE.md`` names, placeholders included; ``render`` fills them by plain
string substitution (no cookiecutter), as ``kedro new --starter <starter>`` would.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path

STARTERS = Path(__file__).resolve().parents[1] / "data" / "kedro_starters"
PLACEHOLDER = re.compile(r"\{\{\s*cookiecutter\.(\w+)[^}]*\}\}")
TEXT_SUFFIXES = (".py", ".yml", ".toml", ".md")


def render(starter: str, values: Mapping[str, str], dst: Path) -> Path:
    """The starter's project in ``dst``, its placeholders filled from ``values``."""
    template = STARTERS / starter / "template"
    for src in template.rglob("*"):
        if not src.is_file():
            continue
        target = dst / PLACEHOLDER.sub(lambda m: values[m.group(1)],
                                       src.relative_to(template).as_posix())
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix in TEXT_SUFFIXES:
            text = PLACEHOLDER.sub(lambda m: values[m.group(1)], src.read_text("utf-8"))
            target.write_text(text, "utf-8")
        else:
            shutil.copyfile(src, target)
    (dst / "conf" / "local").mkdir(parents=True, exist_ok=True)  # git keeps no empty folder
    return dst
