"""A running ``arctern serve`` driven as a user drives it: real login, real globus-sdk calls."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.server import DEMO_USERNAME, LiveServer, start_server

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TERMINAL = {"SUCCEEDED", "FAILED"}


class ArcternUnavailable(RuntimeError):
    """A piece the benchmark needs (login helper, collection CLI, worker) is not there yet."""


def _login_tokens(server: LiveServer) -> dict[str, Any]:
    """Tokens by resource server through the real native-app login flow (login form, consent)."""
    try:
        from tests.support.auth_flow import native_tokens
    except ImportError as exc:
        raise ArcternUnavailable(f"tests/support/auth_flow.py is unusable ({exc})") from exc
    return dict(native_tokens(server).by_resource_server)


@dataclass
class ArcternSession:
    """One server with a source and a destination POSIX collection over the benchmark dirs."""

    home: Path
    src_root: Path
    dst_root: Path
    # How often ``wait`` asks for the task. Runs are timed to the server's recorded
    # completion (``completed_at``), so the poll bounds nothing but how soon the harness
    # moves on; at 20 ms the polls alone took about a seventh of the server's CPU during a
    # 20,000-file copy, a cost no real client imposes and rsync does not pay.
    poll_interval: float = 0.1
    server: LiveServer | None = None
    src_id: str = ""
    dst_id: str = ""
    token: str = ""
    _client: Any = None
    notes: list[str] = field(default_factory=list)

    def start(self, extra_env: dict[str, str] | None = None) -> ArcternSession:
        self.src_root.mkdir(parents=True, exist_ok=True)
        self.dst_root.mkdir(parents=True, exist_ok=True)
        self.server = start_server(
            self.home, extra_env=extra_env, clock_file=False, worker_idle_seconds=None
        )
        try:
            self.src_id = self._create_collection("bench source", self.src_root)
            self.dst_id = self._create_collection("bench destination", self.dst_root)
            self.token = _login_tokens(self.server)["transfer.api.globus.org"]["access_token"]
        except BaseException:
            self.stop()
            raise
        return self

    def _create_collection(self, name: str, root: Path) -> str:
        assert self.server is not None
        done = self.server.admin(
            "collection", "create", "--name", name, "--posix", str(root), "--owner", DEMO_USERNAME
        )
        found = _UUID.search(done.stdout)
        if done.returncode != 0 or not found:
            raise ArcternUnavailable(
                f"`arctern collection create` failed ({done.returncode}): "
                f"{(done.stdout + done.stderr)[-800:]}"
            )
        return found.group(0)

    @property
    def pid(self) -> int:
        assert self.server is not None and self.server.process is not None
        return self.server.process.pid

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def database_path(self) -> Path:
        return self.home / "arctern.db"

    def client(self) -> Any:
        """A globus_sdk.TransferClient pointed at this server (one per session)."""
        if self._client is None:
            import globus_sdk

            # The SDK reads these when a client is constructed.
            os.environ["GLOBUS_SDK_ENVIRONMENT"] = "arctern"
            os.environ["GLOBUS_SDK_SERVICE_URL_AUTH"] = f"{self.url}/auth/"
            os.environ["GLOBUS_SDK_SERVICE_URL_TRANSFER"] = f"{self.url}/transfer/"
            self._client = globus_sdk.TransferClient(
                authorizer=globus_sdk.AccessTokenAuthorizer(self.token)
            )
        return self._client

    def submit(
        self,
        items: list[tuple[str, str, bool]],
        *,
        verify: bool,
        label: str,
        algorithm: str | None = None,
    ) -> str:
        import globus_sdk

        data = globus_sdk.TransferData(
            source_endpoint=self.src_id,
            destination_endpoint=self.dst_id,
            label=label,
            verify_checksum=verify,
        )
        extra = {"checksum_algorithm": algorithm} if algorithm else {}
        for source, destination, recursive in items:
            data.add_item(source, destination, recursive=recursive, **extra)
        return str(self.client().submit_transfer(data)["task_id"])

    def wait(
        self, task_id: str, *, timeout: float, interval: float | None = None
    ) -> dict[str, Any]:
        """Poll ``get_task`` until the task is finished; raises unless it SUCCEEDED."""
        interval = self.poll_interval if interval is None else interval
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            task = client.get_task(task_id)
            if task["status"] in TERMINAL:
                if task["status"] != "SUCCEEDED":
                    raise RuntimeError(f"task {task_id} {task['status']}: {task.data}")
                return dict(task.data)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"task {task_id} still {task['status']} ({task.get('nice_status')}) after "
                    f"{timeout:.0f} s: {task.get('files_transferred')} files transferred"
                )
            time.sleep(interval)

    def completed_at(self, task_id: str) -> float | None:
        return completed_at(self.database_path, task_id)

    def relative(self, path: Path, root: Path) -> str:
        return "/" + path.relative_to(root).as_posix()

    def copy_tree(
        self, src: Path, dst: Path, *, verify: bool, timeout: float, algorithm: str | None = None
    ) -> dict[str, Any]:
        """Copy ``src`` to ``dst`` as one recursive task; returns its final document."""
        task_id = self.submit(
            [
                (
                    self.relative(src, self.src_root) + "/",
                    self.relative(dst, self.dst_root) + "/",
                    True,
                )
            ],
            verify=verify,
            label=f"bench {src.name}",
            algorithm=algorithm,
        )
        return self.wait(task_id, timeout=timeout)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@dataclass
class ArcternContender:
    """Arctern as a contender: submit through globus-sdk, poll until SUCCEEDED."""

    session: ArcternSession
    verify: bool
    timeout: float = 3600.0
    last_task: dict[str, Any] = field(default_factory=dict)
    # A checksum_algorithm the user asked for; None is Globus's default, MD5.
    algorithm: str | None = None
    # Seconds between the server's recorded completion and the end of ``copy`` (the poll
    # that saw it): the harness's share of the measured time, which it subtracts.
    overrun: float = 0.0

    @property
    def name(self) -> str:
        suffix = f" ({self.algorithm})" if self.algorithm else ""
        return f"Arctern verify {'on' if self.verify else 'off'}{suffix}"

    @property
    def verifies(self) -> bool:
        return self.verify

    @property
    def note(self) -> str:
        if self.verify:
            algorithm = self.algorithm or "MD5"
            return f"{algorithm} while reading the source, destination read back and compared"
        return "no integrity check"

    def copy(self, src: Path, dst: Path) -> None:
        self.overrun = 0.0
        self.last_task = self.session.copy_tree(
            src, dst, verify=self.verify, timeout=self.timeout, algorithm=self.algorithm
        )
        seen = time.time()
        completed = self.session.completed_at(self.last_task["task_id"])
        if completed is not None:
            self.overrun = max(0.0, seen - completed)


def completed_at(database_path: Path, task_id: str) -> float | None:
    """When the server marked the task finished, as epoch seconds to the microsecond, from
    its SQLite database (the task document carries whole seconds only); None if unset."""
    import uuid

    from sqlalchemy import create_engine, select

    from arctern.db.models import Task

    engine = create_engine(f"sqlite:///{database_path}")
    try:
        with engine.connect() as connection:
            completed = connection.execute(
                select(Task.completion_time).where(Task.id == uuid.UUID(task_id))
            ).scalar()
    finally:
        engine.dispose()
    return completed.timestamp() if completed is not None else None
