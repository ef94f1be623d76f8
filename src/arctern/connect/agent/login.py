"""The login link of ``arctern connect setup``: OAuth2 authorization code with PKCE.

The user opens the link in any browser (the data host may have none), logs in through their
institution, and pastes the code the deployment shows back into the terminal, as with
``globus login --no-local-server``. The code is exchanged for a Transfer token with the
verifier that only this process knows; the token is used once, to register the endpoint,
and is not stored.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from arctern.auth.registry import CONNECT_CLIENT_ID
from arctern.transfer.security import TRANSFER_SCOPE


class LoginFailed(Exception):
    """The code was refused (mistyped, used, expired) or the answer was not a token."""


@dataclass(frozen=True)
class LoginLink:
    deployment_url: str
    verifier: str
    state: str

    @classmethod
    def start(cls, deployment_url: str) -> LoginLink:
        return cls(deployment_url.rstrip("/"), secrets.token_urlsafe(48), secrets.token_urlsafe(16))

    @property
    def auth_base(self) -> str:
        return f"{self.deployment_url}/auth/"

    @property
    def redirect_uri(self) -> str:
        return self.auth_base + "v2/web/auth-code"

    @property
    def authorize_url(self) -> str:
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        query = urlencode(
            {
                "client_id": str(CONNECT_CLIENT_ID),
                "redirect_uri": self.redirect_uri,
                "scope": TRANSFER_SCOPE,
                "response_type": "code",
                "state": self.state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "access_type": "online",
                "prompt": "login",
            }
        )
        return f"{self.auth_base}v2/oauth2/authorize?{query}"

    def exchange(self, code: str, timeout: float = 30.0) -> str:
        """The Transfer access token for ``code``."""
        response = httpx.post(
            self.auth_base + "v2/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "client_id": str(CONNECT_CLIENT_ID),
                "code_verifier": self.verifier,
            },
            timeout=timeout,
        )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200:
            reason = body.get("error_description") or body.get("error") or response.text[:200]
            raise LoginFailed(f"the authorization code was refused: {reason}")
        token = body.get("access_token")
        if body.get("resource_server") != "transfer.api.globus.org" or not token:
            raise LoginFailed("the deployment did not return a Transfer token")
        return str(token)
