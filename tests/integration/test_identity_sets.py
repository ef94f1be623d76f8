"""Identity sets: a researcher links a second institution's identity by logging in with it.

Over HTTP with one cookie jar, as a browser: logged in as the demo researcher, **Link another
identity** on /account, log in as bob at "Second Institute", back on /account with both
listed. Then: userinfo and introspection list the set; a rule granted to bob on carol's
collection lets the researcher list it; unlinking takes that away again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import globus_sdk
import httpx
import pytest

from tests.conftest import _database_args
from tests.integration.test_auth_oauth import (
    CALLBACK,
    TRANSFER_SCOPE,
    _confidential_code,
    confidential_client,
)
from tests.integration.test_transfer_api import login
from tests.support.auth_flow import (
    create_confidential_client,
    idp_value,
    native_tokens,
    page_form,
)
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = pytest.mark.timeout(300)
BOB, BOB_PASSWORD = "bob@second.edu", "bob-password-123"
CAROL, CAROL_PASSWORD = "carol@example.edu", "carol-password-123"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("idsets"), extra_args=_database_args(request))
    try:
        assert (
            live.admin("idp", "create", "Second Institute", "--domain", "second.edu").returncode
            == 0
        )
        for user, password, idp in (
            (BOB, BOB_PASSWORD, "Second Institute"),
            (CAROL, CAROL_PASSWORD, "Example University"),
        ):
            made = live.admin(
                "user", "create", user, "--idp", idp, "--password-stdin", input=password + "\n"
            )
            assert made.returncode == 0, made.stderr
        yield live
    finally:
        live.stop()


def _log_in(
    http: httpx.Client, server: LiveServer, next_url: str, user: str, password: str, idp: str
) -> httpx.Response:
    page = http.get(f"{server.url}/auth/login", params={"next": next_url})
    form = {
        **page_form(page.text, 'action="/auth/login"')[1],
        "idp": idp_value(page.text, idp),
        "username": user,
        "password": password,
    }
    return http.post(f"{server.url}/auth/login", data=form, follow_redirects=True)


def test_linking_shows_in_tokens_and_grants_access(server: LiveServer, tmp_path: Path) -> None:
    # carol shares a folder of her own collection with bob only.
    shared = tmp_path / "carol-data"
    (shared / "results").mkdir(parents=True)
    (shared / "results" / "r.csv").write_text("1,2\n")
    made = server.admin(
        "collection", "create", "--name", "Carol's lab", "--posix", str(shared), "--owner", CAROL
    )
    assert made.returncode == 0, made.stderr
    carol = login(server, CAROL, CAROL_PASSWORD)
    collection = next(iter(carol.tc.endpoint_search("Carol's lab")))["id"]
    bob_id = native_tokens(
        server, username=BOB, password=BOB_PASSWORD, idp_name="Second Institute"
    ).decode_id_token()["sub"]
    carol.tc.add_endpoint_acl_rule(
        collection,
        {
            "DATA_TYPE": "access",
            "principal_type": "identity",
            "principal": bob_id,
            "path": "/results/",
            "permissions": "r",
        },
    )
    researcher = login(server, DEMO_USERNAME, DEMO_PASSWORD)
    with pytest.raises(globus_sdk.TransferAPIError):
        researcher.tc.operation_ls(collection, path="/results/")

    with httpx.Client(timeout=30) as http:
        account = _log_in(
            http, server, "/account", DEMO_USERNAME, DEMO_PASSWORD, "Example University"
        )
        assert account.url.path == "/account" and DEMO_USERNAME in account.text
        started = http.post(
            f"{server.url}/account/link",
            data=page_form(account.text, 'action="/account/link"')[1],
            follow_redirects=True,
        )
        assert started.url.path == "/auth/login"
        linked = _log_in(http, server, "/account/linked", BOB, BOB_PASSWORD, "Second Institute")
        assert linked.url.path == "/account", linked.url
        assert f"Linked {BOB} to {DEMO_USERNAME}." in linked.text
        assert BOB in linked.text and DEMO_USERNAME in linked.text

    tokens = native_tokens(server)
    claims = tokens.decode_id_token()
    assert {m["username"] for m in claims["identity_set"]} == {DEMO_USERNAME, BOB}
    auth = globus_sdk.AuthClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(
            tokens.by_resource_server["auth.globus.org"]["access_token"]
        ),
        base_url=f"{server.url}/auth/",
    )
    assert {m["username"] for m in auth.userinfo()["identity_set"]} == {DEMO_USERNAME, BOB}
    # Introspection by the app the token was issued to lists the set too.
    client_id, secret = create_confidential_client(
        server, name="introspector", redirect_uris=(CALLBACK,)
    )
    app = confidential_client(server, client_id, secret)
    app_tokens = app.oauth2_exchange_code_for_tokens(
        _confidential_code(server, app, ["openid", TRANSFER_SCOPE])
    )
    transfer_token = app_tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
    info = app.oauth2_token_introspect(transfer_token, include="identity_set")
    assert set(info["identity_set"]) == {claims["sub"], bob_id}

    # A rule granted to bob applies to the researcher now.
    again = login(server, DEMO_USERNAME, DEMO_PASSWORD)
    assert [e["name"] for e in again.tc.operation_ls(collection, path="/results/")] == ["r.csv"]

    # Unlinked: gone again.
    with httpx.Client(timeout=30) as http:
        account = _log_in(
            http, server, "/account", DEMO_USERNAME, DEMO_PASSWORD, "Example University"
        )
        form = page_form(account.text, 'action="/account/unlink"')[1]
        done = http.post(
            f"{server.url}/account/unlink",
            data={**form, "identity_id": bob_id},
            follow_redirects=True,
        )
        assert f"Unlinked {BOB}." in done.text
    with pytest.raises(globus_sdk.TransferAPIError):
        login(server, DEMO_USERNAME, DEMO_PASSWORD).tc.operation_ls(collection, path="/results/")
