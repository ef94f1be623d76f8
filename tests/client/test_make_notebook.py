"""``make notebook``: JupyterLab (installed by the project's own setup) on ``examples/``,
with globus-sdk's environment pointed at the demo server's port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)


def test_make_notebook_opens_jupyterlab_on_the_examples(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server")
    port = free_port()
    token = "notebook-test-token"
    env = {**os.environ, "HOME": str(tmp_path), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    lab = subprocess.Popen(
        [
            "make", "--no-print-directory", "notebook", f"PORT={server.port}",
            f"NOTEBOOK_ARGS=--no-browser --port {port} --IdentityProvider.token={token}",
        ],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert lab.poll() is None, lab.stdout.read() if lab.stdout else ""
            try:
                if httpx.get(f"{base}/api/status", params={"token": token}).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "JupyterLab did not start"
            time.sleep(0.5)
        contents = httpx.get(f"{base}/api/contents", params={"token": token}).json()
        assert "tutorial.ipynb" in {item["name"] for item in contents["content"]}
        assert httpx.get(f"{base}/lab", params={"token": token}).is_success
        # The server (and so every kernel it starts) has the variables for this Arctern.
        pid = subprocess.run(
            ["pgrep", "-f", f"jupyter-lab .*--port {port}"], capture_output=True, text=True
        ).stdout.split()[0]
        environ = dict(
            item.split("=", 1)
            for item in Path(f"/proc/{pid}/environ").read_text().split("\0")
            if "=" in item
        )
        assert environ["GLOBUS_SDK_ENVIRONMENT"] == "arctern"
        assert environ["GLOBUS_SDK_SERVICE_URL_TRANSFER"] == f"{server.url}/transfer/"
        assert environ["GLOBUS_SDK_SERVICE_URL_AUTH"] == f"{server.url}/auth/"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(lab.pid, signal.SIGTERM)
        subprocess.run(["pkill", "-f", f"jupyter-lab .*--port {port}"], check=False)
        try:
            lab.wait(30)
        except subprocess.TimeoutExpired:
            lab.kill()
        server.stop()
    output = lab.stdout.read() if lab.stdout else ""
    assert f"GLOBUS_SDK_SERVICE_URL_TRANSFER={server.url}/transfer/" in output
