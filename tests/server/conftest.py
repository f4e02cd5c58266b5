"""Fixtures of the server tests: real ``mlflow server`` processes, shared per session.

- ``sqlite_server``: ``mlflow server`` on a sqlite database (always available);
- ``postgres_server``: ``mlflow server`` on a throwaway PostgreSQL cluster, skipped
  with the reason when the Debian binaries, the ``postgres`` user or psycopg2 are missing;
- ``doomed_server``: a sqlite-backed server of its own, for the test that kills it.

A server takes 10-25 s to start on two cores (imports, database migrations, workers),
so the servers the selected tests need are launched together when the session starts
and waited for when first used. Each runs in its own process group, killed at teardown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tools import missing
from tracking_servers import MlflowServer, Postgres, Unavailable, write_mini

# fixture name -> the server it needs
_NEEDS = {"sqlite_server": "sqlite", "postgres_server": "postgres", "killed_run": "doomed"}


class ServerFarm:
    """Servers by name, launched at most once, stopped together."""

    def __init__(self, root: Path):
        self.root = root
        self.servers: dict[str, MlflowServer] = {}
        self.postgres: Postgres | None = None
        self.postgres_skip: str | None = None

    def launch(self, name: str) -> MlflowServer | None:
        if name in self.servers:
            return self.servers[name]
        folder = self.root / name
        if name == "postgres":
            if self.postgres_skip:
                return None
            try:
                self.postgres = Postgres.start()
            except Unavailable as exc:
                self.postgres_skip = f"PostgreSQL backend unavailable: {exc}"
                return None
            backend = self.postgres.uri
        else:
            backend = f"sqlite:///{folder / 'mlflow.db'}"
        server = self.servers[name] = MlflowServer(backend, folder).launch()
        return server

    def get(self, name: str) -> MlflowServer:
        server = self.launch(name)
        if server is None:
            missing(self.postgres_skip or f"server {name} unavailable")
        if not server.started_in:
            waited = time.perf_counter()
            server.wait()
            print(f"\n[server] {name} mlflow server on {server.uri}: healthy, launched "
                  f"{server.started_in:.1f} s before (waited {time.perf_counter() - waited:.1f} s)")
        return server

    def stop(self) -> None:
        started = time.perf_counter()
        for server in self.servers.values():  # all at once, then wait for each
            server.terminate()
        for server in self.servers.values():
            server.stop()
        if self.postgres is not None:
            self.postgres.stop()
        print(f"\n[server] {len(self.servers)} servers stopped in "
              f"{time.perf_counter() - started:.1f} s")


@pytest.fixture(scope="session")
def server_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFarm]:
    farm = ServerFarm(tmp_path_factory.mktemp("servers"))
    try:
        yield farm
    finally:
        farm.stop()


@pytest.fixture(scope="session", autouse=True)
def _launch_needed_servers(request: pytest.FixtureRequest, server_farm: ServerFarm) -> None:
    """Launch, all at once, every server the selected tests of this folder will use."""
    needed = {_NEEDS[name] for item in request.session.items
              if Path(str(item.path)).parent == Path(__file__).parent
              for name in getattr(item, "fixturenames", ()) if name in _NEEDS}
    for name in sorted(needed):
        server_farm.launch(name)


@pytest.fixture(scope="session")
def sqlite_server(server_farm: ServerFarm) -> MlflowServer:
    return server_farm.get("sqlite")


@pytest.fixture(scope="session")
def postgres_server(server_farm: ServerFarm) -> MlflowServer:
    return server_farm.get("postgres")


@pytest.fixture(scope="session")
def doomed_server(server_farm: ServerFarm) -> MlflowServer:
    """A server no other test uses: the test that takes it kills it."""
    return server_farm.get("doomed")


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """``project(text=MINI_YAML, nodes=MINI_NODES, name="proj")`` -> its mlproject.yml."""

    def write(text: str | None = None, nodes: str | None = None, name: str = "proj") -> Path:
        kwargs = {k: v for k, v in (("text", text), ("nodes", nodes)) if v is not None}
        return write_mini(tmp_path / name, **kwargs)

    return write
