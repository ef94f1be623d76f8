"""Identities and identity providers (the auth service owns these tables)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from arctern.db.base import Base, UTCDateTime, new_uuid


class IdentityProvider(Base):
    """An institution users log in through; local accounts are the first kind."""

    __tablename__ = "identity_providers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    domain: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="local")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


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

    provider: Mapped[IdentityProvider] = relationship(lazy="joined")
