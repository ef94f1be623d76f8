"""Notebook helpers for Arctern (and Globus) on top of the unmodified globus-sdk.

>>> import arctern_client as ac
>>> server = ac.connect("https://arctern.example.org")  # discovers the service URLs
>>> me = server.login("<client id of your native app>")   # link + code box; tokens saved
>>> task = me.transfer("Demo Collection 1:/large.bin", "Demo Collection 2:/copies/")
>>> me.watch(task)                                        # live progress bar
>>> me.tasks(status="succeeded")                          # table of recent tasks
"""

from arctern_client.deployment import Deployment, connect
from arctern_client.display import FileListing, TaskTable, TaskView
from arctern_client.errors import (
    AmbiguousCollection,
    ArcternClientError,
    CollectionNotFound,
    ConnectError,
    LoginError,
)
from arctern_client.locations import Collection, split_location
from arctern_client.login import LoginFlow, login
from arctern_client.operations import SubmittedTask, cancel, get_task, ls, tasks, transfer, watch
from arctern_client.session import Session

__all__ = [
    "AmbiguousCollection",
    "ArcternClientError",
    "Collection",
    "CollectionNotFound",
    "ConnectError",
    "Deployment",
    "FileListing",
    "LoginError",
    "LoginFlow",
    "Session",
    "SubmittedTask",
    "TaskTable",
    "TaskView",
    "cancel",
    "connect",
    "get_task",
    "login",
    "ls",
    "split_location",
    "tasks",
    "transfer",
    "watch",
]
