"""Shared by the example tests: copy an example cleanly and read its README commands."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_GENERATED = {"mlflow.db", "mlartifacts", "mlruns", "__pycache__", "build"}


def copy_example(name: str, target: Path) -> Path:
    """Copy examples/NAME to ``target`` without tracking stores, caches or generated data
    (everything in data/ but 01_raw)."""
    source = EXAMPLES / name

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in _GENERATED}
        if Path(folder) == source / "data":
            skipped |= {n for n in names if n != "01_raw"}
        return skipped

    shutil.copytree(source, target, ignore=ignore)
    return target


def readme_commands(name: str) -> list[list[str]]:
    """The commands of the first ```bash block of examples/NAME/README.md."""
    text = (EXAMPLES / name / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no ```bash block"
    return [line.split() for line in block.group(1).splitlines() if line.strip()]
