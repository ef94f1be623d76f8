"""Synchronizer-token CSRF protection for every HTML form (auth pages and the web console).

The token lives in the signed session cookie; forms echo it in the hidden field ``csrf_token``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from arctern.errors import PermissionDenied

SESSION_KEY = "csrf_token"
FIELD = "csrf_token"


class CsrfFailed(PermissionDenied):
    """The form did not carry this session's CSRF token (stale page or forged request)."""

    code = "CsrfFailed"


def csrf_token(request: Request) -> str:
    """This session's token, created on first use."""
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = token
    return token


def csrf_ok(request: Request, form: Mapping[str, Any]) -> bool:
    expected = request.session.get(SESSION_KEY)
    submitted = form.get(FIELD)
    if not isinstance(expected, str) or not expected or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(expected, submitted)


def verify_csrf(request: Request, form: Mapping[str, Any]) -> None:
    """Raise CsrfFailed (HTTP 403) unless the form carries this session's token."""
    if not csrf_ok(request, form):
        raise CsrfFailed(
            "This form has expired or did not come from this site. Reload the page and try again."
        )
