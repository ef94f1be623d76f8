"""A throwaway PostgreSQL cluster on a free loopback port, one per test session.

``initdb`` refuses to run as root, so the cluster runs as the ``postgres`` system user in a
world-traversable temporary directory. Each test that needs a database gets a fresh one.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def postgres_available() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return (PG_BIN / "initdb").exists()


def _as_postgres(args: list[str]) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120)


@dataclass
class PostgresCluster:
    root: Path
    port: int

    @classmethod
    def start(cls) -> PostgresCluster:
        root = Path(tempfile.mkdtemp(prefix="arctern-pg-", dir="/tmp"))
        root.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        port = free_port()
        data = root / "data"
        _as_postgres(
            [str(PG_BIN / "initdb"), "--no-sync", "-A", "trust", "-U", "postgres", "-D", str(data)]
        )
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        _as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "start",
                "-o",
                options,
            ]
        )
        return cls(root=root, port=port)

    def create_database(self) -> str:
        """A new empty database; returns its asyncpg SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        _as_postgres(
            [
                str(PG_BIN.parent / "bin" / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                name,
            ]
        )
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            _as_postgres(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"]
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
