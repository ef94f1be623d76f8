"""Identities, providers, OAuth clients, projects, codes, tokens and consents (auth owns these).

Secrets (client secrets, authorization codes, access and refresh tokens) are stored only as
SHA-256 hashes of high-entropy random strings; passwords as argon2 hashes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from arctern.db.base import Base, BigIntPK, UTCDateTime, new_uuid


class IdentityProvider(Base):
    """An institution users log in through; local accounts are the first kind."""

    __tablename__ = "identity_providers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    domain: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="local")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # How to check passwords for kind "ldap" (auth/ldap.py), or the OpenID provider for kind
    # "oidc" (auth/upstream.py); secrets in it are encrypted.
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # A disabled provider is not offered, and its identities can neither log in nor use
    # tokens issued before (``auth.admin.set_provider_enabled``).
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())


class Identity(Base):
    """A person's identity at one provider; ``username`` is ``name@domain``."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("username"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    provider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity_providers.id"))
    username: Mapped[str] = mapped_column(String(300))
    name: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str | None] = mapped_column(String(300), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(300), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="used")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # For an identity from an OpenID provider: its ``sub`` there, which stays the same when
    # the username claim changes hands.
    external_subject: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # The identity set this identity is linked into, named by the id of the identity the set
    # was made from (None: a set of its own). See ``auth/identity_sets.py``.
    set_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True, index=True)
    # Whether mail about this identity's tasks is sent (the account page's switch).
    task_mail: Mapped[bool] = mapped_column(Boolean, default=True)
    # Where this identity's task events are POSTed, and the HMAC key that signs them
    # (encrypted with the deployment's secret key); see ``arctern.notify``.
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(Text, nullable=True)

    provider: Mapped[IdentityProvider] = relationship(lazy="joined")

    @property
    def active(self) -> bool:
        """Whether the identity may log in and use tokens (not disabled, nor its provider)."""
        return self.status == "used" and self.provider.enabled


class Project(Base):
    """A developer project grouping OAuth clients; administered by ``admin_ids``."""

    __tablename__ = "auth_projects"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    display_name: Mapped[str] = mapped_column(String(300))
    contact_email: Mapped[str] = mapped_column(String(300))
    # Identity ids (strings) allowed to manage the project and its clients.
    admin_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    admin_group_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OAuthClient(Base):
    """A registered application: public (native, PKCE) or confidential (has credentials)."""

    __tablename__ = "oauth_clients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(300))
    project_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("auth_projects.id", ondelete="CASCADE"), nullable=True, index=True
    )
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id"), nullable=True, index=True
    )
    # Globus client types: "public_installed_client" or "confidential_client".
    client_type: Mapped[str] = mapped_column(String(40))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    visibility: Mapped[str] = mapped_column(String(20), default="private")
    # The template this client was instantiated from (the globus-cli's native template).
    parent_client: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    required_idp: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    preselect_idp: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    links: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @property
    def is_public(self) -> bool:
        return self.client_type == "public_installed_client"


class ClientCredential(Base):
    """One secret of a confidential client (a client may hold several, like Globus)."""

    __tablename__ = "oauth_client_credentials"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(300), default="")
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuthorizationCode(Base):
    """A single-use code bound to client, redirect URI, PKCE challenge and scope."""

    __tablename__ = "oauth_authorization_codes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    identity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)  # root scope strings, space separated
    code_challenge: Mapped[str | None] = mapped_column(String(200), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(10), nullable=True)
    nonce: Mapped[str | None] = mapped_column(String(300), nullable=True)
    access_type: Mapped[str] = mapped_column(String(10), default="online")
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime())
    # Every identity this login session authenticated ({identity id: auth time, epoch
    # seconds}); None on rows from before sessions could hold several (the one identity).
    authentications: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class OAuthToken(Base):
    """One access token (and maybe refresh token) for one resource server."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (Index("ix_oauth_tokens_identity_client", "identity_id", "client_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    identity_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id"), nullable=True
    )
    resource_server: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    access_revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    refresh_revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the user last authenticated (carried across refreshes for session_info).
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Every identity this login session authenticated ({identity id: auth time, epoch
    # seconds}); None on rows from before sessions could hold several (the one identity).
    authentications: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    # The authorization code this token family came from; reused codes revoke the family.
    code_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)


class Consent(Base):
    """A scope an identity granted to a client; dependent scopes point at their parent."""

    __tablename__ = "oauth_consents"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("oauth_consents.id", ondelete="CASCADE"), nullable=True
    )
    scope_name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="approved")
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    updated: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used: Mapped[datetime] = mapped_column(UTCDateTime())


class ClientScope(Base):
    """A scope a client defines for itself (``https://auth.globus.org/scopes/<client>/<suffix>``)
    so that other apps can ask users for access to it; tokens for it go to that client as
    their resource server. Its dependent scopes are what the client may then get for the
    user with the dependent-token grant (``auth/scope_registry.py``)."""

    __tablename__ = "auth_client_scopes"
    __table_args__ = (UniqueConstraint("client_id", "suffix"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    suffix: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    advertised: Mapped[bool] = mapped_column(Boolean, default=False)
    allows_refresh_token: Mapped[bool] = mapped_column(Boolean, default=True)
    required_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    # [{"scope": <scope string>, "optional": bool, "requires_refresh_token": bool}]
    dependent_scopes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginAttemptCounter(Base):
    """Password attempts in one fixed minute for one throttling key.

    Keys are ``user:<username>|<address>``, ``addr:<address>`` and ``global``. A login
    increments all three with one upsert each *before* hashing (``INSERT .. ON CONFLICT DO
    UPDATE .. RETURNING``: atomic on SQLite and PostgreSQL, so concurrent attempts cannot all
    read a count below the limit) and gives the slots back when the password was right.
    """

    __tablename__ = "auth_login_attempts"
    __table_args__ = (UniqueConstraint("key", "window_start"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(420))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class WebSession(Base):
    """A browser login, server side, so logout and revocation reach every API host at once.

    The session cookie carries only a random id; this row holds its SHA-256 digest. A session
    ends at ``expires_at`` (absolute lifetime) or after the idle timeout since ``last_seen``.
    """

    __tablename__ = "auth_web_sessions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())  # also the auth_time
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # Every identity this login session authenticated ({identity id: auth time, epoch
    # seconds}); None on rows from before sessions could hold several (the one identity).
    authentications: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)


class SigningKeyRecord(Base):
    """The id_token signing key every API process uses (one row), encrypted at rest."""

    __tablename__ = "auth_signing_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(100))
    private_pem: Mapped[str] = mapped_column(Text)  # Fernet token of the PEM
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
