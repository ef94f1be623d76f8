"""The agent's work source: the pool's ``WorkSource`` protocol over ``/agent/v1/work``.

The deployment decides what this endpoint may lease (from its credential); the agent names
its worker so that it renews and hands back only its own leases.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from arctern.connect.agent.client import _check
from arctern.worker.leases import Claim


class HttpWorkSource:
    def __init__(self, http: httpx.AsyncClient, worker: str) -> None:
        self.http = http
        self.worker = worker

    @staticmethod
    def _claim_body(claim: Claim) -> dict[str, Any]:
        return {"kind": claim.kind, "task_id": str(claim.task_id), "batch_id": claim.batch_id}

    async def claim(self) -> Claim | None:
        body = _check(await self.http.post("/work/lease", json={"worker": self.worker}))
        raw = body.get("claim")
        if not isinstance(raw, dict):
            return None
        return Claim(str(raw["kind"]), uuid.UUID(str(raw["task_id"])), raw.get("batch_id"))

    async def renew(self, claim: Claim) -> str | None:
        """Extend the lease; the reason to stop the job, or None to carry on."""
        body = _check(
            await self.http.post(
                "/work/renew", json={"worker": self.worker, "claim": self._claim_body(claim)}
            )
        )
        stop = body.get("stop")
        return str(stop) if stop else None

    async def release(self, claim: Claim) -> None:
        _check(
            await self.http.post(
                "/work/release", json={"worker": self.worker, "claim": self._claim_body(claim)}
            )
        )
