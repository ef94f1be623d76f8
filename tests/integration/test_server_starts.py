"""The server starts on an empty home and answers its health and metrics endpoints."""

import subprocess
from pathlib import Path

import httpx

from tests.support.server import ARCTERN, LiveServer


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


def test_a_port_in_use_is_reported_before_anything_starts(
    server: LiveServer, tmp_path: Path
) -> None:
    """A second demo on the first one's port: a clear message naming the way out, exit 1,
    and no demo seeded in the new home."""
    home = tmp_path / "second"
    done = subprocess.run(
        [ARCTERN, "serve", "--demo", "--home", str(home), "--port", str(server.port)],
        env={k: v for k, v in server.env.items() if k != "ARCTERN_HOME"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert f"port {server.port}" in done.stderr and f"PORT={server.port + 1}" in done.stderr
    assert "demo" not in done.stdout.lower() and not (home / "demo").exists()


def test_the_banner_links_the_main_pages(server: LiveServer) -> None:
    banner = server.log()
    assert f"{server.url}/files" in banner and f"{server.url}/activity" in banner
