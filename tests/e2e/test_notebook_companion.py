"""Runs examples/arctern-client.ipynb (the arctern_client companion) in a real kernel.

The researcher's kernel has a saved login from an earlier one (``~/.arctern-client``), so the
login cell runs without a code; the notebook lists a collection by name, transfers and
watches a folder, and shows the task table. Its first cell refuses the placeholder Client ID
with what to do.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import arctern_client as ac
from tests.e2e.test_notebook import _text
from tests.support.auth_flow import authorize_over_http, create_native_client
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "arctern-client.ipynb"
pytestmark = pytest.mark.timeout(300)


def _prepared(server: LiveServer, client_id: str) -> Any:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    setup = next(c for c in nb.cells if "setup" in c.get("metadata", {}).get("tags", []))
    setup.source = re.sub(
        r'^ARCTERN_URL = ".*?"', f'ARCTERN_URL = "{server.url}"', setup.source, flags=re.M
    )
    setup.source = re.sub(
        r'^CLIENT_ID = ".*?"', f'CLIENT_ID = "{client_id}"', setup.source, flags=re.M
    )
    return nb


def _run(nb: Any, home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLOBUS_SDK_")}
    env["HOME"] = str(home)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=240, resources={"metadata": {"path": str(home)}}
    )
    with client.setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)


def test_the_companion_notebook_runs(server: LiveServer, tmp_path: Path) -> None:
    client_id = create_native_client(server, name="Companion notebook")
    # A login saved by an earlier kernel (the first one shows a link and a code box).
    ac.login(
        client_id,
        deployment=ac.connect(server.url, export_environment=False),
        token_file=tmp_path / ".arctern-client" / "tokens.json",
        code_provider=lambda url: authorize_over_http(
            server.url, url, DEMO_USERNAME, DEMO_PASSWORD
        ),
    )
    nb = _prepared(server, client_id)
    _run(nb, tmp_path)
    everything = "\n".join(_text(c) for c in nb.cells)
    assert f"at {server.url}: ready." in everything
    assert f"Logged in as {DEMO_USERNAME}" in everything
    assert "hello.txt" in everything  # the listing of Demo Collection 1
    assert "Finished: SUCCEEDED" in everything
    assert "arctern_client companion" in everything  # in the task table
    copied = server.home / "demo" / "collection2" / "copied-with-arctern-client"
    assert copied.is_dir() and any(copied.rglob("*"))


def test_the_placeholder_client_id_is_refused_with_a_hint(
    server: LiveServer, tmp_path: Path
) -> None:
    nb = _prepared(server, "PASTE-YOUR-CLIENT-ID-HERE")
    with pytest.raises(CellExecutionError) as refused:
        _run(nb, tmp_path)
    assert "Paste the Client ID of your native app" in str(refused.value)
