"""The leaderboard as a user sees it: `kmlc sweep` on a real pseudo-terminal (the screen
read back through a VT100 emulator, pyte), and with its output piped."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
from pathlib import Path

import pyte
from mini_project import kmlc_exe
from sweep_project import SWEEP_YAML, write_sweep_project

COLUMNS, LINES = 120, 60
ENV = {"DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true"}


def _on_a_terminal(args: list[str], cwd: Path) -> tuple[bytes, list[str], int]:
    """Run kmlc with stdin, stdout and stderr on a pseudo-terminal of COLUMNS x LINES;
    what it wrote, and the screen a terminal shows at the end (non-blank lines)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    env = {**os.environ, **ENV, "TERM": "xterm-256color"}
    for name in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM_PROGRAM"):
        env.pop(name, None)
    proc = subprocess.Popen([kmlc_exe(), *args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=cwd, env=env)
    os.close(slave)
    written = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            written += chunk
    finally:
        os.close(master)
        proc.wait(timeout=300)
    screen = pyte.Screen(COLUMNS, LINES)
    pyte.ByteStream(screen).feed(written)
    return written, [line.rstrip() for line in screen.display if line.strip()], proc.returncode


def test_on_a_terminal_one_table_is_redrawn_in_place_as_trials_end(tmp_path: Path) -> None:
    write_sweep_project(tmp_path, SWEEP_YAML.replace(
        "{values: [0.01, 1.0, 100.0]}", "{values: [0.01, 1.0, 10.0, 100.0]}"))
    written, screen, code = _on_a_terminal(["sweep", "--params", "fail_alpha=10.0"], tmp_path)
    assert code == 0, "\n".join(screen)
    text = "\n".join(screen)
    # what the terminal shows at the end: one table, every trial in it once, the best
    # starred, then the summary and the command that reproduces the best trial
    assert sum("sweep: " in line for line in screen) == 1, text
    assert "sweep: 4/4 trials ended, best: trial 1 r2=" in text
    header = next(line for line in screen if "trial" in line and "parameters" in line)
    cells = [cell.strip() for cell in header.strip("┃ ").split("┃")]
    assert cells == ["trial", "parameters", "r2", "duration", "state"]
    rows = [[cell.strip() for cell in line.strip("│ ").split("│")]
            for line in screen if line.startswith("│")]
    assert [(r[0], r[1], r[4].split()[0]) for r in rows] == [
        ("1 *", "model.alpha=0.01", "FINISHED"), ("2", "model.alpha=1.0", "FINISHED"),
        ("3", "model.alpha=10.0", "FAILED"), ("4", "model.alpha=100.0", "FINISHED")]
    assert rows[2][2] == "-" and float(rows[0][2]) > float(rows[3][2])
    assert all(r[3].endswith("s") and float(r[3][:-1]) >= 0 for r in rows)
    assert "alpha 10.0 is refused" in rows[2][4]
    assert "reproduce it: kmlc run training --params model.alpha=0.01" in text
    assert text.index("sweep: 4/4") < text.index("reproduce it:")
    # it was redrawn as each trial ended: each count was on the terminal, then erased
    for done in range(4):
        assert f"sweep: {done}/4 trials done".encode() in written
    assert b"\x1b[1A" in written and b"\x1b[2K" in written  # cursor up, erase the line


def test_piped_the_leaderboard_is_plain_lines(tmp_path: Path) -> None:
    write_sweep_project(tmp_path)
    done = subprocess.run([kmlc_exe(), "sweep"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, **ENV}, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    trials = [line for line in lines if line.startswith("trial ")]
    assert [line.split("  ")[:2] for line in trials] == [
        ["trial 1/3", "model.alpha=0.01"], ["trial 2/3", "model.alpha=1.0"],
        ["trial 3/3", "model.alpha=100.0"]]
    assert all("FINISHED" in line for line in trials) and trials[0].endswith("*")
    assert "\x1b" not in done.stdout + done.stderr
    assert not any(ch in done.stdout + done.stderr for ch in "┃│┏")
    assert "reproduce it: kmlc run training --params model.alpha=0.01" in done.stdout
