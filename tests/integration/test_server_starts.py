"""The server starts on an empty home and answers its health and metrics endpoints."""

import httpx

from tests.support.server import LiveServer


def test_health_and_metrics(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    # Metrics are off unless a token is configured (tests/reliability/test_security_server.py).
    assert httpx.get(f"{server.url}/metrics").status_code == 404


def test_home_is_initialised(server: LiveServer) -> None:
    on_sqlite = "--database" not in server.extra_args
    assert (server.home / "arctern.db").exists() == on_sqlite
    assert (server.home / "secret.key").stat().st_mode & 0o077 == 0


def test_unknown_page_is_a_readable_404(server: LiveServer) -> None:
    page = httpx.get(f"{server.url}/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "Page not found" in page.text and "<html" in page.text
    api = httpx.get(f"{server.url}/no/such/page")
    assert api.status_code == 404
    assert api.json()["code"] == "ClientError.NotFound"
