"""Globus Auth /v2/api through globus_sdk.AuthClient: identities, consents, projects, clients."""

from __future__ import annotations

import globus_sdk
import httpx
import pytest

from tests.support.auth_flow import native_tokens
from tests.support.server import DEMO_USERNAME, LiveServer

MANAGE_PROJECTS = "urn:globus:auth:scope:auth.globus.org:manage_projects"
TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"
CLI_TEMPLATE = "95fdeba8-fac2-42bd-a357-e068d82ff78e"


@pytest.fixture(scope="module")
def developer_tokens(server: LiveServer) -> globus_sdk.OAuthTokenResponse:
    return native_tokens(server, scopes=["openid", "profile", "email", MANAGE_PROJECTS])


def auth_client(server: LiveServer, tokens: globus_sdk.OAuthTokenResponse) -> globus_sdk.AuthClient:
    access = tokens.by_resource_server["auth.globus.org"]["access_token"]
    return globus_sdk.AuthClient(
        base_url=f"{server.url}/auth/", authorizer=globus_sdk.AccessTokenAuthorizer(access)
    )


def test_get_identities_by_username_and_id(
    server: LiveServer, developer_tokens: globus_sdk.OAuthTokenResponse
) -> None:
    client = auth_client(server, developer_tokens)
    by_name = client.get_identities(usernames=[DEMO_USERNAME, "nobody@example.edu"])
    assert [i["username"] for i in by_name["identities"]] == [DEMO_USERNAME]
    identity = by_name["identities"][0]
    assert identity["status"] == "used"
    assert identity["organization"] == "Example University"
    by_id = client.get_identities(ids=[identity["id"]])
    assert by_id["identities"][0]["username"] == DEMO_USERNAME
    assert identity["id"] == developer_tokens.decode_id_token()["sub"]


def test_provisioning_creates_unused_identities_that_accounts_claim(
    server: LiveServer, developer_tokens: globus_sdk.OAuthTokenResponse
) -> None:
    client = auth_client(server, developer_tokens)
    found = client.get_identities(usernames="newcomer@example.edu", provision=True)["identities"]
    assert [(i["username"], i["status"]) for i in found] == [("newcomer@example.edu", "unused")]
    unknown_domain = client.get_identities(usernames="x@unknown.example", provision=True)
    assert unknown_domain["identities"] == []
    created = server.admin(
        "user", "create", "newcomer@example.edu", "--password-stdin", input="pw-newcomer\n"
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == found[0]["id"]
    again = client.get_identities(ids=found[0]["id"])["identities"][0]
    assert again["status"] == "used"


def test_consents_list_the_granted_scopes(
    server: LiveServer, developer_tokens: globus_sdk.OAuthTokenResponse
) -> None:
    client = auth_client(server, developer_tokens)
    sub = developer_tokens.decode_id_token()["sub"]
    mine = client.get_consents(sub)
    names = {c["scope_name"] for c in mine["consents"]}
    assert {"openid", MANAGE_PROJECTS} <= names
    forest = mine.to_forest()
    assert forest.nodes
    everything = client.get_consents(sub, all=True)
    assert len(everything["consents"]) >= len(mine["consents"])


def test_unauthenticated_and_wrong_scope_calls(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/auth/v2/api/projects")
    assert response.status_code == 401
    body = response.json()
    assert body["errors"][0]["code"] == "UNAUTHORIZED"
    assert "detail" not in body

    tokens = native_tokens(server, scopes=["openid", TRANSFER_SCOPE])
    auth = auth_client(server, tokens)
    with pytest.raises(globus_sdk.AuthAPIError) as denied:
        auth.get_projects()
    assert denied.value.http_status == 403
    transfer_token = tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
    wrong_rs = httpx.get(
        f"{server.url}/auth/v2/api/identities",
        params={"usernames": DEMO_USERNAME},
        headers={"Authorization": f"Bearer {transfer_token}"},
    )
    assert wrong_rs.status_code == 403


def test_projects_clients_and_credentials(
    server: LiveServer, developer_tokens: globus_sdk.OAuthTokenResponse
) -> None:
    client = auth_client(server, developer_tokens)
    sub = developer_tokens.decode_id_token()["sub"]
    project = client.create_project("SDK project", "dev@example.edu", admin_ids=[sub])["project"]
    assert project["display_name"] == "SDK project"
    assert project["admins"]["identities"][0]["username"] == DEMO_USERNAME
    assert project["id"] in {p["id"] for p in client.get_projects()["projects"]}
    assert client.get_project(project["id"])["project"]["contact_email"] == "dev@example.edu"
    updated = client.update_project(project["id"], display_name="Renamed")["project"]
    assert updated["display_name"] == "Renamed"

    native = client.create_client(
        "SDK native app",
        project["id"],
        public_client=True,
        redirect_uris=["https://app.example.org/cb"],
    )["client"]
    assert native["public_client"] is True
    assert native["client_type"] == "public_installed_client"
    assert native["grant_types"] == ["authorization_code", "refresh_token"]

    service = client.create_client("SDK service", project["id"], client_type="confidential_client")[
        "client"
    ]
    assert "client_credentials" in service["grant_types"]
    credential = client.create_client_credential(service["id"], "first")["credential"]
    assert credential["secret"]
    listed = client.get_client_credentials(service["id"])["credentials"]
    assert [c["id"] for c in listed] == [credential["id"]] and "secret" not in listed[0]

    confidential = globus_sdk.ConfidentialAppAuthClient(
        service["id"], credential["secret"], base_url=f"{server.url}/auth/"
    )
    tokens = confidential.oauth2_client_credentials_tokens(requested_scopes=TRANSFER_SCOPE)
    assert "transfer.api.globus.org" in tokens.by_resource_server

    ids = {c["id"] for c in client.get_clients()["clients"]}
    assert {native["id"], service["id"]} <= ids
    renamed = client.update_client(native["id"], name="Renamed app")["client"]
    assert renamed["name"] == "Renamed app"
    client.delete_client_credential(service["id"], credential["id"])
    with pytest.raises(globus_sdk.AuthAPIError):
        confidential.oauth2_client_credentials_tokens(requested_scopes=TRANSFER_SCOPE)

    client.delete_client(native["id"])
    with pytest.raises(globus_sdk.AuthAPIError) as gone:
        client.get_client(client_id=native["id"])
    assert gone.value.http_status == 404
    client.delete_project(project["id"])
    assert project["id"] not in {p["id"] for p in client.get_projects()["projects"]}


def test_cli_template_instantiation_needs_no_auth(server: LiveServer) -> None:
    native = globus_sdk.NativeAppAuthClient(CLI_TEMPLATE, base_url=f"{server.url}/auth/")
    created = native.create_native_app_instance(CLI_TEMPLATE, "Globus CLI on test")
    client = created["client"]
    credential = created["included"]["client_credential"]
    assert client["client_type"] == "confidential_client"
    assert client["parent_client"] == CLI_TEMPLATE
    assert credential["client"] == client["id"] and credential["secret"]

    # The instance may delete itself with its own credentials (globus logout --delete-client).
    basic = httpx.delete(
        f"{server.url}/auth/v2/api/clients/{client['id']}",
        auth=(credential["client"], credential["secret"]),
    )
    assert basic.status_code == 200, basic.text

    unknown = httpx.post(
        f"{server.url}/auth/v2/api/clients",
        json={"client": {"template_id": "00000000-0000-0000-0000-000000000000", "name": "x"}},
    )
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["code"] == "NOT_FOUND"


def test_bad_api_requests_get_globus_error_bodies(
    server: LiveServer, developer_tokens: globus_sdk.OAuthTokenResponse
) -> None:
    token = developer_tokens.by_resource_server["auth.globus.org"]["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    bad_json = httpx.post(
        f"{server.url}/auth/v2/api/projects", content=b"{not json", headers=headers
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["errors"][0]["status"] == "400"
    missing = httpx.post(
        f"{server.url}/auth/v2/api/projects",
        json={"project": {"display_name": ""}},
        headers=headers,
    )
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["code"] == "INVALID_PARAMETERS"
    not_found = httpx.get(f"{server.url}/auth/v2/api/projects/not-a-uuid", headers=headers)
    assert not_found.status_code == 404
    no_route = httpx.get(f"{server.url}/auth/v2/api/nothing-here", headers=headers)
    assert no_route.status_code == 404
    assert "errors" in no_route.json() and "detail" not in no_route.json()
    wrong_method = httpx.patch(f"{server.url}/auth/v2/oauth2/token")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["errors"][0]["code"] == "METHOD_NOT_ALLOWED"
