"""A real OpenID Connect provider for the tests: node-oidc-provider run with Node on loopback.

``start_provider(redirect_uri)`` installs the pinned package once (``npm ci`` from the lock
file in ``tests/support/oidc``), starts ``server.mjs`` on a free port and waits until its
discovery document answers. Its development login form accepts any login name, which becomes
the account (``sub`` = ``sub-<login>``, ``preferred_username`` = ``<login>``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.server import free_port

HERE = Path(__file__).parent / "oidc"


def available() -> str | None:
    """Why the provider cannot run here, or None."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are needed for the OpenID provider (apt-get install nodejs npm)"
    return None


def install() -> None:
    """``npm ci`` once (``scripts/system-deps`` does it too); test processes running in
    parallel wait for each other."""
    with (HERE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (HERE / "node_modules" / "oidc-provider").is_dir():
            return
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            check=True,
            timeout=600,
        )


@dataclass
class OidcProvider:
    issuer: str
    client_id: str
    client_secret: str
    process: subprocess.Popen[bytes]
    # The provider's output, read when it fails to start; removed when it stops.
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.unlink(missing_ok=True)


def start_provider(redirect_uri: str, timeout: float = 60.0) -> OidcProvider:
    install()
    port = free_port()
    client_id = f"arctern-{uuid.uuid4().hex[:8]}"
    client_secret = uuid.uuid4().hex + uuid.uuid4().hex
    env = {
        **os.environ,
        "OIDC_PORT": str(port),
        "OIDC_CLIENT_ID": client_id,
        "OIDC_CLIENT_SECRET": client_secret,
        "OIDC_REDIRECT_URI": redirect_uri,
        "NODE_ENV": "test",
    }
    log = Path(tempfile.mkstemp(prefix="oidc-provider-", suffix=".log")[1])
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["node", "server.mjs"], cwd=HERE, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    issuer = f"http://127.0.0.1:{port}"
    provider = OidcProvider(issuer, client_id, client_secret, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text()
            provider.stop()
            raise RuntimeError(f"the OpenID provider exited: {output}")
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2).is_success:
                return provider
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    provider.stop()
    raise RuntimeError("the OpenID provider did not start")
