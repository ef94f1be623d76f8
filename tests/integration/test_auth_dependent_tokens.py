"""Portals acting for their users: client-defined scopes, get_scopes, dependent tokens.

A portal (a confidential client) defines its own scope with the Transfer API as a dependent
scope, through the unmodified globus-sdk (``get_scopes`` for the Transfer scope's id, then
``create_scope``). A user logs in to an app asking for the portal's scope: the consent page
lists the Transfer dependency, the portal receives the user's token for its scope and trades
it with ``oauth2_get_dependent_tokens`` for a Transfer token (and, offline, a refresh token)
that works on the Transfer API as that user. Unhappy paths: a token for another resource
server, another client presenting the portal's token, a native app using the grant, and
unknown scopes refused as ``invalid_scope`` by every grant.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import globus_sdk
import httpx
import pytest

from tests.conftest import _database_args
from tests.support.auth_flow import (
    authorize_redirect,
    create_confidential_client,
    create_native_client,
    native_auth_client,
    native_tokens,
)
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(300)

TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"


@dataclass
class Portal:
    server: LiveServer
    client_id: str
    secret: str
    scope: str

    def auth(self) -> globus_sdk.ConfidentialAppAuthClient:
        """The portal's login client (token grants)."""
        return globus_sdk.ConfidentialAppAuthClient(
            self.client_id, self.secret, base_url=f"{self.server.url}/auth/"
        )

    def api(self) -> globus_sdk.AuthClient:
        """The Auth API as the portal itself (HTTP Basic with its secret)."""
        return manage(self.server, self.client_id, self.secret)


def manage(server: LiveServer, client_id: str, secret: str) -> globus_sdk.AuthClient:
    return globus_sdk.AuthClient(
        authorizer=globus_sdk.BasicAuthorizer(client_id, secret),
        base_url=f"{server.url}/auth/",
    )


@pytest.fixture(scope="module")
def portal(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Portal]:
    server = start_server(tmp_path_factory.mktemp("portal"), extra_args=_database_args(request))
    try:
        client_id, secret = create_confidential_client(server, name="Data Portal")
        auth = manage(server, client_id, secret)
        (transfer,) = auth.get_scopes(scope_strings=[TRANSFER_ALL])["scopes"]
        assert transfer["scope_string"] == TRANSFER_ALL
        made = auth.create_scope(
            client_id,
            "Data Portal",
            "Lets the Data Portal move your data",
            "portal",
            dependent_scopes=[globus_sdk.DependentScopeSpec(transfer["id"], False, True)],
        )["scope"]
        scope = made["scope_string"]
        assert scope == f"https://auth.globus.org/scopes/{client_id}/portal"
        assert made["dependent_scopes"] == [
            {"scope": transfer["id"], "optional": False, "requires_refresh_token": True}
        ]
        yield Portal(server, client_id, secret, scope)
    finally:
        server.stop()


def test_get_scopes_returns_documents(portal: Portal) -> None:
    auth = portal.api()
    (doc,) = auth.get_scopes(scope_strings=[portal.scope])["scopes"]
    assert doc["client"] == portal.client_id and doc["name"] == "Data Portal"
    by_id = auth.get_scope(doc["id"])["scope"]
    assert by_id["scope_string"] == portal.scope
    assert auth.get_scopes(ids=[doc["id"]])["scopes"][0]["scope_string"] == portal.scope
    assert auth.get_scopes(scope_strings=["urn:globus:auth:scope:nowhere:all"])["scopes"] == []
    mine = auth.get_scopes()["scopes"]
    assert [d["scope_string"] for d in mine] == [portal.scope]
    with pytest.raises(globus_sdk.AuthAPIError) as taken:
        auth.create_scope(portal.client_id, "Again", "same suffix", "portal")
    assert taken.value.http_status == 409


def test_the_portal_acts_for_its_user(portal: Portal) -> None:
    server = portal.server
    app = create_native_client(server, name="Portal front end")
    tokens = native_tokens(server, client_id=app, scopes=["openid", portal.scope])
    user_token = tokens.by_resource_server[portal.client_id]["access_token"]

    dependent = portal.auth().oauth2_get_dependent_tokens(user_token, refresh_tokens=True)
    transfer = dependent.by_resource_server["transfer.api.globus.org"]
    assert transfer["scope"] == TRANSFER_ALL and transfer["refresh_token"]
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(transfer["access_token"]),
        base_url=f"{server.url}/transfer/",
    )
    found = list(tc.endpoint_search("Demo Collection"))
    assert found and all(d["owner_string"] == DEMO_USERNAME for d in found)
    # The refresh token works for the portal, as the user.
    refreshed = portal.auth().oauth2_refresh_token(transfer["refresh_token"])
    assert refreshed.by_resource_server["transfer.api.globus.org"]["access_token"]
    # Without access_type=offline: no refresh token.
    online = portal.auth().oauth2_get_dependent_tokens(user_token)
    assert "refresh_token" not in online.by_resource_server["transfer.api.globus.org"] or (
        online.by_resource_server["transfer.api.globus.org"]["refresh_token"] is None
    )


def test_the_consent_page_lists_the_dependency(portal: Portal) -> None:
    server = portal.server
    app = create_native_client(server, name="Curious front end")
    auth = native_auth_client(server, app)
    auth.oauth2_start_flow([portal.scope])
    with httpx.Client(timeout=30, follow_redirects=True) as http:
        login = http.get(auth.oauth2_get_authorize_url())
        assert login.url.path == "/auth/login"
        form = dict(re.findall(r'name="(csrf_token|next)" value="([^"]*)"', login.text))
        idp = re.search(r'<option value="([^"]+)"[^>]*>Example University<', login.text)
        assert idp is not None
        consent = http.post(
            f"{server.url}/auth/login",
            data={
                **{k: html.unescape(v) for k, v in form.items()},
                "idp": idp.group(1),
                "username": DEMO_USERNAME,
                "password": DEMO_PASSWORD,
            },
        )
    assert 'value="allow"' in consent.text
    assert "Lets the Data Portal move your data" in consent.text
    assert "Transfer files and manage your collections" in consent.text


def test_dependent_tokens_are_refused_to_anyone_else(portal: Portal) -> None:
    server = portal.server
    app = create_native_client(server, name="Another front end")
    tokens = native_tokens(server, client_id=app, scopes=["openid", portal.scope, TRANSFER_ALL])
    user_token = tokens.by_resource_server[portal.client_id]["access_token"]
    transfer_token = tokens.by_resource_server["transfer.api.globus.org"]["access_token"]

    # A token for the Transfer service is not the portal's to trade.
    with pytest.raises(globus_sdk.AuthAPIError) as wrong_rs:
        portal.auth().oauth2_get_dependent_tokens(transfer_token)
    assert wrong_rs.value.http_status == 400 and wrong_rs.value.raw_json["error"] == "invalid_grant"
    # Another confidential client cannot trade the portal's token.
    other_id, other_secret = create_confidential_client(server, name="Eavesdropper")
    other = globus_sdk.ConfidentialAppAuthClient(
        other_id, other_secret, base_url=f"{server.url}/auth/"
    )
    with pytest.raises(globus_sdk.AuthAPIError) as stolen:
        other.oauth2_get_dependent_tokens(user_token)
    assert stolen.value.raw_json["error"] == "invalid_grant"
    # A native app has no secret: the grant is not for it.
    refused = httpx.post(
        f"{server.url}/auth/v2/oauth2/token",
        data={
            "grant_type": "urn:globus:auth:grant_type:dependent_token",
            "token": user_token,
            "client_id": app,
        },
    )
    assert refused.status_code in (400, 401)
    assert refused.json()["error"] in ("unauthorized_client", "invalid_client")


def test_unknown_scopes_are_invalid_for_every_grant(portal: Portal) -> None:
    server = portal.server
    unknown = [
        f"https://auth.globus.org/scopes/{uuid.uuid4()}/all",
        "urn:globus:auth:scope:transfer.api.globus.org:everything",
        f"https://auth.globus.org/scopes/{portal.client_id}/nonexistent",
    ]
    for scope in unknown:
        with pytest.raises(globus_sdk.AuthAPIError) as client_credentials:
            portal.auth().oauth2_client_credentials_tokens(requested_scopes=scope)
        assert client_credentials.value.raw_json["error"] == "invalid_scope", scope
        app = create_native_client(server, name=f"Typo {uuid.uuid4().hex[:4]}")
        auth = native_auth_client(server, app)
        auth.oauth2_start_flow(["openid", scope])
        target = authorize_redirect(
            server.url, auth.oauth2_get_authorize_url(), DEMO_USERNAME, DEMO_PASSWORD
        )
        assert "error=invalid_scope" in str(target), target
