"""arctern_client inside a real Jupyter kernel: widget login, HTML listings, progress, tables.

The notebook is built here (it is a test of the helpers, not a tutorial) and rendered to
``build/notebook/arctern_client.html``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell, new_notebook

from tests.support.auth_flow import authorize_over_http, create_native_client
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer

ROOT = Path(__file__).resolve().parents[2]
HTML_OUT = ROOT / "build" / "notebook" / "arctern_client.html"
WIDGET = "application/vnd.jupyter.widget-view+json"


def _outputs(cell: Any) -> tuple[str, str, set[str]]:
    """(printed text, text/html, the MIME types) of a cell's outputs."""
    text, markup, kinds = [], [], set()
    for output in cell.outputs:
        if output.output_type == "stream":
            text.append(output.text)
        for kind, value in output.get("data", {}).items():
            kinds.add(kind)
            if kind == "text/plain":
                text.append(value)
            elif kind == "text/html":
                markup.append(value)
    return "".join(text), "".join(markup), kinds


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_helpers_in_a_kernel(server: LiveServer, tmp_path: Path) -> None:
    client_id = create_native_client(server, name="arctern_client kernel test")
    cells = [
        new_code_cell(
            "import arctern_client as ac\n"
            f"server = ac.connect({server.url!r})\n"
            f"me = server.login({client_id!r})\n"
            "me"
        ),
        new_code_cell("print(me.login_widget.flow.url)"),
        new_code_cell("me.login_widget.code.value = CODE\nme.login_widget.submit()\nme"),
        new_code_cell('me.ls("Demo Collection 1:/")'),
        new_code_cell(
            'task = me.transfer("Demo Collection 1:/large.bin", "Demo Collection 2:/kernel/")\n'
            "done = me.watch(task, interval=0.5, timeout=120)\n"
            "done"
        ),
        new_code_cell('me.tasks(status="succeeded")'),
        new_code_cell(
            "import globus_sdk\n"
            "print(globus_sdk.TransferClient().base_url)  # connect() configured the plain SDK"
        ),
    ]
    nb = new_notebook(cells=cells)
    env = dict(os.environ, HOME=str(tmp_path))
    for name in list(env):
        if name.startswith("GLOBUS_SDK_"):
            del env[name]
    client = NotebookClient(
        nb, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(tmp_path)}}
    )
    with client.setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):
            if index == 2:
                url = _outputs(nb.cells[1])[0].strip()
                code = authorize_over_http(server.url, url, DEMO_USERNAME, DEMO_PASSWORD)
                cell.source = f"CODE = {code!r}\n" + cell.source
            client.execute_cell(cell, index)
    HTML_OUT.parent.mkdir(parents=True, exist_ok=True)
    HTML_OUT.write_text(HTMLExporter().from_notebook_node(nb)[0], encoding="utf-8")

    login_text, _, login_kinds = _outputs(nb.cells[0])
    assert WIDGET in login_kinds  # in a notebook the code is typed into a text box
    assert "Waiting for the authorization code" in login_text
    assert f"Logged in to {server.url} as {DEMO_USERNAME}" in _outputs(nb.cells[2])[1]
    assert (tmp_path / ".arctern-client" / "tokens.json").exists()

    _, listing_html, _ = _outputs(nb.cells[3])
    assert "<table" in listing_html and "large.bin" in listing_html

    watch_text, watch_html, watch_kinds = _outputs(nb.cells[4])
    assert WIDGET in watch_kinds  # tqdm.auto draws a notebook progress bar
    assert re.search(r"✓ Task [0-9a-f-]{36} SUCCEEDED - 1/1 files, 20.0 MiB", watch_text)
    assert "SUCCEEDED" in watch_html

    _, tasks_html, _ = _outputs(nb.cells[5])
    assert "dataframe" in tasks_html and "SUCCEEDED" in tasks_html
    assert _outputs(nb.cells[6])[0].strip() == f"{server.url}/transfer/"
