"""The tutorial's last step for a newly federated identity: the demo owner shares a folder of
Demo Collection 1 with it (read-write), and it copies a file there with its own token."""

from __future__ import annotations

import uuid

import globus_sdk

from tests.integration.test_transfer_api import login
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer


def transfer_in_a_shared_folder(server: LiveServer, tokens: globus_sdk.OAuthTokenResponse) -> None:
    """Share a fresh folder with the tokens' identity, copy ``in.txt`` to ``out.txt`` there
    with those tokens, and check the task and the bytes."""
    identity_id = tokens.decode_id_token()["sub"]
    owner = login(server, DEMO_USERNAME, DEMO_PASSWORD)
    c1 = next(iter(owner.tc.endpoint_search("Demo Collection 1")))["id"]
    folder = f"/federated-{uuid.uuid4().hex[:6]}/"
    owner.tc.operation_mkdir(c1, folder)
    rule = {
        "DATA_TYPE": "access",
        "principal_type": "identity",
        "principal": identity_id,
        "path": folder,
        "permissions": "rw",
    }
    owner.tc.add_endpoint_acl_rule(c1, rule)
    on_disk = server.home / "demo" / "collection1" / folder.strip("/")
    (on_disk / "in.txt").write_text("shared")
    tc = globus_sdk.TransferClient(
        authorizer=globus_sdk.AccessTokenAuthorizer(
            tokens.by_resource_server["transfer.api.globus.org"]["access_token"]
        ),
        base_url=f"{server.url}/transfer/",
    )
    tdata = globus_sdk.TransferData(source_endpoint=c1, destination_endpoint=c1)
    tdata.add_item(f"{folder}in.txt", f"{folder}out.txt")
    task_id = tc.submit_transfer(tdata)["task_id"]
    assert tc.task_wait(task_id, timeout=120, polling_interval=1)
    assert tc.get_task(task_id)["status"] == "SUCCEEDED"
    assert [t["task_id"] for t in tc.task_list()] == [task_id]
    assert (on_disk / "out.txt").read_text() == "shared"
