"""arctern_client against a live server: connect, login, ls, transfer + watch, tasks, cancel."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import arctern_client as ac
from arctern_client.login import LoginFlow
from tests.support.auth_flow import authorize_over_http, create_native_client
from tests.support.server import DEMO_PASSWORD, DEMO_USERNAME, LiveServer


def _code_for(server: LiveServer) -> Callable[[str], str]:
    return lambda url: authorize_over_http(server.url, url, DEMO_USERNAME, DEMO_PASSWORD)


@pytest.fixture(scope="module")
def session(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> ac.Session:
    deployment = ac.connect(server.url, export_environment=False)
    client_id = create_native_client(server, name="arctern_client tests")
    return ac.login(
        client_id,
        deployment=deployment,
        token_file=tmp_path_factory.mktemp("tokens") / "tokens.json",
        code_provider=_code_for(server),
    )


def test_connect_discovers_the_services(server: LiveServer) -> None:
    deployment = ac.connect(server.url + "/", export_environment=False)
    assert deployment.auth_url == f"{server.url}/auth/"
    assert deployment.transfer_url == f"{server.url}/transfer/"
    assert deployment.version


@pytest.mark.parametrize("page", ["/files", "/auth/", "/transfer/v0.10"])
def test_connect_refuses_a_page_or_service_url(server: LiveServer, page: str) -> None:
    """Copied from the browser or a config: refused at once, not at the first call."""
    with pytest.raises(ac.ConnectError, match="not an Arctern server's address"):
        ac.connect(server.url + page, export_environment=False)


def test_login_is_saved_for_the_next_kernel(server: LiveServer, tmp_path: Path) -> None:
    deployment = ac.connect(server.url, export_environment=False)
    client_id = create_native_client(server, name="saved login")
    token_file = tmp_path / "tokens.json"
    first = ac.login(
        client_id, deployment=deployment, token_file=token_file, code_provider=_code_for(server)
    )
    assert first.username == DEMO_USERNAME  # from the verified id_token

    def must_not_ask(_url: str) -> str:
        raise AssertionError("a saved login must not ask for a code")

    again = ac.login(
        client_id, deployment=deployment, token_file=token_file, code_provider=must_not_ask
    )
    # The saved login greets the user by name, not by identity id (read from the token file,
    # before anything asks the server).
    assert again.username == DEMO_USERNAME
    assert again.whoami()["preferred_username"] == DEMO_USERNAME
    assert f"as {DEMO_USERNAME}" in repr(again)
    assert "large.bin" in again.ls("Demo Collection 1:/").names()
    # A mistyped collection name suggests the closest one.
    with pytest.raises(ac.CollectionNotFound, match="Did you mean 'Demo Collection 1'"):
        again.ls("Demo Colection 1:/")


def test_a_used_code_is_rejected_clearly(server: LiveServer) -> None:
    deployment = ac.connect(server.url, export_environment=False)
    flow = LoginFlow(deployment, create_native_client(server, name="used code"))
    code = _code_for(server)(flow.url)
    flow.exchange(code)
    with pytest.raises(ac.LoginError, match=r"^This authorization code was already used; "):
        flow.exchange(code)
    with pytest.raises(ac.LoginError, match=r"^This authorization code is not valid: check "):
        flow.exchange(code[:-3])


def test_ls_by_display_name(session: ac.Session) -> None:
    listing = session.ls("Demo Collection 1:/")
    assert {"large.bin", "nested/", "hello.txt"} <= set(listing.names())
    assert listing.path == "/"
    assert "large.bin" in listing._repr_html_()
    with pytest.raises(ac.CollectionNotFound):
        session.ls("No Such Collection:/")


def test_transfer_watch_and_tasks(session: ac.Session, server: LiveServer) -> None:
    task = session.transfer(
        "Demo Collection 1:/large.bin", "Demo Collection 2:/client-test/", label="client test"
    )
    assert task.total_bytes == 20 * 1024 * 1024
    assert task.destination == "Demo Collection 2:/client-test/large.bin"
    bars, printed = io.StringIO(), io.StringIO()

    def progress(**kwargs: object) -> object:
        from tqdm import tqdm

        kwargs["file"] = bars
        return tqdm(**kwargs)

    view = session.watch(task, interval=0.5, timeout=120, file=printed, progress_factory=progress)
    assert view.status == "SUCCEEDED", view.summary()
    assert printed.getvalue().startswith(f"✓ Task {task} SUCCEEDED 'client test' - 1/1 files")
    assert "100%" in bars.getvalue()
    copied = server.home / "demo" / "collection2" / "client-test" / "large.bin"
    assert copied.stat().st_size == task.total_bytes

    frame = session.tasks(status="succeeded", limit=50)
    assert isinstance(frame, pd.DataFrame)
    assert frame.loc[str(task), "status"] == "SUCCEEDED"
    assert frame.loc[str(task), "bytes_transferred"] == task.total_bytes
    table = session.tasks(status=["ACTIVE", "FAILED"], dataframe=False)
    assert str(task) not in {t.task_id for t in table}

    result = session.cancel(task)
    assert result["code"] == "TaskComplete"
    assert session.task(task).status == "SUCCEEDED"


def test_directory_transfer_then_cancel(session: ac.Session) -> None:
    task = session.transfer("Demo Collection 1:/nested/", "Demo Collection 2:/client-nested/")
    result = session.cancel(task)
    assert result["code"] in {"Canceled", "CancelAccepted", "TaskComplete"}
    view = session.watch(task, interval=0.5, timeout=60, file=io.StringIO())
    if result["code"] == "TaskComplete":
        assert view.status == "SUCCEEDED"
    else:
        assert view.status == "FAILED" and view.details.startswith("CANCELED")


def test_an_expired_code_is_rejected_clearly(server_factory: Callable[..., LiveServer]) -> None:
    private = server_factory()  # the clock moves: not on the shared server
    deployment = ac.connect(private.url, export_environment=False)
    flow = LoginFlow(deployment, create_native_client(private, name="slow typist"))
    code = _code_for(private)(flow.url)
    private.set_clock_offset(601)  # codes live 600 s
    with pytest.raises(
        ac.LoginError, match=r"^This authorization code expired at \d\d:\d\d UTC; codes last 10 "
    ):
        flow.exchange(code)
