"""Groups (the Globus Groups API v2): named sets of identities that access rules can name.

``GroupMembership.group_key`` repeats the group id as text, in the form access rules store
principals in, so that a rule lookup joins on it directly.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from arctern.db.base import Base, UTCDateTime, new_uuid


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(String(4000), default="")
    # "private": members only; "authenticated": every logged-in user can see the group.
    visibility: Mapped[str] = mapped_column(String(20), default="private")
    # "members" or "managers": who sees the member list.
    members_visibility: Mapped[str] = mapped_column(String(20), default="managers")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GroupMembership(Base):
    __tablename__ = "group_memberships"
    __table_args__ = (
        UniqueConstraint("group_id", "identity_id"),
        Index("ix_group_memberships_identity_status", "identity_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    group_key: Mapped[str] = mapped_column(String(36))
    identity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id"))
    role: Mapped[str] = mapped_column(String(20), default="member")  # admin, manager, member
    # active, invited, left, removed, declined
    status: Mapped[str] = mapped_column(String(20), default="active")
    updated: Mapped[datetime] = mapped_column(UTCDateTime())
