"""connect(): service discovery from one URL, fallbacks, errors, and the GLOBUS_SDK_* export."""

from __future__ import annotations

import pytest
import requests
import responses

from arctern_client import ConnectError, Deployment, connect
from tests.client.conftest import BASE


def test_connect_uses_the_discovery_document(http: responses.RequestsMock) -> None:
    http.get(
        f"{BASE}/.well-known/arctern.json",
        json={
            "auth_url": "https://auth.arctern.test/auth",
            "transfer_url": "https://xfer.arctern.test/transfer/v0.10",
            "version": "0.1.0",
        },
    )
    deployment = connect(BASE + "/", export_environment=False)
    # The auth URL needs its trailing slash and the transfer URL must not carry v0.10.
    assert deployment.auth_url == "https://auth.arctern.test/auth/"
    assert deployment.transfer_url == "https://xfer.arctern.test/transfer/"
    assert deployment.version == "0.1.0"
    assert deployment.base_url == BASE


@pytest.mark.parametrize("status", [404, 200])
def test_a_url_without_the_discovery_document_is_refused(
    http: responses.RequestsMock, status: int
) -> None:
    http.get(f"{BASE}/.well-known/arctern.json", status=status, body="<html>not json</html>")
    with pytest.raises(ConnectError, match="not an Arctern server's address"):
        connect(BASE, export_environment=False)


@pytest.mark.parametrize("page", ["/files", "/auth", "/activity"])
def test_a_page_url_is_refused_with_the_base_address(
    http: responses.RequestsMock, page: str
) -> None:
    http.get(f"{BASE}{page}/.well-known/arctern.json", status=404)
    with pytest.raises(ConnectError, match=f"Did you mean '{BASE}'"):
        connect(f"{BASE}{page}/", export_environment=False)


def test_unreachable_server_is_a_clear_error(http: responses.RequestsMock) -> None:
    http.get(
        f"{BASE}/.well-known/arctern.json", body=requests.ConnectionError("connection refused")
    )
    with pytest.raises(ConnectError, match="Cannot reach the Arctern server at https://arctern"):
        connect(BASE, export_environment=False)


def test_a_non_url_is_rejected() -> None:
    with pytest.raises(ConnectError, match="not a URL"):
        connect("arctern.example.org", export_environment=False)


def test_export_points_globus_sdk_at_the_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GLOBUS_SDK_ENVIRONMENT",
        "GLOBUS_SDK_SERVICE_URL_AUTH",
        "GLOBUS_SDK_SERVICE_URL_TRANSFER",
    ):
        # setenv first so that monkeypatch restores the original state after export().
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    deployment = Deployment(auth_url=f"{BASE}/auth/", transfer_url=f"{BASE}/transfer/")
    deployment.export()
    import globus_sdk

    # A plain SDK client built afterwards, with no arguments, talks to the deployment.
    assert globus_sdk.TransferClient().base_url == f"{BASE}/transfer/"
    assert Deployment.from_sdk_environment() == Deployment(
        auth_url=f"{BASE}/auth/", transfer_url=f"{BASE}/transfer/", environment="arctern"
    )
    # Going back to Globus removes the overrides again.
    Deployment.globus().export()
    assert globus_sdk.TransferClient().base_url == "https://transfer.api.globus.org/"


def test_globus_deployment_ignores_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", f"{BASE}/auth/")
    globus = connect("globus", export_environment=False)
    assert globus.auth_url == "https://auth.globus.org/"
    assert globus.is_globus
    assert connect(None, export_environment=False) == globus


def test_export_into_a_given_mapping() -> None:
    environ: dict[str, str] = {}
    Deployment(auth_url=f"{BASE}/auth/", transfer_url=f"{BASE}/transfer/").export(environ)
    assert environ == {
        "GLOBUS_SDK_ENVIRONMENT": "arctern",
        "GLOBUS_SDK_SERVICE_URL_AUTH": f"{BASE}/auth/",
        "GLOBUS_SDK_SERVICE_URL_TRANSFER": f"{BASE}/transfer/",
    }
