"""Notebook-friendly native-app login: a link, a code box (or ``input()``), saved tokens."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import globus_sdk

from arctern_client.deployment import Deployment
from arctern_client.errors import LoginError
from arctern_client.session import Session
from arctern_client.tokens import TRANSFER_SCOPE, open_storage, usable_transfer_tokens

DEFAULT_SCOPES = (TRANSFER_SCOPE, "openid", "profile", "email")
Prompt = Literal["auto", "widget", "input"]
CODE_LIFETIME_HINT = "Codes are valid for 10 minutes and can be used only once."


class LoginFlow:
    """One native-app authorization (PKCE): its link, and the exchange of the code it yields."""

    def __init__(
        self,
        deployment: Deployment,
        client_id: str,
        *,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        refresh_tokens: bool = True,
        grant_name: str | None = None,
    ) -> None:
        self.auth_client = deployment.native_auth_client(client_id)
        self.scopes = list(scopes)
        self.refresh_tokens = refresh_tokens
        self.grant_name = grant_name
        self.url = self.restart()

    def restart(self) -> str:
        """A new link with a new PKCE verifier; codes from older links stop working here."""
        if self.grant_name:
            self.auth_client.oauth2_start_flow(
                self.scopes,
                refresh_tokens=self.refresh_tokens,
                prefill_named_grant=self.grant_name,
            )
        else:
            self.auth_client.oauth2_start_flow(self.scopes, refresh_tokens=self.refresh_tokens)
        self.url = self.auth_client.oauth2_get_authorize_url()
        return self.url

    def exchange(self, code: str) -> globus_sdk.OAuthTokenResponse:
        code = code.strip()
        if not code:
            raise LoginError("No authorization code was entered.")
        try:
            return self.auth_client.oauth2_exchange_code_for_tokens(code)
        except globus_sdk.AuthAPIError as exc:
            raise LoginError(explain_exchange_error(exc)) from exc


def explain_exchange_error(exc: globus_sdk.GlobusAPIError) -> str:
    body = exc.raw_json if isinstance(exc.raw_json, dict) else {}
    error = body.get("error") or exc.code
    description = body.get("error_description") or exc.message or exc.text
    if error == "invalid_grant" and str(description).startswith("This authorization code"):
        return str(description)  # Arctern says which: expired (and when), used, or mistyped
    if error == "invalid_grant":
        return (
            "The authorization code was not accepted: it has expired, was already used, "
            f"or was not copied completely. {CODE_LIFETIME_HINT} Use the new link to get "
            f"another code. (Server said: {description})"
        )
    return f"Logging in failed ({exc.http_status} {error}): {description}"


def login(
    client_id: str,
    *,
    deployment: Deployment | None = None,
    token_file: Path | str | None = None,
    prompt: Prompt = "auto",
    code_provider: Callable[[str], str] | None = None,
    scopes: Iterable[str] = DEFAULT_SCOPES,
    refresh_tokens: bool = True,
    force: bool = False,
    attempts: int = 3,
) -> Session:
    """Log in with a native app registered on the deployment's developers page.

    Saved tokens (``~/.arctern-client/tokens.json`` unless ``token_file`` says otherwise) are
    reused, and refreshed when they expire, so a restarted kernel does not ask again; ``force``
    asks anyway. Otherwise a link is shown and the code it yields is read:

    - ``prompt="widget"`` (the default inside Jupyter when ipywidgets is installed): a text box
      under the link. The cell finishes at once and the returned session becomes usable when
      the code has been entered;
    - ``prompt="input"`` (the default elsewhere): ``input()``, with a fresh link after a
      rejected code, up to ``attempts`` times;
    - ``code_provider``: a function given the link that returns the code (for automation).

    ``deployment`` defaults to what globus-sdk is configured for (see :func:`connect`), so the
    same call works against Globus itself.
    """
    client_id = str(client_id).strip()
    if not client_id:
        raise LoginError("A client ID is required: register a native app and paste its ID.")
    deployment = deployment or Deployment.from_sdk_environment()
    session = Session(deployment, client_id, open_storage(client_id, deployment.key, token_file))
    if not force and usable_transfer_tokens(session.storage) is not None:
        session._activate()
        return session

    flow = LoginFlow(deployment, client_id, scopes=scopes, refresh_tokens=refresh_tokens)
    session.auth_client = flow.auth_client
    if code_provider is not None:
        session._complete(flow.exchange(code_provider(flow.url)))
        return session
    if prompt == "auto":
        prompt = "widget" if _in_notebook_with_widgets() else "input"
    if prompt == "widget":
        session.login_widget = WidgetLogin(flow, session)
        session.login_widget.show()
    else:
        _input_login(flow, session, attempts)
    return session


def _input_login(flow: LoginFlow, session: Session, attempts: int) -> None:
    for attempt in range(1, attempts + 1):
        _show_link(flow.url)
        code = input("Paste the authorization code here: ")
        if not code.strip():
            raise LoginError("No authorization code was entered; run login() again.")
        try:
            session._complete(flow.exchange(code))
        except LoginError as exc:
            if attempt == attempts:
                raise
            print(exc)
            flow.restart()
        else:
            print(f"Logged in{f' as {session.username}' if session.username else ''}.")
            return


def _show_link(url: str) -> None:
    print("Log in here (the page shows an authorization code when you are done):")
    print(url)


def _in_notebook_with_widgets() -> bool:
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()  # type: ignore[no-untyped-call]
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class WidgetLogin:
    """The link, a code box and a button; a rejected code brings up a fresh link."""

    def __init__(self, flow: LoginFlow, session: Session) -> None:
        import ipywidgets as widgets

        self.flow = flow
        self.session = session
        self.link = widgets.HTML()
        self.code = widgets.Text(
            placeholder="Paste the authorization code", layout=widgets.Layout(width="32em")
        )
        self.button = widgets.Button(description="Log in", button_style="primary")
        self.button.on_click(self.submit)
        self.status = widgets.HTML()
        self.box = widgets.VBox([self.link, widgets.HBox([self.code, self.button]), self.status])
        self._render_link()

    def _render_link(self) -> None:
        url = html.escape(self.flow.url, quote=True)
        self.link.value = (
            f'<a href="{url}" target="_blank" rel="noopener"><b>Log in</b></a> '
            "(opens a new tab; copy the code shown after logging in). "
            f"{CODE_LIFETIME_HINT}"
        )

    def submit(self, _button: Any = None) -> None:
        try:
            self.session._complete(self.flow.exchange(self.code.value))
        except LoginError as exc:
            self.flow.restart()
            self._render_link()
            self.code.value = ""
            self.status.value = f'<span style="color:#cf222e">{html.escape(str(exc))}</span>'
            return
        who = self.session.username or "you"
        self.status.value = f'<span style="color:#1a7f37">Logged in as {html.escape(who)}.</span>'
        self.code.disabled = True
        self.button.disabled = True

    def show(self) -> None:
        from IPython.display import display

        display(self.box)  # type: ignore[no-untyped-call]
