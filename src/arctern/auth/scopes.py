"""Globus scope strings: bracket-aware parsing, resource-server mapping, human descriptions."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

AUTH_RS = "auth.globus.org"
TRANSFER_RS = "transfer.api.globus.org"
TRANSFER_ALL = "urn:globus:auth:scope:transfer.api.globus.org:all"
MANAGE_PROJECTS = "urn:globus:auth:scope:auth.globus.org:manage_projects"
VIEW_IDENTITIES = "urn:globus:auth:scope:auth.globus.org:view_identities"
VIEW_IDENTITY_SET = "urn:globus:auth:scope:auth.globus.org:view_identity_set"
VIEW_CONSENTS = "urn:globus:auth:scope:auth.globus.org:view_consents"
OIDC_SCOPES = frozenset({"openid", "profile", "email"})

# Resource servers whose scopes are URLs naming a different id than the RS name.
_URL_SCOPE_RS = {"eec9b274-0c81-4334-bdc2-54e90e689b9a": "flows.globus.org"}
_URN = re.compile(r"^urn:globus:auth:scope:([^:\s\[\]]+):([^\s\[\]]+)$")
_URL = re.compile(r"^https://auth\.globus\.org/scopes/([^/\s\[\]]+)/([^\s\[\]]+)$")

_DESCRIPTIONS = {
    "openid": "Know who you are (your identity id)",
    "profile": "View your name, username and institution",
    "email": "View your email address",
    VIEW_IDENTITY_SET: "View your linked identities",
    VIEW_IDENTITIES: "Look up other users' identities",
    VIEW_CONSENTS: "View the permissions you have granted",
    MANAGE_PROJECTS: "Manage your developer projects and applications",
    TRANSFER_ALL: "Transfer files and manage your collections, tasks and bookmarks",
    "https://auth.globus.org/scopes/524230d7-ea86-4a52-8312-86065a9e0417/timer": (
        "Schedule transfers that run for you later or repeatedly (timers)"
    ),
}


# The services this deployment runs (Auth, Transfer, Groups, Timers). Scopes of other Globus
# services (Search, Flows, Compute, ...) are still granted, so that clients which always ask
# for them (globus-cli's login) keep working, but the consent page says nothing here answers
# them.
SERVED_RESOURCE_SERVERS = frozenset(
    {AUTH_RS, TRANSFER_RS, "groups.api.globus.org", "524230d7-ea86-4a52-8312-86065a9e0417"}
)
# Scopes a collection defines for itself (named by the collection's id).
COLLECTION_SCOPE_NAMES = frozenset({"data_access", "https"})


def served_here(scope: str) -> bool:
    """Whether a service of this deployment answers tokens for ``scope``."""
    try:
        rs = resource_server_of(scope)
    except ScopeError:
        return False
    if rs in SERVED_RESOURCE_SERVERS or scope.endswith(":manage_collections"):
        return True  # (an endpoint's GCS Manager API)
    name = scope.rsplit("/", 1)[-1]
    return scope.startswith("https://") and name in COLLECTION_SCOPE_NAMES


class ScopeError(ValueError):
    """The scope string is malformed or names no known resource server."""


@dataclass
class ScopeNode:
    """One requested scope with its (possibly optional) dependent scopes."""

    name: str
    optional: bool = False
    dependencies: list[ScopeNode] = field(default_factory=list)

    def render(self) -> str:
        prefix = "*" if self.optional else ""
        if not self.dependencies:
            return prefix + self.name
        return f"{prefix}{self.name}[{' '.join(d.render() for d in self.dependencies)}]"


def parse_scopes(text: str | None) -> list[ScopeNode]:
    """Parse ``a b[c *d[e]]`` into trees; brackets may contain spaces."""
    source = text or ""
    pos = 0

    def parse_list(closing: bool) -> list[ScopeNode]:
        nonlocal pos
        nodes: list[ScopeNode] = []
        while pos < len(source):
            char = source[pos]
            if char.isspace():
                pos += 1
            elif char == "]":
                if not closing:
                    raise ScopeError("unbalanced ']' in scope")
                pos += 1
                return nodes
            elif char == "[":
                raise ScopeError("'[' without a scope name")
            else:
                nodes.append(parse_node())
        if closing:
            raise ScopeError("unbalanced '[' in scope")
        return nodes

    def parse_node() -> ScopeNode:
        nonlocal pos
        optional = source[pos] == "*"
        if optional:
            pos += 1
        start = pos
        while pos < len(source) and not source[pos].isspace() and source[pos] not in "[]":
            pos += 1
        name = source[start:pos]
        if not name:
            raise ScopeError("empty scope name")
        node = ScopeNode(name, optional)
        if pos < len(source) and source[pos] == "[":
            pos += 1
            node.dependencies = parse_list(closing=True)
        return node

    return parse_list(closing=False)


def resource_server_of(scope: str) -> str:
    """The resource server a root scope string belongs to (fixed Globus names)."""
    if scope in OIDC_SCOPES:
        return AUTH_RS
    match = _URN.match(scope)
    if match:
        return match.group(1)
    match = _URL.match(scope)
    if match:
        return _URL_SCOPE_RS.get(match.group(1), match.group(1))
    raise ScopeError(f"Unknown scope: {scope}")


def root_scopes(text: str | None) -> list[str]:
    """The distinct root scope strings of a request, in order; validates each."""
    roots: list[str] = []
    for node in parse_scopes(text):
        resource_server_of(node.name)
        if node.name not in roots:
            roots.append(node.name)
    return roots


def split_by_resource_server(scopes: list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for scope in scopes:
        grouped.setdefault(resource_server_of(scope), []).append(scope)
    return grouped


def describe(scope: str) -> str:
    """A sentence for the consent page."""
    if scope in _DESCRIPTIONS:
        return _DESCRIPTIONS[scope]
    rs = resource_server_of(scope)
    name = scope.rsplit(":" if scope.startswith("urn:") else "/", 1)[-1]
    if name == "data_access":
        return f"Access data on collection {rs}"
    return f"Use the {rs} service ({name.replace('_', ' ')})"


def scope_uuid(scope: str) -> uuid.UUID:
    """A stable id for a scope string (the consents API reports scopes by id)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, scope)
