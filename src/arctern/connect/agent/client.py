"""The agent's HTTP client for the deployment's agent API (``/agent/v1``)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx

from arctern import __version__


class CredentialRefused(Exception):
    """401 from the deployment: the endpoint was deleted or its credentials rotated."""


class AgentApiError(Exception):
    pass


def agent_api_url(deployment_url: str) -> str:
    return deployment_url.rstrip("/") + "/agent/v1"


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code == 401:
        try:
            message = response.json().get("message", "")
        except ValueError:
            message = response.text
        raise CredentialRefused(message or "the endpoint credential was refused")
    if response.status_code >= 400:
        try:
            doc = response.json()
            message = f"{doc.get('code')}: {doc.get('message')}"
        except ValueError:
            message = response.text[:500]
        raise AgentApiError(f"HTTP {response.status_code} from the deployment: {message}")
    body = response.json()
    if not isinstance(body, dict):
        raise AgentApiError("The deployment sent a malformed answer")
    return body


def exchange_setup_key(
    deployment_url: str, setup_key: str, timeout: float = 30.0
) -> dict[str, Any]:
    response = httpx.post(
        agent_api_url(deployment_url) + "/setup",
        json={"setup_key": setup_key, "agent_version": __version__},
        timeout=timeout,
    )
    if response.status_code == 401:
        raise CredentialRefused(response.json().get("message", "the setup key was refused"))
    return _check(response)


def register_endpoint(
    deployment_url: str, user_token: str, name: str, timeout: float = 30.0
) -> dict[str, Any]:
    """A new endpoint owned by the token's user, with its credential (login-link setup)."""
    response = httpx.post(
        agent_api_url(deployment_url) + "/register",
        json={"name": name, "agent_version": __version__},
        headers={"Authorization": f"Bearer {user_token}"},
        timeout=timeout,
    )
    return _check(response)


class AgentClient:
    """Synchronous calls for the CLI commands; ``AsyncAgentClient`` for the daemon."""

    def __init__(self, deployment_url: str, credential: str, timeout: float = 30.0) -> None:
        self.base = agent_api_url(deployment_url)
        self.headers = {"Authorization": f"Bearer {credential}"}
        self.timeout = timeout

    def endpoint(self) -> dict[str, Any]:
        return _check(
            httpx.get(self.base + "/endpoint", headers=self.headers, timeout=self.timeout)
        )

    def add_collection(self, name: str, description: str = "") -> dict[str, Any]:
        return _check(
            httpx.post(
                self.base + "/collections",
                json={"name": name, "description": description},
                headers=self.headers,
                timeout=self.timeout,
            )
        )


# Request bodies at least this large go compressed, where the deployment accepts it.
COMPRESS_MIN_BYTES = 8 * 1024


async def post_json(
    http: httpx.AsyncClient, path: str, payload: Any, *, compress: bool
) -> httpx.Response:
    """POST ``payload`` as JSON; gzip-compressed (level 1: a thousand paths' worth, ~220 KB,
    in about a millisecond) when ``compress`` and it is large."""
    # Encoded as httpx's ``json=`` does.
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    headers = {"Content-Type": "application/json"}
    if compress and len(raw) >= COMPRESS_MIN_BYTES:
        raw = gzip.compress(raw, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    return await http.post(path, content=raw, headers=headers)


class AsyncAgentClient:
    def __init__(self, deployment_url: str, credential: str, poll_hold: float) -> None:
        self.poll_hold = poll_hold
        # Whether the deployment inflates compressed request bodies (``endpoint()`` says).
        self.compress = False
        self.http = httpx.AsyncClient(
            base_url=agent_api_url(deployment_url),
            headers={"Authorization": f"Bearer {credential}"},
            # A held poll answers within the hold; the margin covers a busy server.
            timeout=httpx.Timeout(30.0, read=poll_hold + 30.0),
        )

    async def poll(self) -> tuple[list[dict[str, Any]], bool]:
        """Relayed requests to run, and whether new work is waiting to be claimed."""
        body = _check(await self.http.post("/poll", params={"hold": str(self.poll_hold)}))
        requests = body.get("requests")
        return (requests if isinstance(requests, list) else []), body.get("work") is True

    async def answer(self, request_id: str, answer: dict[str, Any]) -> None:
        path = f"/requests/{request_id}/answer"
        _check(await post_json(self.http, path, answer, compress=self.compress))

    async def endpoint(self) -> dict[str, Any]:
        description = _check(await self.http.get("/endpoint"))
        self.compress = "gzip" in (description.get("request_encodings") or [])
        return description

    async def announce(self, address: str | None, fingerprint: str | None) -> None:
        _check(
            await self.http.post(
                "/data/announce", json={"address": address, "fingerprint": fingerprint}
            )
        )

    async def verify_data_token(self, token: str) -> dict[str, Any]:
        return _check(await self.http.post("/data/verify", json={"token": token}))

    async def offline(self) -> None:
        _check(await self.http.post("/offline", timeout=5.0))

    async def close(self) -> None:
        await self.http.aclose()
