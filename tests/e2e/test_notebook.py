"""Runs examples/tutorial.ipynb cell by cell in a real kernel against a live server.

The test does what a researcher does: registers a native app, pastes its Client ID and the
server URL into their cells, opens the printed login link (over HTTP, logging in and allowing
the app), pastes the authorization code into the ``auth-code`` cell, and runs every cell.
The executed notebook is rendered to ``build/notebook/tutorial.html`` for people to look at.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from tests.support.auth_flow import authorize_over_http, create_native_client
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"
SCREENSHOT = ROOT / "docs" / "images" / "developers-app.png"
HTML_OUT = ROOT / "build" / "notebook" / "tutorial.html"
LINK = re.compile(r"^(http\S+/v2/oauth2/authorize\?\S+)$", re.M)


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _text(cell: Any) -> str:
    """Everything a cell printed or displayed as text."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


def _set_assignment(cell: Any, name: str, value: str) -> None:
    source, count = re.subn(
        rf'^{name} = ".*?"', f"{name} = {value!r}".replace("'", '"'), cell.source, flags=re.M
    )
    assert count == 1, f"no {name} assignment in:\n{cell.source}"
    cell.source = source


def _render_html(nb: Any) -> None:
    # Markdown images outside the notebook's folder are not embedded by nbconvert; inline the
    # screenshot so the HTML artifact is self-contained.
    copy = nbformat.from_dict(nb)
    if SCREENSHOT.exists():
        data = base64.b64encode(SCREENSHOT.read_bytes()).decode("ascii")
        for cell in copy.cells:
            if cell.cell_type == "markdown":
                cell.source = cell.source.replace(
                    "../docs/images/developers-app.png", f"data:image/png;base64,{data}"
                )
    body, _ = HTMLExporter().from_notebook_node(copy)
    HTML_OUT.parent.mkdir(parents=True, exist_ok=True)
    HTML_OUT.write_text(body, encoding="utf-8")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tutorial_notebook_runs_against_arctern(server: LiveServer, tmp_path: Path) -> None:
    client_id = create_native_client(server, name="Globus SDK tutorial")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    by_tag = {tag: cell for cell in nb.cells for tag in _tags(cell)}
    _set_assignment(by_tag["parameters"], "ARCTERN_URL", server.url)
    _set_assignment(by_tag["client-id"], "CLIENT_ID", client_id)

    kernel_env = dict(os.environ, HOME=str(tmp_path))
    for name in list(kernel_env):
        if name.startswith("GLOBUS_SDK_"):
            del kernel_env[name]  # the notebook's first cell must be enough
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    link_cell: Any = None
    with client.setup_kernel(env=kernel_env):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if "auth-code" in _tags(cell):
                assert link_cell is not None, "the login link is printed before the code cell"
                match = LINK.search(_text(link_cell))
                assert match, _text(link_cell)
                code = authorize_over_http(server.url, match.group(1), DEMO_USERNAME, DEMO_PASSWORD)
                _set_assignment(cell, "AUTH_CODE", code)
            client.execute_cell(cell, index)
            if "oauth2_get_authorize_url" in cell.source:
                link_cell = cell
    _render_html(nb)

    printed = {index: _text(cell) for index, cell in enumerate(nb.cells)}
    everything = "\n".join(printed.values())
    assert f"Using the Arctern server at {server.url}" in everything
    assert re.search(r"^Task ID: [0-9a-f-]{36}$", everything, re.M)
    assert "Status now: SUCCEEDED" in everything
    assert "Files transferred: 1 of 1" in everything
    assert re.search(r"^SUCCEEDED: [1-9]\d* task\(s\)$", everything, re.M)
    # The task that was canceled while active, and the finished one that could not be.
    assert "Cancel: Canceled" in everything or "Cancel: CancelAccepted" in everything
    assert 'Status after canceling: FAILED {"code": "CANCELED"' in everything
    canceled_id = re.search(r"^Submitted ([0-9a-f-]{36}) - status: ACTIVE$", everything, re.M)
    assert canceled_id, everything
    failed_listing = everything.split("Failed tasks now:", 1)[1]
    assert re.search(rf"^{canceled_id.group(1)}  FAILED ", failed_listing, re.M)
    assert "The task is still SUCCEEDED" in everything
    assert "Cancel: TaskComplete" in everything or "Cancel refused" in everything
    copied = server.home / "demo" / "collection2" / "sdk-tutorial" / "large.bin"
    original = server.home / "demo" / "collection1" / "large.bin"
    assert copied.read_bytes() == original.read_bytes()
    assert HTML_OUT.stat().st_size > 10_000
