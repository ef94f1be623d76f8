"""Fixtures of the several-machines suite: PostgreSQL-backed API servers and worker processes."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.connectors.conftest import moto_endpoint  # noqa: F401  (re-exported fixture)
from tests.support.postgres import PostgresCluster
from tests.support.server import ARCTERN, LiveServer, start_server


@dataclass
class Deployment:
    """One database, any number of API processes and worker processes (as on several hosts).

    Every process has its own home (its own machine) and shares the database URL and the
    secret key, which is what a real multi-host deployment configures.
    """

    root: Path
    database_url: str
    secret_key: str
    servers: list[LiveServer]
    workers: dict[str, subprocess.Popen[bytes]]

    def shared_env(self) -> dict[str, str]:
        return {"ARCTERN_SECRET_KEY": self.secret_key, "ARCTERN_LEASE_SECONDS": "3"}

    def api(
        self,
        *,
        demo: bool = False,
        public_url: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> LiveServer:
        """Start an ``arctern serve --no-worker`` process on the shared database, with a home
        of its own (the signing key comes from the database, nothing is copied between homes).
        """
        home = self.root / f"api{len(self.servers)}"
        home.mkdir(parents=True)
        args = ["--database", self.database_url, "--no-worker"]
        if public_url:
            args += ["--public-url", public_url]
        server = start_server(
            home,
            demo=demo,
            extra_env={**self.shared_env(), **(extra_env or {})},
            extra_args=args,
        )
        self.servers.append(server)
        return server

    def worker(
        self, name: str, *, concurrency: int = 2, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start an ``arctern worker`` process with its own home."""
        home = self.root / f"worker-{name}"
        home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "ARCTERN_HOME": str(home),
            **self.shared_env(),
            **(extra_env or {}),
        }
        log = (home / "worker.log").open("ab")
        process = subprocess.Popen(
            [
                ARCTERN,
                "worker",
                "--database",
                self.database_url,
                "--concurrency",
                str(concurrency),
                "--name",
                name,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers[name] = process
        return process

    def worker_log(self, name: str) -> str:
        path = self.root / f"worker-{name}" / "worker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for server in self.servers:
            server.stop()


@pytest.fixture
def deployment(tmp_path: Path, postgres: PostgresCluster) -> Iterator[Callable[[], Deployment]]:
    """A factory of PostgreSQL deployments; everything started is stopped afterwards."""
    made: list[Deployment] = []

    def make() -> Deployment:
        deployment = Deployment(
            root=tmp_path / f"deploy{len(made)}",
            database_url=postgres.create_database(),
            secret_key=secrets.token_urlsafe(48),
            servers=[],
            workers={},
        )
        deployment.root.mkdir(parents=True)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.stop()
