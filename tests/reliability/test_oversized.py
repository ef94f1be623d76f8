"""Oversized and pathological requests get a clear 4xx quickly without exhausting the server's
memory: huge bodies (declared and chunked), 1,000,000 DATA items, deep nesting, long URLs,
oversized request heads."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.reliability.conftest import Session

MiB = 1 << 20


def peak_rss(pid: int) -> int:
    """The server process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def raw_request(url: str, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(data + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := sock.recv(1 << 16):
            answer += chunk
    return answer


def assert_clear_4xx(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert isinstance(body, dict) and "detail" not in body, body
    assert body.get("code") or body.get("error"), body


def test_oversized_requests_are_refused_quickly(shared: Session) -> None:
    me = shared
    assert me.server.process is not None
    pid = me.server.process.pid
    base = me.api
    client = httpx.Client(headers=me.headers, timeout=60)
    timings: dict[str, float] = {}
    rss_before = peak_rss(pid)

    # 1,000,000 DATA items (about 110 MB of JSON): refused as too large.
    item = (
        '{"DATA_TYPE":"transfer_item","source_path":"/a/%07d","destination_path":"/b/%07d",'
        '"recursive":false}'
    )
    head = json.dumps(
        {"DATA_TYPE": "transfer", "source_endpoint": me.c1, "destination_endpoint": me.c2}
    )[:-1]
    million = head + ',"DATA":[' + ",".join(item % (i, i) for i in range(1_000_000)) + "]}"
    started = time.monotonic()
    response = client.post(
        f"{base}/transfer",
        content=million.encode(),
        headers={"Content-Type": "application/json"},
    )
    timings["1M items"] = time.monotonic() - started
    assert_clear_4xx(response, 413)
    del million

    # A chunked body with no Content-Length: the limit holds while streaming.
    def endless() -> Iterator[bytes]:
        yield b'{"DATA_TYPE":"transfer","DATA":["'
        for _ in range(200):
            yield b"x" * MiB

    started = time.monotonic()
    try:
        response = client.post(
            f"{base}/transfer", content=endless(), headers={"Content-Type": "application/json"}
        )
        assert_clear_4xx(response, 413)
    except httpx.HTTPError:
        pass  # the server may close the connection after answering 413 mid-upload
    timings["200 MiB chunked"] = time.monotonic() - started

    # Deep nesting: a short body that would blow a recursive parser.
    for depth in (1_000, 100_000):
        started = time.monotonic()
        nested = '{"DATA_TYPE":"transfer","DATA":' + "[" * depth + "]" * depth + "}"
        response = client.post(
            f"{base}/transfer", content=nested, headers={"Content-Type": "application/json"}
        )
        timings[f"nesting {depth}"] = time.monotonic() - started
        assert_clear_4xx(response, 400, 413)
        response = client.post(
            f"{base}/operation/endpoint/{me.c2}/mkdir",
            content='{"path":' + "[" * depth + "]" * depth + "}",
            headers={"Content-Type": "application/json"},
        )
        assert_clear_4xx(response, 400, 413)

    # Huge strings in otherwise valid fields.
    started = time.monotonic()
    response = client.post(
        f"{base}/transfer",
        json={
            "DATA_TYPE": "transfer",
            "source_endpoint": me.c1,
            "destination_endpoint": me.c2,
            "label": "L" * (5 * MiB),
            "DATA": [
                {
                    "DATA_TYPE": "transfer_item",
                    "source_path": "/" + "p" * (5 * MiB),
                    "destination_path": "/x",
                }
            ],
        },
    )
    timings["5 MiB strings"] = time.monotonic() - started
    assert_clear_4xx(response, 400, 413)
    response = client.post(
        f"{base}/bookmark", json={"endpoint_id": me.c2, "path": "/", "name": "n" * (2 * MiB)}
    )
    assert_clear_4xx(response, 400, 413)

    # A 60 KB query string.
    response = client.get(
        f"{base}/operation/endpoint/{me.c1}/ls", params={"path": "/" + "q" * 60_000}
    )
    assert response.status_code in (400, 413, 414, 431), response.status_code
    # Oversized request heads (request line plus headers over 64 KiB): 431 with a JSON error
    # as soon as the limit is passed, and the answer is readable (the server drains the rest
    # of the head instead of resetting the connection). A head just under the limit is fine.
    response = client.get(f"{base}/task_list", headers={"X-Fine": "f" * 60_000})
    assert response.status_code == 200, response.status_code
    for name, headers in (
        ("1 MiB header", {"X-Big": "h" * MiB}),
        ("1,000 headers", {f"X-H{i}": "v" * 100 for i in range(1000)}),
        ("16 MiB header", {"X-Big": "h" * (16 * MiB)}),
    ):
        started = time.monotonic()
        response = client.get(f"{base}/task_list", headers=headers)
        timings[name] = time.monotonic() - started
        assert_clear_4xx(response, 431)
    started = time.monotonic()
    answer = raw_request(me.server.url, b"GET /transfer/v0.10/task_list?q=" + b"q" * MiB)
    timings["1 MiB request line"] = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]

    # Auth endpoints: a huge form body and a huge JSON body.
    auth = f"{me.server.url}/auth/v2/oauth2/token"
    started = time.monotonic()
    response = httpx.post(
        auth,
        content=b"grant_type=" + b"a" * (120 * MiB),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    timings["auth 120 MiB form"] = time.monotonic() - started
    assert 400 <= response.status_code < 500, response.status_code
    response = httpx.post(
        f"{me.server.url}/auth/v2/api/projects",
        content=b'{"project":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {me.auth_token}"},
        timeout=60,
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])

    # The server is fine afterwards and its peak memory stayed bounded.
    assert client.get(f"{base}/task_list").status_code == 200
    grown = peak_rss(pid) - rss_before
    print(
        "\nRELIABILITY oversized: "
        + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
        + f"; peak RSS grew by {grown / MiB:.0f} MiB"
    )
    assert all(t < 10 for t in timings.values()), timings
    assert grown < 300 * MiB, grown
