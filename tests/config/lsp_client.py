"""A minimal Language Server Protocol client over stdio (JSON-RPC with Content-Length
framing), enough to drive the real yaml-language-server as an editor does: initialize,
settings, open a document, then completion, hover and the diagnostics it publishes."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# the version the tests install (npm): bumped on purpose, never floating
YAML_LANGUAGE_SERVER = "1.25.0"


class LspError(AssertionError):
    pass


class LspClient:
    """One language server process; ``request`` waits for the answer, notifications the
    server sends are kept in ``notifications`` (requests it sends are answered with null)."""

    def __init__(self, command: list[str], cwd: Path):
        self.process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._ids = iter(range(1, 1_000_000))
        self._answers: dict[int, Any] = {}
        self._cond = threading.Condition()
        self.notifications: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # ---------------------------------------------------------------------------- wire
    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        stdin.flush()

    @staticmethod
    def _read_message(stream: IO[bytes]) -> dict[str, Any] | None:
        length = None
        while True:
            line = stream.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        if length is None:
            return None
        return dict(json.loads(stream.read(length)))

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while (message := self._read_message(stdout)) is not None:
            if "id" in message and "method" in message:  # a request of the server's
                self._send({"id": message["id"], "result": None})
            elif "id" in message:
                with self._cond:
                    self._answers[message["id"]] = message
                    self._cond.notify_all()
            else:
                self.notifications.put(message)

    # -------------------------------------------------------------------------- calls
    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: Any, timeout: float = 60) -> Any:
        ident = next(self._ids)
        self._send({"id": ident, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise LspError(f"no answer to {method}: {self._stderr()}")
                self._cond.wait(min(left, 0.5))
            answer = self._answers.pop(ident)
        if "error" in answer:
            raise LspError(f"{method} failed: {answer['error']}")
        return answer.get("result")

    def wait_notification(self, method: str, uri: str | None = None,
                          timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LspError(f"no {method} notification: {self._stderr()}")
            try:
                message = self.notifications.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            params = message.get("params") or {}
            if message.get("method") == method and (uri is None or params.get("uri") == uri):
                return dict(params)

    def _stderr(self) -> str:
        if self.process.poll() is None:
            return "(server still running)"
        stderr = self.process.stderr
        return stderr.read().decode(errors="replace")[-2000:] if stderr else ""

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def yaml_server(server: Path, root: Path) -> Iterator[LspClient]:
    """The yaml-language-server at ``server`` (its JS entry), initialized on ``root``."""
    node = shutil.which("node")
    assert node is not None
    client = LspClient([node, str(server), "--stdio"], root)
    try:
        client.request("initialize", {
            "processId": os.getpid(), "rootUri": root.as_uri(),
            "capabilities": {"textDocument": {
                "completion": {"completionItem": {"snippetSupport": False,
                                                  "documentationFormat": ["plaintext"]}},
                "hover": {"contentFormat": ["plaintext", "markdown"]},
                "publishDiagnostics": {}}},
        })
        client.notify("initialized", {})
        client.notify("workspace/didChangeConfiguration", {"settings": {"yaml": {
            "validate": True, "completion": True, "hover": True, "schemas": {}}}})
        yield client
    finally:
        client.close()
