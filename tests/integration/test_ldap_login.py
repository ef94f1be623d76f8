"""Logging in with campus accounts from a real LDAP directory (OpenLDAP's slapd on loopback).

Two providers on one directory: a DN template ("Campus Directory", campus.edu) and
search-then-bind with a service account ("Campus Search", search.campus.edu). A user logs in
through the tutorial's native-app flow with their directory password, gets an identity
``uid@domain`` on first login, and uses the Transfer API with the token. Unhappy paths: a
wrong password and filter/DN syntax in the username are refused and create nothing; with the
directory down the login page says so (503) instead of failing or pretending the password is
wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import globus_sdk
import pytest

from tests.conftest import _database_args
from tests.integration.test_transfer_api import login
from tests.support import slapd
from tests.support.auth_flow import AuthFlowError, native_tokens
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer, start_server

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(slapd.available() is not None, reason=str(slapd.available())),
]

USERS = {"jdoe": ("Jane Doe", "correct horse battery"), "rsmith": ("Rob Smith", "staple 42")}


@dataclass
class Campus:
    server: LiveServer
    directory: slapd.Slapd


@pytest.fixture(scope="module")
def campus(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Campus]:
    directory = slapd.start_slapd(tmp_path_factory.mktemp("slapd"), USERS)
    server = start_server(tmp_path_factory.mktemp("ldap"), extra_args=_database_args(request))
    try:
        made = server.admin(
            "idp", "create", "Campus Directory", "--domain", "campus.edu",
            "--ldap", directory.url,
            "--user-dn-template", f"uid={{username}},ou=people,{slapd.SUFFIX}",
            "--timeout", "3",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        made = server.admin(
            "idp", "create", "Campus Search", "--domain", "search.campus.edu",
            "--ldap", directory.url, "--bind-dn", slapd.ADMIN_DN, "--bind-password-stdin",
            "--search-base", f"ou=people,{slapd.SUFFIX}", "--search-filter", "(uid={username})",
            "--timeout", "3",
            input=slapd.ADMIN_PASSWORD + "\n",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        listed = server.admin("idp", "list").stdout
        assert "ldap" in listed and "campus.edu" in listed
        yield Campus(server, directory)
    finally:
        server.stop()
        directory.stop()


def test_directory_user_logs_in_and_uses_the_transfer_api(campus: Campus) -> None:
    tokens = native_tokens(
        campus.server, username="jdoe", password=USERS["jdoe"][1], idp_name="Campus Directory"
    )
    claims = tokens.decode_id_token()
    assert claims["preferred_username"] == "jdoe@campus.edu"
    assert claims.get("name") == "Jane Doe"
    transfer = tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(transfer),
        base_url=f"{campus.server.url}/transfer/",
    )
    # The demo owner shares a folder with the new campus identity; it lists it.
    owner = login(campus.server, DEMO_USERNAME, DEMO_PASSWORD)
    c1 = next(
        d["id"]
        for d in owner.tc.endpoint_search("Demo Collection")
        if d["display_name"] == "Demo Collection 1"
    )
    owner.tc.add_endpoint_acl_rule(
        c1,
        {
            "DATA_TYPE": "access",
            "principal_type": "identity",
            "principal": claims["sub"],
            "path": "/nested/",
            "permissions": "r",
        },
    )
    assert "dir" in {e["name"] for e in tc.operation_ls(c1, path="/nested/")}
    # The second login finds the same identity.
    again = native_tokens(
        campus.server, username="jdoe", password=USERS["jdoe"][1], idp_name="Campus Directory"
    )
    assert again.decode_id_token()["sub"] == claims["sub"]


def test_search_then_bind(campus: Campus) -> None:
    tokens = native_tokens(
        campus.server, username="rsmith", password=USERS["rsmith"][1], idp_name="Campus Search"
    )
    assert tokens.decode_id_token()["preferred_username"] == "rsmith@search.campus.edu"


@pytest.mark.parametrize(
    "username,password",
    [
        ("jdoe", "wrong password"),
        ("jdoe", ""),
        ("nobody", "whatever"),
        ("*", "correct horse battery"),
        ("jdoe)(uid=*", "correct horse battery"),
        ("jdoe,ou=people", "correct horse battery"),
    ],
)
def test_wrong_passwords_and_injection_are_refused(
    campus: Campus, username: str, password: str
) -> None:
    for idp in ("Campus Directory", "Campus Search"):
        with pytest.raises(AuthFlowError) as refused:
            native_tokens(campus.server, username=username, password=password, idp_name=idp)
        # 401 for a wrong password; 400 for an empty one (refused before any bind).
        assert "login failed (401)" in str(refused.value) or (
            password == "" and "login failed (400)" in str(refused.value)
        )
    users = campus.server.admin("user", "list").stdout
    assert "nobody@" not in users and "*@" not in users


def test_directory_down_is_reported(campus: Campus, tmp_path: Path) -> None:
    campus.directory.stop()
    with pytest.raises(AuthFlowError) as down:
        native_tokens(
            campus.server, username="jdoe", password=USERS["jdoe"][1], idp_name="Campus Directory"
        )
    assert "login failed (503)" in str(down.value)


def test_choosing_the_wrong_institution_is_hinted(campus: Campus) -> None:
    """A campus username typed under the demo institution: the refusal says which
    institution that account belongs to; a plain wrong password gets no hint."""
    with pytest.raises(AuthFlowError) as mixed_up:
        native_tokens(
            campus.server,
            username="jdoe@campus.edu",
            password=USERS["jdoe"][1],
            idp_name="Example University",
        )
    message = str(mixed_up.value)
    assert "login failed (401)" in message
    assert "jdoe@campus.edu is an account of Campus Directory" in message
    with pytest.raises(AuthFlowError) as plain:
        native_tokens(campus.server, username="jdoe", password="wrong", idp_name="Campus Directory")
    assert "is an account of" not in str(plain.value)
