"""What an application may require of the login session before it gets a code.

Globus Auth's authorize request takes ``session_required_identities`` (identity ids that must
have logged in during this session; ``globus session update alice@example.edu`` sends it) and
``session_required_single_domain`` (the session must hold an identity from one of these
domains). A registered client scope with ``required_domains`` asks the same of anyone who
grants it. When the session falls short the browser goes back to the login page, which says
whom to log in as; a login with another identity of the same set is added to the session
(``sessions.log_in``), so the application's user stays who they were.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from arctern.auth import identity_sets
from arctern.auth.scope_registry import registered_scope
from arctern.auth.scopes import ScopeNode
from arctern.db.models.auth import Identity

IDENTITIES_PARAMETER = "session_required_identities"
DOMAINS_PARAMETER = "session_required_single_domain"
# Bounds what one request can make the server look up.
MAX_REQUIRED = 20


class RequirementError(ValueError):
    """A session parameter that is not what the protocol allows (in words for the page)."""


@dataclass(frozen=True)
class SessionRequirements:
    identities: tuple[uuid.UUID, ...] = ()
    # The session needs an identity from one domain of each group.
    domain_groups: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def of_request(
        cls, params: Mapping[str, str], session: Session, scopes: list[ScopeNode]
    ) -> SessionRequirements:
        """From the authorize request's session parameters and the requested scopes'
        ``required_domains``."""
        identities = []
        for value in _comma_list(params.get(IDENTITIES_PARAMETER)):
            try:
                identities.append(uuid.UUID(value))
            except ValueError:
                raise RequirementError(
                    f"{IDENTITIES_PARAMETER} must list identity ids; {value[:60]!r} is not one."
                ) from None
        groups = []
        domains = tuple(d.lower() for d in _comma_list(params.get(DOMAINS_PARAMETER)))
        if domains:
            groups.append(domains)
        for node in _flatten(scopes):
            row = registered_scope(session, node.name)
            if row is not None and row.required_domains:
                groups.append(tuple(d.lower() for d in row.required_domains))
        return cls(tuple(identities), tuple(groups))


@dataclass(frozen=True)
class Shortfall:
    """What the session still lacks."""

    # Identities of the user's set that must still log in.
    identities: list[Identity] = field(default_factory=list)
    # Domain groups none of the session's identities belongs to.
    domain_groups: list[tuple[str, ...]] = field(default_factory=list)
    # Required identity ids that are not in the user's identity set at all.
    strangers: list[uuid.UUID] = field(default_factory=list)

    def login_hint(self) -> str:
        """The sentence the login page shows."""
        if self.identities:
            names = " and ".join(i.username for i in self.identities)
            return f"The application needs you to log in as {names} as well."
        choices = " or ".join(", ".join(group) for group in self.domain_groups)
        return f"The application needs you to log in with an account of {choices}."


def shortfall(
    session: Session,
    identity: Identity,
    authenticated: Mapping[str, int],
    requirements: SessionRequirements,
) -> Shortfall | None:
    """What ``requirements`` ask that the session (``identity``'s, which authenticated the
    ids in ``authenticated``) does not have yet; None when it has everything."""
    if not requirements.identities and not requirements.domain_groups:
        return None
    members = {m.id: m for m in identity_sets.members_sync(session, identity.id)}
    in_session = [members[i] for i in map(uuid.UUID, authenticated) if i in members]
    missing = Shortfall(
        identities=[
            members[i]
            for i in requirements.identities
            if i in members and str(i) not in authenticated
        ],
        domain_groups=[
            group
            for group in requirements.domain_groups
            if not any(_domain(m.username) in group for m in in_session)
        ],
        strangers=[i for i in requirements.identities if i not in members],
    )
    if missing.identities or missing.domain_groups or missing.strangers:
        return missing
    return None


def _domain(username: str) -> str:
    return username.rpartition("@")[2].lower()


def _comma_list(value: str | None) -> list[str]:
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    if len(items) > MAX_REQUIRED:
        raise RequirementError(f"At most {MAX_REQUIRED} session requirements of each kind.")
    return items


def _flatten(nodes: list[ScopeNode]) -> list[ScopeNode]:
    found = []
    for node in nodes:
        found.append(node)
        found.extend(_flatten(node.dependencies))
    return found
