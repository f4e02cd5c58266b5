"""``kmlc ui``'s server: the MLflow UI in a process group of its own, stopped whole."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["serve_ui", "stop_group"]


def serve_ui(argv: list[str], host: str, port: int,
             announce: Callable[[str], None]) -> int:
    """Run the MLflow UI in a process group of its own; print its URL once it answers;
    on SIGTERM or SIGINT stop the whole group (the server, its workers, its job runner)."""
    import signal
    import subprocess
    import time
    import urllib.request

    stop: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        stop.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    probe = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{host}:{port}"
    try:
        server = subprocess.Popen(argv, start_new_session=True)
        answered = False
        while server.poll() is None and not stop:
            if not answered:
                try:
                    with urllib.request.urlopen(f"http://{probe}:{port}/health", timeout=1):
                        answered = True
                    announce(url)
                except OSError:
                    pass
            time.sleep(0.2)
        if not stop:
            click.echo(f"error: the MLflow UI exited with code {server.returncode}"
                       + ("" if answered else f" before answering on {url}"), err=True)
            return 1
        stop_group(server)
        click.echo("MLflow UI stopped", err=True)
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stop_group(server: Any) -> None:
    """SIGTERM to the server's whole process group, SIGKILL to what is left after 10 s."""
    import contextlib
    import os
    import signal
    import time

    def gone(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            server.poll()  # reap the server itself, or it lingers as a zombie of the group
            try:
                os.killpg(server.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        return False

    for signum, seconds in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.pid, signum)
        if gone(seconds):
            return
