"""The Connect agent's pieces without a server: its home's file modes, the execution of
relayed operations under confinement and access guards, and how answers become errors."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from arctern.connect.agent.home import AgentConfig, AgentConfigError, AgentHome, LocalCollection
from arctern.connect.agent.operations import execute
from arctern.connect.relay import _unwrap
from arctern.connectors.access import AccessDenied
from arctern.connectors.errors import ConnectorError, ObjectNotFound


def test_home_and_credential_are_private(tmp_path: Path) -> None:
    home = AgentHome(tmp_path / "home")
    home.save_credential("acc_secret")
    assert (home.path.stat().st_mode & 0o777) == 0o700
    assert (home.credential_path.stat().st_mode & 0o777) == 0o600
    assert home.load_credential() == "acc_secret"
    os.chmod(home.credential_path, 0o644)
    with pytest.raises(AgentConfigError, match="readable by others"):
        home.load_credential()


def _config(root: Path) -> AgentConfig:
    return AgentConfig(
        deployment_url="http://deployment.invalid",
        endpoint_id="e",
        display_name="Lab",
        owner="alice",
        collections=[LocalCollection(id="c1", name="data", root=str(root))],
    )


def _run(config: AgentConfig, **request: Any) -> dict[str, Any]:
    return asyncio.run(execute(config, {"collection_id": "c1", "guard": None, **request}))


def test_operations_stay_inside_the_configured_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "shared").mkdir(parents=True)
    (root / "private").mkdir()
    (root / "shared" / "f.txt").write_text("x")
    (root / "shared" / "up").symlink_to(root / "private")
    (root / "out").symlink_to(tmp_path)
    config = _config(root)
    assert [e["name"] for e in _run(config, op="list", path="/shared")["ok"]] == ["f.txt", "up"]
    assert _run(config, op="list", path="/../")["error"]["kind"] in (
        "PathOutsideRoot",
        "InvalidPath",
    )
    assert _run(config, op="list", path="/out/")["error"]["kind"] == "PathOutsideRoot"
    # Only the agent's own configuration names roots: an unknown collection is refused.
    unknown = asyncio.run(execute(config, {"collection_id": "c2", "op": "list", "path": "/"}))
    assert unknown["error"]["kind"] == "ObjectNotFound"
    assert _run(config, op="chmod", path="/")["error"]["kind"] == "ConnectorError"
    # A non-owner's grants travel with the request and apply where paths resolve.
    guard = {"readable": ["/shared/"], "writable": []}
    assert "ok" in _run(config, op="list", path="/shared", guard=guard)
    assert _run(config, op="list", path="/shared/up", guard=guard)["error"]["kind"] == (
        "AccessDenied"
    )
    assert _run(config, op="mkdir", path="/shared/new", guard=guard)["error"]["kind"] == (
        "AccessDenied"
    )
    assert not (root / "shared" / "new").exists()


def test_answers_become_connector_errors_of_a_fixed_set() -> None:
    assert _unwrap({"ok": [1]}) == [1]
    with pytest.raises(ObjectNotFound):
        _unwrap({"error": {"kind": "ObjectNotFound", "message": "gone"}})
    with pytest.raises(AccessDenied):
        _unwrap({"error": {"kind": "AccessDenied", "message": "no"}})
    for kind in ("SystemExit", "EndpointDisconnected", None):
        with pytest.raises(ConnectorError) as excinfo:
            _unwrap({"error": {"kind": kind, "message": "?"}})
        assert type(excinfo.value) is ConnectorError
    with pytest.raises(ConnectorError):
        _unwrap(None)
