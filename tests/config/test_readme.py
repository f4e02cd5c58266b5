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


def test_readme_tour_is_the_iris_example_but_for_the_marked_lines() -> None:
    """Every line of the tour not marked ``# +`` is a line of examples/iris/mlproject.yml,
    and the tour with its marked lines is a valid file."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A tour of `mlproject.yml`"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "the README lost its tour"
    iris = {line.strip() for line in
            (REPO / "examples" / "iris" / "mlproject.yml").read_text("utf-8").splitlines()}
    unmarked = []
    for line in block.group(1).splitlines():
        code, _, comment = line.partition(" # ")
        if not code.strip() or code.strip().startswith("#") or comment.startswith("+"):
            continue
        unmarked.append(code.strip())
    assert len(unmarked) >= 30
    assert [line for line in unmarked if line not in iris] == []
    assert "registered_name: iris" not in iris  # the tour says so in words, too
    assert "models:/iris@champion" in section.split("```")[2]


def test_readme_tour_validates(tmp_path: Path) -> None:
    from kmlc.config.loader import check_project

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A tour of `mlproject.yml`"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block
    path = tmp_path / "mlproject.yml"
    path.write_text(block.group(1), encoding="utf-8")
    result = check_project(path)
    # the tour is abridged (`# ...`): only its graph may be incomplete, never its keys
    assert {e.code for e in result.errors} <= {"KMLC303", "KMLC401", "KMLC501", "KMLC502",
                                              "KMLC503", "KMLC504", "KMLC505", "KMLC312"}
