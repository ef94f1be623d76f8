"""A listening agent's credential checks: overlapping checks share one request to the
deployment, a valid answer is reused for a bounded time, nothing else is remembered."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from arctern.connect.agent.credentials import CredentialChecks


class Deployment:
    """Answers ``verify`` requests as told, counting them; each waits for ``release``."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.answers: dict[str, dict[str, Any] | None] = {}
        self.release = asyncio.Event()
        self.release.set()

    async def ask(self, token: str) -> dict[str, Any] | None:
        self.asked.append(token)
        await self.release.wait()
        return self.answers.get(token)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


VALID = {"valid": True, "collection_id": "c1", "guard": None}


async def test_overlapping_checks_of_one_credential_share_one_request() -> None:
    deployment = Deployment()
    deployment.answers["t1"] = VALID
    deployment.release.clear()
    checks = CredentialChecks(deployment.ask)
    waiting = [asyncio.ensure_future(checks.check("t1")) for _ in range(4)]
    await asyncio.sleep(0)
    deployment.release.set()
    assert await asyncio.gather(*waiting) == [VALID] * 4
    assert deployment.asked == ["t1"]


async def test_a_valid_answer_is_reused_only_for_its_time() -> None:
    deployment = Deployment()
    deployment.answers["t1"] = VALID
    clock = Clock()
    checks = CredentialChecks(deployment.ask, reuse_seconds=5.0, clock=clock)
    assert await checks.check("t1") == VALID
    clock.now += 4.9
    assert await checks.check("t1") == VALID
    assert deployment.asked == ["t1"]
    # The task ended meanwhile: once the reuse time is over the deployment is asked again.
    deployment.answers["t1"] = {"valid": False}
    clock.now += 0.2
    assert await checks.check("t1") is None
    assert deployment.asked == ["t1", "t1"]


async def test_refusals_and_failed_requests_are_not_remembered() -> None:
    deployment = Deployment()
    checks = CredentialChecks(deployment.ask)
    deployment.answers["t2"] = {"valid": False}
    assert await checks.check("t2") is None
    assert await checks.check("t3") is None  # the deployment could not be asked (None)
    deployment.answers["t2"] = VALID
    deployment.answers["t3"] = VALID
    assert await checks.check("t2") == VALID
    assert await checks.check("t3") == VALID
    assert deployment.asked == ["t2", "t3", "t2", "t3"]


async def test_credentials_are_checked_apart() -> None:
    deployment = Deployment()
    deployment.answers["t1"] = VALID
    checks = CredentialChecks(deployment.ask)
    assert await checks.check("t1") == VALID
    assert await checks.check("t4") is None
    assert deployment.asked == ["t1", "t4"]


async def test_a_waiter_that_gives_up_does_not_cancel_the_others() -> None:
    deployment = Deployment()
    deployment.answers["t1"] = VALID
    deployment.release.clear()
    checks = CredentialChecks(deployment.ask)
    first = asyncio.ensure_future(checks.check("t1"))
    second = asyncio.ensure_future(checks.check("t1"))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    deployment.release.set()
    assert await second == VALID
    assert deployment.asked == ["t1"]
