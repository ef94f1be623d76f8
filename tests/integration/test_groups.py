"""Groups with the unmodified globus-cli, and group-based sharing on a collection.

The collections' owner creates a group with ``globus group create``, adds a user with
``globus group member add``, and shares a folder with the group (``globus endpoint permission
create --group``). The member lists it; a non-member is refused; once ``globus group member
remove`` runs, the former member is refused too. Also: membership visibility, a member who
cannot manage the group, and Groups API errors in its own format.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import globus_sdk
import httpx
import pytest

from tests.conftest import _database_args
from tests.integration.test_auth_globus_cli import globus, globus_login
from tests.integration.test_transfer_api import Account, login, make_user
from tests.support.auth_flow import native_tokens
from tests.support.server import LiveServer, start_server

pytestmark = pytest.mark.timeout(300)

GROUPS_ALL = "urn:globus:auth:scope:groups.api.globus.org:all"


@dataclass
class Site:
    server: LiveServer
    cli_home: Path
    c2: str


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    server = start_server(tmp_path_factory.mktemp("groups"), extra_args=_database_args(request))
    try:
        home = tmp_path_factory.mktemp("cli")
        logged = globus_login(server, home)
        assert logged.returncode == 0, logged.stderr
        listed = globus(server, home, "endpoint", "search", "Demo Collection 2", "-F", "json")
        c2 = next(
            d["id"] for d in json.loads(listed.stdout)["DATA"] if d["display_name"].endswith("2")
        )
        yield Site(server, home, c2)
    finally:
        server.stop()


def cli(site: Site, *args: str) -> str:
    done = globus(site.server, site.cli_home, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def groups_client(server: LiveServer, username: str, password: str) -> globus_sdk.GroupsClient:
    tokens = native_tokens(server, username=username, password=password, scopes=[GROUPS_ALL])
    return globus_sdk.GroupsClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(
            tokens.by_resource_server["groups.api.globus.org"]["access_token"]
        ),
        base_url=f"{server.url}/groups/",
    )


def test_group_sharing_with_the_globus_cli(site: Site) -> None:
    name = f"Lab members {uuid.uuid4().hex[:4]}"
    created = cli(site, "group", "create", name, "--description", "people of the lab")
    group_id = re.search(r"Group (\S+) created", created)
    assert group_id, created
    gid = group_id.group(1)
    assert name in cli(site, "group", "list")
    assert "people of the lab" in cli(site, "group", "show", gid)

    member_name, member_password = make_user(site.server, "member")
    outsider_name, outsider_password = make_user(site.server, "outsider")
    cli(site, "group", "member", "add", gid, member_name)
    members = cli(site, "group", "member", "list", gid)
    assert member_name in members and "admin" in members

    folder = f"shared-{uuid.uuid4().hex[:6]}"
    root = site.server.home / "demo" / "collection2" / folder
    root.mkdir()
    (root / "notes.txt").write_text("for the lab")
    cli(
        site, "endpoint", "permission", "create", f"{site.c2}:/{folder}/",
        "--permissions", "r", "--group", gid,
    )  # fmt: skip

    member: Account = login(site.server, member_name, member_password)
    outsider: Account = login(site.server, outsider_name, outsider_password)
    assert {e["name"] for e in member.tc.operation_ls(site.c2, path=f"/{folder}/")} == {"notes.txt"}
    with pytest.raises(globus_sdk.TransferAPIError) as refused:
        outsider.tc.operation_ls(site.c2, path=f"/{folder}/")
    assert refused.value.http_status in (403, 404)
    # The group grants read only.
    with pytest.raises(globus_sdk.TransferAPIError):
        member.tc.operation_mkdir(site.c2, f"/{folder}/new")

    # The member sees the group among theirs, but cannot manage it.
    theirs = groups_client(site.server, member_name, member_password)
    assert gid in {g["id"] for g in theirs.get_my_groups()}
    outcome = theirs.batch_membership_action(
        gid, {"add": [{"identity_id": outsider.identity_id, "role": "member"}]}
    )
    assert not outcome.get("add") and outcome["errors"]["add"]
    with pytest.raises(globus_sdk.GroupsAPIError) as forbidden:
        theirs.delete_group(gid)
    assert forbidden.value.http_status == 403

    # Removing the member removes the access.
    cli(site, "group", "member", "remove", gid, member_name)
    with pytest.raises(globus_sdk.TransferAPIError) as gone:
        member.tc.operation_ls(site.c2, path=f"/{folder}/")
    assert gone.value.http_status in (403, 404)
    assert gid not in {g["id"] for g in theirs.get_my_groups()}

    cli(site, "group", "delete", gid)
    assert name not in cli(site, "group", "list")


def test_groups_api_errors(site: Site) -> None:
    assert httpx.get(f"{site.server.url}/groups/v2/groups/my_groups").status_code == 401
    owner = groups_client(site.server, *make_user(site.server, "owner"))
    with pytest.raises(globus_sdk.GroupsAPIError) as missing:
        owner.get_group(str(uuid.uuid4()))
    assert missing.value.http_status == 404
    with pytest.raises(globus_sdk.GroupsAPIError) as bad:
        owner.create_group({"name": ""})
    assert bad.value.http_status == 400
    # A rule naming a group that does not exist is refused (by the collection's owner).
    done = globus(
        site.server, site.cli_home, "endpoint", "permission", "create", f"{site.c2}:/",
        "--permissions", "r", "--group", str(uuid.uuid4()),
    )  # fmt: skip
    assert done.returncode != 0 and "No such group" in done.stderr
