"""Scope parsing (bracketed dependencies) and the resource-server mapping Globus clients expect."""

from __future__ import annotations

import pytest

from arctern.auth.scopes import (
    ScopeError,
    describe,
    parse_scopes,
    resource_server_of,
    root_scopes,
    split_by_resource_server,
)

TIMER = "https://auth.globus.org/scopes/524230d7-ea86-4a52-8312-86065a9e0417/timer"
FLOWS = "https://auth.globus.org/scopes/eec9b274-0c81-4334-bdc2-54e90e689b9a/all"
TRANSFER = "urn:globus:auth:scope:transfer.api.globus.org:all"
CLI_LOGIN = (
    "openid profile email urn:globus:auth:scope:auth.globus.org:view_identity_set "
    f"{TRANSFER} urn:globus:auth:scope:groups.api.globus.org:all "
    f"urn:globus:auth:scope:search.api.globus.org:all {TIMER}[{TRANSFER}] {FLOWS}"
)


def test_cli_login_scopes_split_into_six_resource_servers() -> None:
    roots = root_scopes(CLI_LOGIN)
    assert f"{TIMER}[{TRANSFER}]" not in roots and TIMER in roots
    grouped = split_by_resource_server(roots)
    assert set(grouped) == {
        "auth.globus.org",
        "transfer.api.globus.org",
        "groups.api.globus.org",
        "search.api.globus.org",
        "524230d7-ea86-4a52-8312-86065a9e0417",
        "flows.globus.org",
    }
    assert grouped["auth.globus.org"] == [
        "openid",
        "profile",
        "email",
        "urn:globus:auth:scope:auth.globus.org:view_identity_set",
    ]


def test_dependencies_with_spaces_and_optional_markers() -> None:
    coll = "https://auth.globus.org/scopes/1b2c/data_access"
    nodes = parse_scopes(f"{TRANSFER}[*{coll} {TIMER}[openid]] email")
    assert [n.name for n in nodes] == [TRANSFER, "email"]
    deps = nodes[0].dependencies
    assert [(d.name, d.optional) for d in deps] == [(coll, True), (TIMER, False)]
    assert deps[1].dependencies[0].name == "openid"
    assert nodes[0].render() == f"{TRANSFER}[*{coll} {TIMER}[openid]]"
    assert resource_server_of(coll) == "1b2c"


@pytest.mark.parametrize("bad", [f"{TRANSFER}[openid", "openid]", "[openid]", "not-a-scope"])
def test_malformed_or_unknown_scopes_are_rejected(bad: str) -> None:
    with pytest.raises(ScopeError):
        root_scopes(bad)


def test_duplicates_collapse_and_empty_is_empty() -> None:
    assert root_scopes("openid  openid\temail") == ["openid", "email"]
    assert root_scopes("") == [] and root_scopes(None) == []


def test_descriptions_are_readable() -> None:
    assert "Transfer files" in describe(TRANSFER)
    assert describe("https://auth.globus.org/scopes/abc/data_access") == (
        "Access data on collection abc"
    )
    assert "groups.api.globus.org" in describe("urn:globus:auth:scope:groups.api.globus.org:all")


def test_served_here_names_only_this_deployments_services() -> None:
    from arctern.auth.scopes import served_here

    collection = "https://auth.globus.org/scopes/0b2c8f7e-4c84-4d4b-8b49-6a1b3b2a9e10"
    assert served_here("openid")
    assert served_here("urn:globus:auth:scope:transfer.api.globus.org:all")
    assert served_here("urn:globus:auth:scope:groups.api.globus.org:view_my_groups_and_memberships")
    assert served_here(f"{collection}/data_access")
    assert served_here(f"{collection}/https")
    assert not served_here("urn:globus:auth:scope:search.api.globus.org:all")
    assert not served_here(f"{collection}/timer")
    assert not served_here("not a scope")
