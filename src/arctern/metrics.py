"""Who may read ``/metrics``: nobody unless ``metrics_token`` is set, then its bearers.

Prometheus counters tell request volumes, login failures and library versions; that is for
the operator's scraper, not for anyone who can reach the API.
"""

from __future__ import annotations

import hmac

from arctern.config import Settings


def metrics_allowed(settings: Settings, authorization: str | None) -> bool:
    token = settings.metrics_token
    if not token or not authorization:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())
