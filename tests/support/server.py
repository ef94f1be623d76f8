"""Runs a real ``arctern serve`` process on a free loopback port for integration tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.tls import self_signed

DEMO_PASSWORD = "demo-password-for-tests"
DEMO_USERNAME = "researcher@example.edu"
DEMO_IDP = "Example University"
ARCTERN = str(Path(sys.executable).with_name("arctern"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A started server; ``env`` is what its processes and admin commands run with."""

    home: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    # Tests move the clock through a file the server reads on every ``now()``; benchmarks
    # measure the server as deployed, without that hook.
    clock_file: bool = True
    # Where it listens, and a command prefix that runs it elsewhere (another network
    # namespace: ``tests/support/netns.py``).
    host: str = "127.0.0.1"
    launcher: list[str] = field(default_factory=list)
    # Serve HTTPS with a self-signed certificate (``tests/support/tls.py``).
    tls: bool = False
    # Idle workers look for unannounced work (deadlines the tests reach by moving the
    # clock, expired leases of killed workers) this often; None: the deployed default.
    worker_idle_seconds: float | None = 2.0

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def certificate(self) -> Path | None:
        """The certificate clients must trust, for a TLS server."""
        return self.home / "tls-cert.pem" if self.tls else None

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            ARCTERN_HOME=str(self.home),
            ARCTERN_DEMO_PASSWORD=DEMO_PASSWORD,
            # Cheap password hashing: tests log in many times on two cores.
            ARCTERN_ARGON2_TIME_COST="1",
            ARCTERN_ARGON2_MEMORY_COST="8192",
            ARCTERN_LOGIN_ATTEMPTS_PER_MINUTE="1000",
            ARCTERN_LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE="100000",
            ARCTERN_LOGIN_ATTEMPTS_GLOBAL_PER_MINUTE="100000",
            # Many globus logins from 127.0.0.1 in one test process.
            ARCTERN_TEMPLATE_CLIENTS_PER_ADDRESS_PER_HOUR="1000",
        )
        if self.clock_file:
            env["ARCTERN_CLOCK_OFFSET_FILE"] = str(self.home / "clock-offset")
        if self.worker_idle_seconds is not None:
            env["ARCTERN_WORKER_IDLE_SECONDS"] = str(self.worker_idle_seconds)
        if "--database" in self.extra_args:
            # Admin commands must reach the same database as the server.
            env["ARCTERN_DATABASE_URL"] = self.extra_args[self.extra_args.index("--database") + 1]
        env.update(self.extra_env)
        return env

    def client_env(self, user_home: Path) -> dict[str, str]:
        """Environment for globus-sdk / globus-cli processes talking to this server."""
        env = dict(os.environ)
        env.update(
            HOME=str(user_home),
            GLOBUS_SDK_ENVIRONMENT="arctern",
            GLOBUS_SDK_SERVICE_URL_AUTH=f"{self.url}/auth/",
            GLOBUS_SDK_SERVICE_URL_TRANSFER=f"{self.url}/transfer/",
            GLOBUS_SDK_SERVICE_URL_GROUPS=f"{self.url}/groups/",
            GLOBUS_SDK_SERVICE_URL_TIMER=f"{self.url}/timers/",
        )
        if self.certificate is not None:
            env["GLOBUS_SDK_VERIFY_SSL"] = str(self.certificate)
            env["REQUESTS_CA_BUNDLE"] = env["SSL_CERT_FILE"] = str(self.certificate)
        return env

    def start(self, *, demo: bool = True, timeout: float = 60.0) -> LiveServer:
        args = [
            *self.launcher,
            ARCTERN,
            "serve",
            "--home",
            str(self.home),
            "--port",
            str(self.port),
        ]
        if self.host != "127.0.0.1":
            args += ["--host", self.host, "--public-url", self.url]
        if demo:
            args.append("--demo")
        if self.tls:
            cert, key = self_signed(self.home, self.host)
            args += ["--tls-cert", str(cert), "--tls-key", str(key)]
        args += self.extra_args
        # The child keeps its own descriptor of the log; this process needs none.
        with (self.home / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                args, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                verify = str(self.certificate) if self.certificate else True
                if httpx.get(f"{self.url}/health", timeout=1, verify=verify).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    @contextlib.contextmanager
    def worker(self) -> Iterator[subprocess.Popen[bytes]]:
        """A standalone ``arctern worker`` on this server's database while the block runs
        (for a server started with ``--no-worker``, whose tasks wait until then)."""
        log = (self.home / "worker.log").open("ab")
        process = subprocess.Popen(
            [ARCTERN, "worker", "--home", str(self.home)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()

    def log(self) -> str:
        path = self.home / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def admin(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run an ``arctern`` admin command against this server's home."""
        return subprocess.run(
            [ARCTERN, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def set_clock_offset(self, seconds: float) -> None:
        (self.home / "clock-offset").write_text(str(seconds))


def start_server(
    home: Path,
    *,
    demo: bool = True,
    extra_env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    clock_file: bool = True,
    host: str = "127.0.0.1",
    launcher: list[str] | None = None,
    tls: bool = False,
    worker_idle_seconds: float | None = 2.0,
) -> LiveServer:
    home.mkdir(parents=True, exist_ok=True)
    server = LiveServer(
        home=home,
        port=free_port(),
        extra_env=extra_env or {},
        extra_args=extra_args or [],
        clock_file=clock_file,
        host=host,
        launcher=launcher or [],
        tls=tls,
        worker_idle_seconds=worker_idle_seconds,
    )
    return server.start(demo=demo)
