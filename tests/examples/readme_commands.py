"""Shared by the example tests: copy an example cleanly, read and run its README commands."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KMLC = str(Path(sys.executable).parent / "kmlc")
_GENERATED = {"mlflow.db", "mlartifacts", "mlruns", "__pycache__", "build", ".kmlc"}


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


def run_commands(root: Path, commands: Sequence[Sequence[str]], *, timeout: float,
                 env: Mapping[str, str] | None = None) -> None:
    """Run each ``kmlc ...`` command in ``root`` as a newcomer would (no tracking URI in
    the environment, no telemetry); each must exit 0 without a traceback."""
    full_env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
                "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    full_env.pop("MLFLOW_TRACKING_URI", None)
    for command in commands:
        assert command[0] == "kmlc", command
        done = subprocess.run([KMLC, *command[1:]], cwd=root, env=full_env,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
