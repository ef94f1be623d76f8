"""Validation of the console's forms, giving one readable message per field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from arctern.limits import MAX_EMAIL, MAX_REDIRECT_URIS, MAX_URI

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Scopes an app may request when it starts a login flow (Globus does not fix them at
# registration time); the console lists them so developers know what to ask for.
KNOWN_SCOPES: tuple[str, ...] = (
    "openid",
    "profile",
    "email",
    "urn:globus:auth:scope:auth.globus.org:view_identities",
    "urn:globus:auth:scope:transfer.api.globus.org:all",
)


@dataclass
class FormResult:
    """Cleaned values and per-field error messages of one submitted form."""

    values: dict[str, object] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def clean_project(name: str, email: str) -> FormResult:
    result = FormResult(values={"name": name.strip(), "email": email.strip()})
    if not result.values["name"]:
        result.errors["name"] = "Enter a project name."
    elif len(name.strip()) > 200:
        result.errors["name"] = "Use at most 200 characters."
    if not email.strip():
        result.errors["email"] = "Enter a contact email so people can reach the project."
    elif len(email.strip()) > MAX_EMAIL:
        result.errors["email"] = f"Use at most {MAX_EMAIL} characters."
    elif not _EMAIL.match(email.strip()):
        result.errors["email"] = "Enter a valid email address, like you@example.edu."
    return result


def clean_app(name: str, app_type: str, redirect_text: str) -> FormResult:
    uris = [line.strip() for line in redirect_text.replace(",", "\n").splitlines() if line.strip()]
    result = FormResult(
        values={
            "name": name.strip(),
            "app_type": app_type,
            "redirect_uris": uris,
            "redirect_text": "\n".join(uris),
        }
    )
    if not name.strip():
        result.errors["name"] = "Enter an app name; people see it when they consent."
    elif len(name.strip()) > 200:
        result.errors["name"] = "Use at most 200 characters."
    if app_type not in ("native", "confidential"):
        result.errors["app_type"] = "Choose Native app or Portal / server app."
    bad = [uri for uri in uris if not _valid_redirect(uri)]
    if len(uris) > MAX_REDIRECT_URIS:
        result.errors["redirect_uris"] = f"Enter at most {MAX_REDIRECT_URIS} redirect URIs."
    elif any(len(uri) > MAX_URI for uri in uris):
        result.errors["redirect_uris"] = f"Use at most {MAX_URI} characters per redirect URI."
    elif bad:
        result.errors["redirect_uris"] = (
            f"Not a valid redirect URI: {bad[0]}. Use an absolute http:// or https:// URL "
            "without a #fragment."
        )
    elif not uris:
        result.errors["redirect_uris"] = "Enter at least one redirect URI."
    return result


def _valid_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment
