"""All ORM models; importing this module registers every table on ``Base.metadata``."""

from arctern.db.models.auth import (
    AuthorizationCode,
    ClientCredential,
    ClientScope,
    Consent,
    Identity,
    IdentityProvider,
    LoginAttemptCounter,
    OAuthClient,
    OAuthToken,
    Project,
    SigningKeyRecord,
    WebSession,
)
from arctern.db.models.connect import AgentRequest, CentralDataListener, Endpoint
from arctern.db.models.groups import Group, GroupMembership
from arctern.db.models.timers import OutboxMessage, Timer, TimerRun
from arctern.db.models.transfer import (
    AclRule,
    Bookmark,
    Collection,
    EndpointRole,
    Task,
    TaskEvent,
    TaskItem,
)
from arctern.db.models.work import TaskFile, TaskPlan, WorkBatch

__all__ = [
    "AclRule",
    "AgentRequest",
    "AuthorizationCode",
    "Bookmark",
    "CentralDataListener",
    "ClientCredential",
    "ClientScope",
    "Collection",
    "Consent",
    "Endpoint",
    "EndpointRole",
    "Group",
    "GroupMembership",
    "Identity",
    "IdentityProvider",
    "LoginAttemptCounter",
    "OAuthClient",
    "OAuthToken",
    "OutboxMessage",
    "Project",
    "SigningKeyRecord",
    "Task",
    "TaskEvent",
    "TaskFile",
    "TaskItem",
    "TaskPlan",
    "Timer",
    "TimerRun",
    "WebSession",
    "WorkBatch",
]
