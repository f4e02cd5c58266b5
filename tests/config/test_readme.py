"""The README's example of `kmlc validate` errors is what kmlc prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_error_example_is_real() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Errors point at the file"):]
    block = re.search(r"```text\n\$ kmlc validate\n(.*?)```", section, re.S)
    assert block, "the README lost its validate example"
    kmlc = str(Path(sys.executable).parent / "kmlc")
    done = subprocess.run([kmlc, "validate", "--no-excerpt"], capture_output=True, text=True,
                          cwd=REPO / "tests" / "data" / "readme_errors", timeout=60,
                          env={"DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
                               "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 1
    printed = (done.stdout + done.stderr).splitlines()
    assert printed == block.group(1).splitlines()
