"""The agent's work source: the pool's ``WorkSource`` protocol over ``/agent/v1/work``.

The deployment decides what this endpoint may lease (from its credential) and accepts a
job's reports only while its worker holds the job's lease; the agent names its worker so
that it renews, reports on and hands back only its own leases. The jobs themselves are the
engine's (``worker/executor.py``), exactly as ``arctern worker`` runs them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from arctern.connect import wire
from arctern.connect.agent.client import _check, post_json
from arctern.engine.copier import Resume
from arctern.engine.errors import Canceled, FileFailed
from arctern.engine.options import FileJob
from arctern.worker.leases import Claim
from arctern.worker.progress import TaskProgress
from arctern.worker.source import (
    Beat,
    Collections,
    LeasedAhead,
    PlanCommit,
    PlanView,
    TaskView,
)

ClaimKey = tuple[str, uuid.UUID, int | None]


class HttpWorkSource:
    def __init__(
        self,
        http: httpx.AsyncClient,
        worker: str,
        *,
        compress: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.worker = worker
        self.compress = compress  # large bodies (plan commits, progress) go gzip-compressed
        # A job leased along with a plan commit: the next ``claim`` returns it.
        self._ahead = LeasedAhead(monotonic)
        # A report in flight that asked for the next job: at most one asks at a time, so a
        # job leased ahead is never displaced by another (and left to run out its lease).
        self._asking_ahead = False
        # What the lease answer carried for each held job (its first reads: ``task``,
        # ``plan`` or ``batch``, ``collections``), each answer used once.
        self._carried: dict[ClaimKey, dict[str, dict[str, Any]]] = {}

    @staticmethod
    def _key(claim: Claim) -> ClaimKey:
        return (claim.kind, claim.task_id, claim.batch_id)

    async def _read(self, op: str, claim: Claim) -> dict[str, Any]:
        """The answer of a reading operation: carried by the lease if it still is, else
        asked for."""
        carried = self._carried.get(self._key(claim))
        if carried is not None and op in carried:
            answer = carried.pop(op)
            if not carried:
                del self._carried[self._key(claim)]
            return answer
        return await self._job(op, claim)

    def _forget(self, claim: Claim) -> None:
        self._carried.pop(self._key(claim), None)

    @staticmethod
    def _claim_body(claim: Claim) -> dict[str, Any]:
        return {"kind": claim.kind, "task_id": str(claim.task_id), "batch_id": claim.batch_id}

    async def _post(self, path: str, claim: Claim, **body: Any) -> dict[str, Any]:
        payload = {"worker": self.worker, "claim": self._claim_body(claim), **body}
        return _check(await post_json(self.http, path, payload, compress=self.compress))

    async def _job(self, op: str, claim: Claim, **body: Any) -> dict[str, Any]:
        return await self._post(f"/work/job/{op}", claim, **body)

    # -- leases -----------------------------------------------------------------------------

    async def claim(self) -> Claim | None:
        ahead = self._ahead.pop()
        if ahead is not None:
            leased, fresh = ahead
            if fresh:
                return leased
            await self.release(leased)  # the pool was full for a while: not this lease
        body = _check(await self.http.post("/work/lease", json={"worker": self.worker}))
        return self._accept(body)

    async def hand_back_ahead(self) -> None:
        ahead = self._ahead.pop()
        if ahead is not None:
            await self.release(ahead[0])

    def _accept(self, body: dict[str, Any]) -> Claim | None:
        """The claim of a lease answer, keeping the reads it carries."""
        raw = body.get("claim")
        if not isinstance(raw, dict):
            return None
        claim = Claim(str(raw["kind"]), uuid.UUID(str(raw["task_id"])), raw.get("batch_id"))
        reads = body.get("job")
        if isinstance(reads, dict):  # servers before this answer carried no reads
            self._carried[self._key(claim)] = {
                op: answer for op, answer in reads.items() if isinstance(answer, dict)
            }
        return claim

    async def renew(self, claim: Claim) -> str | None:
        """Extend the lease; the reason to stop the job, or None to carry on."""
        stop = (await self._post("/work/renew", claim)).get("stop")
        return str(stop) if stop else None

    async def release(self, claim: Claim) -> None:
        self._forget(claim)
        await self._post("/work/release", claim)

    # -- reading ----------------------------------------------------------------------------

    async def load_task(self, claim: Claim) -> TaskView | None:
        raw = (await self._read("task", claim)).get("task")
        return wire.task_of(raw) if isinstance(raw, dict) else None

    async def load_plan(self, claim: Claim) -> PlanView | None:
        raw = (await self._read("plan", claim)).get("plan")
        return wire.plan_of(raw) if isinstance(raw, dict) else None

    async def load_batch(self, claim: Claim) -> list[tuple[FileJob, Resume | None]]:
        files = (await self._read("batch", claim)).get("files") or []
        return [wire.file_of(raw) for raw in files]

    async def collections(self, claim: Claim, task: TaskView) -> Collections:
        body = await self._read("collections", claim)
        if body.get("lease_lost"):
            raise FileFailed("ENDPOINT_ERROR", "this agent no longer holds the job")
        error = body.get("error")
        if isinstance(error, dict):
            raise FileFailed(str(error.get("code")), str(error.get("message")))
        return wire.collections_of(body["collections"])

    # -- reporting --------------------------------------------------------------------------

    async def beat(
        self,
        claim: Claim,
        progress: TaskProgress | None,
        *,
        extend: bool,
        guarded: Sequence[uuid.UUID],
    ) -> Beat:
        body = await self._job(
            "beat",
            claim,
            progress=wire.progress_doc(progress),
            extend=extend,
            guarded=[str(collection_id) for collection_id in guarded],
        )
        return wire.beat_of(body.get("beat") or {})

    async def commit_plan(
        self,
        claim: Claim,
        commit: PlanCommit,
        progress: TaskProgress | None,
        *,
        lease_next: bool = False,
    ) -> None:
        body = await self._reporting(
            "commit",
            claim,
            lease_next,
            commit=wire.commit_doc(commit),
            progress=wire.progress_doc(progress),
        )
        if body.get("lease_lost"):
            raise Canceled("LEASE_LOST")
        if body.get("canceled"):
            raise Canceled(str(body["canceled"]))

    async def _reporting(
        self, op: str, claim: Claim, lease_next: bool, **body: Any
    ) -> dict[str, Any]:
        """A job's report; with ``lease_next``, asking for the pool's next job in the same
        call unless one is kept or being asked for already. That job is kept for the pool's
        next ``claim``."""
        asking = lease_next and not self._ahead.kept and not self._asking_ahead
        if not asking:
            return await self._job(op, claim, **body)
        self._asking_ahead = True
        try:
            answer = await self._job(op, claim, lease_next=True, **body)
        finally:
            self._asking_ahead = False
        leased = answer.get("next")
        if isinstance(leased, dict):
            following = self._accept(leased)
            if following is not None:
                self._ahead.keep(following)
        return answer

    async def finish_batch(
        self, claim: Claim, progress: TaskProgress | None, *, lease_next: bool = False
    ) -> None:
        self._forget(claim)
        await self._reporting("finish", claim, lease_next, progress=wire.progress_doc(progress))

    async def finalize(self, claim: Claim) -> None:
        self._forget(claim)
        await self._job("finalize", claim)

    async def fail(self, claim: Claim, code: str, message: str) -> None:
        self._forget(claim)
        await self._job("fail", claim, code=code, message=message)

    async def stop(self, claim: Claim, reason: str) -> None:
        self._forget(claim)
        await self._job("stop", claim, reason=reason)

    async def crashed(self, claim: Claim, message: str) -> None:
        self._forget(claim)
        await self._job("crashed", claim, message=message)
