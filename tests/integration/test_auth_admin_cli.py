"""The ``arctern idp|user|client`` admin commands on a fresh home (no server needed)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from arctern.cli.main import app


def arctern(home: Path, *args: str, input: str | None = None) -> Any:
    """Invoke the real typer app in-process (subprocesses cost seconds each on a busy box)."""
    env = {
        "ARCTERN_HOME": str(home),
        "ARCTERN_ARGON2_TIME_COST": "1",
        "ARCTERN_ARGON2_MEMORY_COST": "8192",
        "ARCTERN_DATABASE_URL": None,
    }
    return CliRunner().invoke(app, list(args), input=input, env=env, catch_exceptions=False)


def test_idp_user_and_client_commands(tmp_path: Path) -> None:
    created = arctern(tmp_path, "idp", "create", "Example University", "--domain", "Example.EDU")
    assert created.exit_code == 0, created.stderr
    uuid.UUID(created.stdout.strip())
    again = arctern(tmp_path, "idp", "create", "Example University", "--domain", "example.edu")
    assert again.exit_code == 1
    assert "already exists" in again.stderr

    user = arctern(tmp_path, "user", "create", "alice", "--password-stdin", input="s3cret\n")
    assert user.exit_code == 0, user.stderr
    alice_id = user.stdout.strip()
    uuid.UUID(alice_id)
    duplicate = arctern(
        tmp_path, "user", "create", "alice@example.edu", "--password-stdin", input="x\n"
    )
    assert duplicate.exit_code == 1 and "already exists" in duplicate.stderr

    native = arctern(
        tmp_path, "client", "create", "Notebook", "--native", "--owner", "alice@example.edu"
    )
    assert native.exit_code == 0, native.stderr
    assert "client_secret" not in native.stdout
    confidential = arctern(
        tmp_path,
        "client",
        "create",
        "Service",
        "--confidential",
        "--owner",
        "alice@example.edu",
        "--redirect-uri",
        "https://svc.example.org/cb",
    )
    assert confidential.exit_code == 0, confidential.stderr
    client_id = re.search(r"client_id: (\S+)", confidential.stdout)
    assert client_id and re.search(r"client_secret: \S{40,}", confidential.stdout)
    no_idp = arctern(
        tmp_path, "user", "create", "bob", "--idp", "Nowhere", "--password-stdin", input="x\n"
    )
    assert no_idp.exit_code == 1 and "Nowhere" in no_idp.stderr
    empty = arctern(tmp_path, "user", "create", "carol", "--password-stdin", input="\n")
    assert empty.exit_code == 1
    assert f"{alice_id}  alice@example.edu" in arctern(tmp_path, "user", "list").stdout
    bad_uri = arctern(
        tmp_path, "client", "create", "Bad", "--owner", "alice@example.edu", "--redirect-uri", "x"
    )
    assert bad_uri.exit_code == 1 and "Invalid redirect URI" in bad_uri.stderr

    listing = arctern(tmp_path, "client", "list").stdout
    assert "native       Notebook" in listing and "confidential Service" in listing
    deleted = arctern(tmp_path, "client", "delete", client_id.group(1))
    assert deleted.exit_code == 0, deleted.stderr
    assert "Deleted client" in deleted.stdout
