"""All ORM models; importing this module registers every table on ``Base.metadata``."""

from arctern.db.models.auth import Identity, IdentityProvider
from arctern.db.models.transfer import (
    AclRule,
    Bookmark,
    Collection,
    Task,
    TaskEvent,
    TaskItem,
)

__all__ = [
    "AclRule",
    "Bookmark",
    "Collection",
    "Identity",
    "IdentityProvider",
    "Task",
    "TaskEvent",
    "TaskItem",
]
