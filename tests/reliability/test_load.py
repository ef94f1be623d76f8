"""Load: 50 concurrent clients submit and poll transfer tasks for 60 seconds over loopback; zero
errors, and no task lost or duplicated (checked against the database and the files)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from arctern.config import Settings
from arctern.context import AppContext
from arctern.db.models.transfer import Task
from tests.reliability.conftest import Session, database_url, login, make_user

CLIENTS = 50
USERS = 5
SECONDS = 60.0  # as the issue asks; the whole suite still runs in about 3 minutes with -n 2


@dataclass
class Tally:
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    tasks: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # id -> owner, dst, data
    resubmits: int = 0


async def client_loop(n: int, me: Session, src_root: Path, deadline: float, tally: Tally) -> None:
    base = me.api
    async with httpx.AsyncClient(headers=me.headers, timeout=60) as http:

        async def call(method: str, url: str, **kwargs: object) -> httpx.Response | None:
            started = time.monotonic()
            try:
                response = await http.request(method, url, **kwargs)  # type: ignore[arg-type]
            except httpx.HTTPError as exc:
                tally.errors.append(f"{method} {url}: {exc!r}")
                return None
            tally.latencies.append(time.monotonic() - started)
            tally.requests += 1
            if response.status_code >= 300:
                tally.errors.append(f"{method} {url}: {response.status_code} {response.text}")
                return None
            return response

        round_ = 0
        while time.monotonic() < deadline:
            round_ += 1
            name = f"c{n:02}-{round_:04}.txt"
            data = f"client {n} round {round_} {uuid.uuid4()}\n".encode()
            (src_root / name).write_bytes(data)
            got = await call("GET", f"{base}/submission_id")
            if got is None:
                continue
            body = {
                "DATA_TYPE": "transfer",
                "submission_id": got.json()["value"],
                "source_endpoint": me.c1,
                "destination_endpoint": me.c2,
                "label": f"load {name}",
                "DATA": [
                    {
                        "DATA_TYPE": "transfer_item",
                        "source_path": f"/load/{name}",
                        "destination_path": f"/load-out/{name}",
                    }
                ],
            }
            submitted = await call("POST", f"{base}/transfer", json=body)
            if submitted is None:
                continue
            task_id = submitted.json()["task_id"]
            tally.tasks[task_id] = (me.identity_id, name, data)
            if round_ % 5 == 0:
                # A client retrying its submission (same submission_id) gets the same task.
                again = await call("POST", f"{base}/transfer", json=body)
                tally.resubmits += 1
                if again is not None and again.json()["task_id"] != task_id:
                    tally.errors.append(f"resubmission made a new task for {name}")
            while time.monotonic() < deadline + 60:
                doc = await call("GET", f"{base}/task/{task_id}")
                if doc is None or doc.json()["status"] in ("SUCCEEDED", "FAILED"):
                    break
                await asyncio.sleep(0.3)
            if round_ % 3 == 0:
                await call("GET", f"{base}/task_list", params={"limit": "10"})


async def tasks_in_database(live: object, owners: set[str], since: object) -> list[Task]:
    from tests.support.server import LiveServer

    assert isinstance(live, LiveServer)
    ctx = AppContext.from_settings(Settings(home=live.home, database_url=database_url(live)))
    try:
        async with ctx.db.session() as session:
            rows = await session.scalars(
                select(Task).where(
                    Task.owner_id.in_([uuid.UUID(o) for o in owners]),
                    Task.label.like("load %"),
                )
            )
            return list(rows.all())
    finally:
        await ctx.db.dispose()


@pytest.mark.slow
def test_fifty_clients_submit_and_poll(server_factory) -> None:  # type: ignore[no-untyped-def]
    live = server_factory()
    users = [login(live)] + [login(live, *make_user(live, f"load{i}")) for i in range(USERS - 1)]
    src_root = users[0].c1_root / "load"
    src_root.mkdir()
    (users[0].c2_root / "load-out").mkdir()
    # Other users read collection 1 and write collection 2 through access rules.
    for other in users[1:]:
        for collection, permissions in ((users[0].c1, "r"), (users[0].c2, "rw")):
            users[0].tc.add_endpoint_acl_rule(
                collection,
                {
                    "DATA_TYPE": "access",
                    "principal_type": "identity",
                    "principal": other.identity_id,
                    "path": "/",
                    "permissions": permissions,
                },
            )
        found = {e["display_name"]: e["id"] for e in other.tc.endpoint_search("Demo Collection")}
        assert found["Demo Collection 1"] == users[0].c1

    tally = Tally()
    started = time.monotonic()

    async def run_all() -> None:
        deadline = time.monotonic() + SECONDS
        await asyncio.gather(
            *(client_loop(n, users[n % USERS], src_root, deadline, tally) for n in range(CLIENTS))
        )

    asyncio.run(run_all())
    elapsed = time.monotonic() - started
    assert tally.errors == [], tally.errors[:10]

    # Every task finished successfully, exactly once, and its file arrived intact.
    owners = {u.identity_id for u in users}
    rows = asyncio.run(tasks_in_database(live, owners, None))
    ids = Counter(str(r.id) for r in rows)
    labels = Counter(r.label for r in rows)
    assert set(ids) == set(tally.tasks), (len(ids), len(tally.tasks))
    assert max(labels.values()) == 1
    for row in rows:
        assert row.status == "SUCCEEDED", (row.id, row.status, row.fatal_error)
        owner, name, data = tally.tasks[str(row.id)]
        assert str(row.owner_id) == owner
        assert (users[0].c2_root / "load-out" / name).read_bytes() == data
    latencies = sorted(tally.latencies)
    p95 = latencies[int(len(latencies) * 0.95)]
    print(
        f"\nRELIABILITY load: {CLIENTS} clients x {SECONDS:.0f}s ({elapsed:.0f}s with drain): "
        f"{tally.requests} requests, {len(tally.tasks)} tasks, {tally.resubmits} resubmissions, "
        f"0 errors, latency p50={statistics.median(latencies) * 1000:.0f} ms "
        f"p95={p95 * 1000:.0f} ms"
    )
