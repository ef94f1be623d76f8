"""A user's webhook: where their task events are POSTed, and the secret that signs them.

The secret is made by the server, shown once when the webhook is set, and kept encrypted
with the deployment's secret key (the sender needs it to sign; a database dump alone does
not give it away).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from arctern.config import Settings
from arctern.db.models.auth import Identity
from arctern.secretbox import fernet_for

_PURPOSE = b"arctern webhook secret v1"
MAX_URL = 2000


class WebhookError(ValueError):
    """A webhook URL that is refused (in words for the page)."""


def check_url(url: str, settings: Settings) -> str:
    url = url.strip()
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.webhook_allow_http else ("https",)
    if len(url) > MAX_URL or parts.scheme not in allowed or not parts.hostname:
        raise WebhookError(
            "A webhook must be an https:// URL"
            + (" (or http://)" if settings.webhook_allow_http else "")
            + "."
        )
    if parts.username or parts.password:
        raise WebhookError("Put no credentials in the webhook URL; check the signature instead.")
    return url


def set_webhook(identity: Identity, url: str | None, settings: Settings) -> str | None:
    """Set (a new secret, returned to show once) or clear the identity's webhook."""
    if not url:
        identity.webhook_url = identity.webhook_secret = None
        return None
    identity.webhook_url = check_url(url, settings)
    secret = "whsec_" + secrets.token_urlsafe(32)
    key = fernet_for(settings.secret_key or "", _PURPOSE)
    identity.webhook_secret = key.encrypt(secret.encode()).decode()
    return secret


def secret_of(identity: Identity, settings: Settings) -> str | None:
    if not identity.webhook_url or not identity.webhook_secret:
        return None
    key = fernet_for(settings.secret_key or "", _PURPOSE)
    return key.decrypt(identity.webhook_secret.encode()).decode()
