"""OAuth2/OIDC flows against a live server with the unmodified globus-sdk."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import globus_sdk
import httpx
import pytest

from tests.support.auth_flow import (
    authorize_over_http,
    authorize_redirect,
    create_confidential_client,
    create_native_client,
    native_auth_client,
    native_tokens,
)
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer

TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"
CALLBACK = "https://app.example.org/callback"
VIEW_IDENTITY_SET = "urn:globus:auth:scope:auth.globus.org:view_identity_set"


def confidential_client(
    server: LiveServer, client_id: str, secret: str
) -> globus_sdk.ConfidentialAppAuthClient:
    return globus_sdk.ConfidentialAppAuthClient(client_id, secret, base_url=f"{server.url}/auth/")


def test_native_app_flow_refresh_and_revoke(server: LiveServer) -> None:
    client_id = create_native_client(server)
    tokens = native_tokens(server, client_id=client_id)

    assert set(tokens.by_resource_server) == {"auth.globus.org", "transfer.api.globus.org"}
    transfer = tokens.by_resource_server["transfer.api.globus.org"]
    assert transfer["scope"] == TRANSFER_SCOPE
    assert transfer["refresh_token"]
    assert tokens.by_resource_server["auth.globus.org"]["scope"] == "openid profile email"
    claims = tokens.decode_id_token()
    assert claims["aud"] == client_id
    assert claims["preferred_username"] == DEMO_USERNAME

    auth = native_auth_client(server, client_id)
    refreshed: list[globus_sdk.OAuthTokenResponse] = []
    authorizer = globus_sdk.RefreshTokenAuthorizer(
        transfer["refresh_token"], auth, on_refresh=refreshed.append
    )
    header = authorizer.get_authorization_header()
    assert header is not None and header.startswith("Bearer ")
    assert len(refreshed) == 1
    new = refreshed[0].by_resource_server["transfer.api.globus.org"]
    assert new["access_token"] != transfer["access_token"]
    assert refreshed[0]["other_tokens"] == []
    # As on Globus, refresh tokens are not rotated: the response carries the same one, and a
    # script that saved it once keeps using it.
    assert new["refresh_token"] == transfer["refresh_token"]
    again = auth.oauth2_refresh_token(transfer["refresh_token"])
    third = again.by_resource_server["transfer.api.globus.org"]
    assert third["access_token"] not in (new["access_token"], transfer["access_token"])
    assert third["refresh_token"] == transfer["refresh_token"]
    for access in (new["access_token"], third["access_token"]):
        tc = globus_sdk.TransferClient(
            authorizer=globus_sdk.AccessTokenAuthorizer(access),
            base_url=f"{server.url}/transfer/",
        )
        assert tc.task_list()["DATA"] is not None

    # Revoked, it is spent for good.
    auth.oauth2_revoke_token(transfer["refresh_token"])
    with pytest.raises(globus_sdk.AuthAPIError) as spent:
        auth.oauth2_refresh_token(transfer["refresh_token"])
    assert spent.value.http_status == 400
    assert spent.value.raw_json["error"] == "invalid_grant"

    # userinfo works with the auth token, and stops working once the token is revoked.
    auth_token = tokens.by_resource_server["auth.globus.org"]["access_token"]
    userinfo = globus_sdk.AuthClient(
        base_url=f"{server.url}/auth/", authorizer=globus_sdk.AccessTokenAuthorizer(auth_token)
    ).userinfo()
    assert userinfo["preferred_username"] == DEMO_USERNAME
    assert userinfo["sub"] == claims["sub"]
    auth.oauth2_revoke_token(auth_token)
    denied = httpx.get(
        f"{server.url}/auth/v2/oauth2/userinfo", headers={"Authorization": f"Bearer {auth_token}"}
    )
    assert denied.status_code == 401
    assert denied.json()["errors"][0]["code"] == "UNAUTHORIZED"


def _confidential_code(
    server: LiveServer, client: globus_sdk.ConfidentialAppAuthClient, scopes: list[str]
) -> str:
    client.oauth2_start_flow(CALLBACK, scopes, refresh_tokens=True)
    return authorize_over_http(
        server.url, client.oauth2_get_authorize_url(), DEMO_USERNAME, DEMO_PASSWORD
    )


def test_confidential_code_flow_introspect_and_revoke(server: LiveServer) -> None:
    client_id, secret = create_confidential_client(server, redirect_uris=(CALLBACK,))
    client = confidential_client(server, client_id, secret)
    code = _confidential_code(server, client, ["openid", "email", TRANSFER_SCOPE])
    tokens = client.oauth2_exchange_code_for_tokens(code)
    transfer = tokens.by_resource_server["transfer.api.globus.org"]

    info = client.oauth2_token_introspect(
        transfer["access_token"], include="session_info,identity_set"
    )
    assert info["active"] is True
    assert info["scope"] == TRANSFER_SCOPE
    assert info["username"] == DEMO_USERNAME
    assert info["client_id"] == client_id
    assert info["identity_set"] == [info["sub"]]
    assert info["sub"] in info["session_info"]["authentications"]

    client.oauth2_revoke_token(transfer["access_token"])
    assert client.oauth2_token_introspect(transfer["access_token"])["active"] is False
    # The refresh token is a separate credential and still valid until revoked too.
    assert validate(server, client_id, secret, transfer["refresh_token"]) is True
    client.oauth2_revoke_token(transfer["refresh_token"])
    assert validate(server, client_id, secret, transfer["refresh_token"]) is False


def validate(server: LiveServer, client_id: str, secret: str, token: str) -> bool:
    """The legacy token/validate call the CLI makes before every command."""
    response = httpx.post(
        f"{server.url}/auth/v2/oauth2/token/validate",
        data={"token": token},
        auth=(client_id, secret),
    )
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


def test_reused_code_is_rejected_and_revokes_its_tokens(server: LiveServer) -> None:
    client_id, secret = create_confidential_client(server, redirect_uris=(CALLBACK,))
    client = confidential_client(server, client_id, secret)
    code = _confidential_code(server, client, [TRANSFER_SCOPE])
    tokens = client.oauth2_exchange_code_for_tokens(code)
    with pytest.raises(globus_sdk.AuthAPIError) as reused:
        client.oauth2_exchange_code_for_tokens(code)
    assert reused.value.http_status == 400
    assert reused.value.raw_json["error"] == "invalid_grant"
    assert "already used" in reused.value.raw_json["error_description"]
    access = tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
    assert client.oauth2_token_introspect(access)["active"] is False

    # A code that was never issued (or is cut short) is told apart from the two above.
    with pytest.raises(globus_sdk.AuthAPIError) as unknown:
        client.oauth2_exchange_code_for_tokens(code[:-4])
    assert unknown.value.http_status == 400
    assert "copied completely" in unknown.value.raw_json["error_description"]


def test_wrong_pkce_verifier_is_rejected(server: LiveServer) -> None:
    client_id = create_native_client(server)
    auth = native_auth_client(server, client_id)
    auth.oauth2_start_flow([TRANSFER_SCOPE])
    code = authorize_over_http(
        server.url, auth.oauth2_get_authorize_url(), DEMO_USERNAME, DEMO_PASSWORD
    )
    response = httpx.post(
        f"{server.url}/auth/v2/oauth2/token",
        data={
            "client_id": client_id,
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": "x" * 43,
            "redirect_uri": f"{server.url}/auth/v2/web/auth-code",
        },
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert "challenge" in body["error_description"].lower()


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


@pytest.mark.parametrize("method", [None, "plain"])
def test_public_clients_must_use_pkce_s256(server: LiveServer, method: str | None) -> None:
    client_id = create_native_client(server)
    params = {
        "client_id": client_id,
        "redirect_uri": f"{server.url}/auth/v2/web/auth-code",
        "scope": TRANSFER_SCOPE,
        "state": "abc",
        "response_type": "code",
    }
    if method:
        params.update(code_challenge="a" * 43, code_challenge_method=method)
    response = httpx.get(f"{server.url}/auth/v2/oauth2/authorize?{urlencode(params)}")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["abc"]


def test_foreign_redirect_uri_is_refused_without_redirecting(server: LiveServer) -> None:
    client_id = create_native_client(server)
    _, challenge = _pkce_pair()
    params = {
        "client_id": client_id,
        "redirect_uri": "https://attacker.example.net/steal",
        "scope": TRANSFER_SCOPE,
        "response_type": "code",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    response = httpx.get(f"{server.url}/auth/v2/oauth2/authorize?{urlencode(params)}")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "not supported by client" in response.text


def test_native_clients_may_redirect_to_any_loopback_port(server: LiveServer) -> None:
    client_id = create_native_client(server)
    auth = native_auth_client(server, client_id)
    auth.oauth2_start_flow([TRANSFER_SCOPE], redirect_uri="http://127.0.0.1:54321")
    target = authorize_redirect(
        server.url, auth.oauth2_get_authorize_url(), DEMO_USERNAME, DEMO_PASSWORD
    )
    assert target.host == "127.0.0.1" and target.port == 54321
    code = parse_qs(target.query.decode())["code"][0]
    tokens = auth.oauth2_exchange_code_for_tokens(code)
    assert "transfer.api.globus.org" in tokens.by_resource_server


def test_consent_denied_redirects_with_access_denied(server: LiveServer) -> None:
    client_id = create_native_client(server, name="Denied App")
    auth = native_auth_client(server, client_id)
    auth.oauth2_start_flow([TRANSFER_SCOPE], redirect_uri="http://localhost:8123")
    target = authorize_redirect(
        server.url, auth.oauth2_get_authorize_url(), DEMO_USERNAME, DEMO_PASSWORD, decision="deny"
    )
    assert parse_qs(target.query.decode())["error"] == ["access_denied"]


def test_wrong_client_secret_is_invalid_client(server: LiveServer) -> None:
    client_id, _secret = create_confidential_client(server)
    client = confidential_client(server, client_id, "not-the-secret")
    with pytest.raises(globus_sdk.AuthAPIError) as failed:
        client.oauth2_client_credentials_tokens(requested_scopes=TRANSFER_SCOPE)
    assert failed.value.http_status == 401
    assert failed.value.raw_json["error"] == "invalid_client"


def test_client_credentials_basic_and_post(server: LiveServer) -> None:
    client_id, secret = create_confidential_client(server)
    client = confidential_client(server, client_id, secret)
    tokens = client.oauth2_client_credentials_tokens(requested_scopes=TRANSFER_SCOPE)
    assert list(tokens.by_resource_server) == ["transfer.api.globus.org"]
    assert tokens["other_tokens"] == []
    assert "refresh_token" not in tokens.data

    authorizer = globus_sdk.ClientCredentialsAuthorizer(client, TRANSFER_SCOPE)
    assert authorizer.get_authorization_header().startswith("Bearer ")

    posted = httpx.post(
        f"{server.url}/auth/v2/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "scope": "openid urn:globus:auth:scope:auth.globus.org:view_identity_set",
            "client_id": client_id,
            "client_secret": secret,
        },
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["resource_server"] == "auth.globus.org"


def test_native_clients_cannot_use_client_credentials(server: LiveServer) -> None:
    client_id = create_native_client(server)
    response = httpx.post(
        f"{server.url}/auth/v2/oauth2/token",
        data={"grant_type": "client_credentials", "scope": TRANSFER_SCOPE, "client_id": client_id},
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_client", "unauthorized_client")


def test_token_endpoint_errors_are_oauth_documents(server: LiveServer) -> None:
    response = httpx.post(f"{server.url}/auth/v2/oauth2/token", data={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    response = httpx.post(f"{server.url}/auth/v2/oauth2/token", content=b"")
    assert response.status_code == 400
    assert "error" in response.json()


def test_discovery_and_jwks(server: LiveServer) -> None:
    config = httpx.get(f"{server.url}/auth/.well-known/openid-configuration").json()
    assert config["jwks_uri"] == f"{server.url}/auth/jwk.json"
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = httpx.get(config["jwks_uri"]).json()["keys"]
    assert keys[0]["kty"] == "RSA" and "d" not in keys[0]
    # Stable across requests (persisted in the home).
    assert httpx.get(config["jwks_uri"]).json()["keys"][0]["n"] == keys[0]["n"]
    assert (server.home / "auth-signing-key.pem").stat().st_mode & 0o077 == 0


def test_auth_url_without_trailing_slash_still_reaches_the_code_page(server: LiveServer) -> None:
    client_id = create_native_client(server)
    auth = native_auth_client(server, client_id)
    # What UserApp/globus-cli build from GLOBUS_SDK_SERVICE_URL_AUTH=<server>/auth (no slash).
    auth.oauth2_start_flow([TRANSFER_SCOPE], redirect_uri=f"{server.url}/authv2/web/auth-code")
    code = authorize_over_http(
        server.url, auth.oauth2_get_authorize_url(), DEMO_USERNAME, DEMO_PASSWORD
    )
    assert (
        "transfer.api.globus.org" in auth.oauth2_exchange_code_for_tokens(code).by_resource_server
    )


def test_client_identity_userinfo(server: LiveServer) -> None:
    """globus-cli in client-identity mode runs whoami with a client_credentials token."""
    client_id, secret = create_confidential_client(server, name="Robot")
    client = confidential_client(server, client_id, secret)
    tokens = client.oauth2_client_credentials_tokens(
        requested_scopes="openid profile email " + VIEW_IDENTITY_SET
    )
    access = tokens.by_resource_server["auth.globus.org"]["access_token"]
    info = globus_sdk.AuthClient(
        base_url=f"{server.url}/auth/", authorizer=globus_sdk.AccessTokenAuthorizer(access)
    ).userinfo()
    assert info["sub"] == client_id
    assert info["preferred_username"] == f"{client_id}@clients.auth.globus.org"
    assert info["name"] == "Robot"


def test_codes_are_bound_to_client_and_redirect_uri(server: LiveServer) -> None:
    client_id, secret = create_confidential_client(server, redirect_uris=(CALLBACK,))
    other_id, other_secret = create_confidential_client(server, redirect_uris=(CALLBACK,))
    client = confidential_client(server, client_id, secret)
    code = _confidential_code(server, client, [TRANSFER_SCOPE])

    def exchange(auth: tuple[str, str], redirect_uri: str) -> httpx.Response:
        return httpx.post(
            f"{server.url}/auth/v2/oauth2/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            auth=auth,
        )

    stolen = exchange((other_id, other_secret), CALLBACK)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    wrong_uri = exchange((client_id, secret), "https://app.example.org/other")
    assert wrong_uri.status_code == 400 and wrong_uri.json()["error"] == "invalid_grant"
    # Neither failed attempt used the code up.
    assert exchange((client_id, secret), CALLBACK).status_code == 200
