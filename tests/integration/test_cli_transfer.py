"""The unmodified globus-cli against a live server: endpoint search/show, ls, mkdir, rename,
transfer (single, recursive, batch, sync level, include/exclude), delete/rm, task list/show/
wait/event-list/cancel and bookmarks, each checked for its output or its effect on disk."""

from __future__ import annotations

import filecmp
import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.test_auth_globus_cli import globus, globus_login
from tests.support.server import LiveServer


@dataclass
class Cli:
    server: LiveServer
    home: Path
    c1: str
    c2: str
    scratch: str  # e.g. "/cli-1a2b3c/" in collection 2

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        if input is None:
            return globus(self.server, self.home, *args)
        return subprocess.run(
            [globus.__globals__["GLOBUS"], *args],
            env=self.server.client_env(self.home),
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, *args: str, input: str | None = None) -> str:
        result = self.run(*args, input=input)
        assert result.returncode == 0, f"globus {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def json(self, *args: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self.ok(*args, "-F", "json"))

    @property
    def c1_root(self) -> Path:
        return self.server.home / "demo" / "collection1"

    def dest(self, relative: str = "") -> Path:
        return self.server.home / "demo" / "collection2" / self.scratch.strip("/") / relative

    def submit(self, *args: str, input: str | None = None) -> str:
        """Run a submitting command and return the task id it printed."""
        out = self.ok(*args, "-F", "json", input=input)
        doc = json.loads(out)
        assert doc["code"] == "Accepted", doc
        return str(doc["task_id"])

    def wait(self, task_id: str) -> None:
        self.ok("task", "wait", task_id, "--timeout", "120", "--polling-interval", "1")


@pytest.fixture(scope="module")
def cli(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    home = tmp_path_factory.mktemp("cli-home")
    login = globus_login(server, home)
    assert login.returncode == 0, login.stdout + login.stderr
    found = json.loads(
        globus(server, home, "endpoint", "search", "Demo Collection", "-F", "json").stdout
    )
    ids = {e["display_name"]: e["id"] for e in found["DATA"]}
    scratch = f"/cli-{uuid.uuid4().hex[:6]}/"
    session = Cli(server, home, ids["Demo Collection 1"], ids["Demo Collection 2"], scratch)
    session.ok("mkdir", f"{session.c2}:{scratch}")
    return session


def test_endpoint_search_and_show(cli: Cli) -> None:
    text = cli.ok("endpoint", "search", "Demo Collection")
    assert "Demo Collection 1" in text and "Demo Collection 2" in text
    assert cli.c1 in text
    # Collections are GCSv5 mapped collections: like Globus, `endpoint show` sends the user
    # to `collection show` (exit 3); its hidden type-check bypass still shows the document.
    refused = cli.run("endpoint", "show", cli.c1)
    assert refused.returncode == 3 and "collection show" in refused.stderr
    shown = cli.ok("endpoint", "show", "--skip-endpoint-type-check", cli.c1)
    assert "Demo Collection 1" in shown and "researcher@example.edu" in shown
    assert "/~/" in shown
    doc = cli.json("endpoint", "show", "--skip-endpoint-type-check", cli.c2)
    assert doc["entity_type"] == "GCSv5_mapped_collection"
    found = cli.json(
        "endpoint", "search", "Demo", "--filter-entity-type", "GCSv5_mapped_collection"
    )
    assert {cli.c1, cli.c2} <= {e["id"] for e in found["DATA"]}
    roles = cli.ok("endpoint", "role", "list", cli.c1)
    assert "researcher@example.edu" in roles and "administrator" in roles
    missing = cli.run("endpoint", "show", str(uuid.uuid4()))
    assert missing.returncode == 1 and "EndpointNotFound" in missing.stderr


def test_ls_plain_long_json_and_recursive(cli: Cli) -> None:
    names = cli.ok("ls", cli.c1).split()
    assert {"README.txt", "hello.txt", "large.bin", "nested/", "data/"} <= set(names)
    assert {"dir/", "top.txt"} <= set(cli.ok("ls", f"{cli.c1}:/nested/").split())
    long = cli.ok("ls", "-l", f"{cli.c1}:/~/")
    assert "large.bin" in long and str(20 * 1024 * 1024) in long
    doc = cli.json("ls", f"{cli.c1}:/nested/dir")
    assert sorted(f["name"] for f in doc["DATA"]) == ["another.txt", "file.txt"]
    recursive = cli.ok("ls", "-r", f"{cli.c1}:/nested")
    assert set(recursive.split()) >= {"dir/", "dir/file.txt", "dir/another.txt", "top.txt"}
    filtered = cli.ok("ls", "-r", "--filter", "~file*", f"{cli.c1}:/nested")
    assert "dir/file.txt" in filtered.split() and "top.txt" not in filtered.split()
    failure = cli.run("ls", f"{cli.c1}:/no/such/place/")
    assert failure.returncode == 1 and "ClientError.NotFound" in failure.stderr


def test_mkdir_and_rename(cli: Cli) -> None:
    out = cli.ok("mkdir", f"{cli.c2}:{cli.scratch}made")
    assert "The directory was created successfully" in out
    assert cli.dest("made").is_dir()
    again = cli.run("mkdir", f"{cli.c2}:{cli.scratch}made")
    assert again.returncode == 1 and "Exists" in again.stderr
    cli.dest("made/old.txt").write_text("rename me")
    out = cli.ok("rename", cli.c2, f"{cli.scratch}made/old.txt", f"{cli.scratch}made/new.txt")
    assert "File or directory renamed successfully" in out
    assert cli.dest("made/new.txt").read_text() == "rename me"
    assert not cli.dest("made/old.txt").exists()


def test_transfer_single_recursive_and_batch(cli: Cli) -> None:
    single = cli.submit(
        "transfer",
        f"{cli.c1}:/hello.txt",
        f"{cli.c2}:{cli.scratch}single/hello.txt",
        "--label",
        "cli single",
    )
    recursive = cli.submit(
        "transfer",
        "--recursive",
        f"{cli.c1}:/nested",
        f"{cli.c2}:{cli.scratch}tree",
    )
    batch_lines = "hello.txt b/hello.txt\n# a comment\n--recursive data b/data\n"
    batch = cli.submit(
        "transfer",
        "--batch",
        "-",
        f"{cli.c1}:/",
        f"{cli.c2}:{cli.scratch}batch/",
        input=batch_lines,
    )
    for task_id in (single, recursive, batch):
        cli.wait(task_id)
    assert filecmp.cmp(cli.c1_root / "hello.txt", cli.dest("single/hello.txt"), shallow=False)
    for relative in ("dir/file.txt", "dir/another.txt", "top.txt"):
        assert filecmp.cmp(
            cli.c1_root / "nested" / relative, cli.dest(f"tree/{relative}"), shallow=False
        )
    assert cli.dest("batch/b/hello.txt").read_text() == (cli.c1_root / "hello.txt").read_text()
    assert sorted(p.name for p in cli.dest("batch/b/data").iterdir()) == [
        "notes.md",
        "numbers.csv",
    ]

    shown = cli.ok("task", "show", single)
    assert "SUCCEEDED" in shown and "cli single" in shown
    doc = cli.json("task", "show", recursive)
    assert doc["status"] == "SUCCEEDED" and doc["files_transferred"] == 3
    transfers = cli.json("task", "show", "--successful-transfers", recursive)
    paths = sorted(t["destination_path"] for t in transfers["DATA"])
    assert paths == sorted(
        f"{cli.scratch}tree/{p}" for p in ("dir/another.txt", "dir/file.txt", "top.txt")
    )
    events = cli.ok("task", "event-list", single)
    assert events.strip()
    listing = cli.json("task", "list", "--filter-status", "SUCCEEDED")
    assert {single, recursive, batch} <= {t["task_id"] for t in listing["DATA"]}
    labelled = cli.json("task", "list", "--filter-label", "cli single")
    assert [t["task_id"] for t in labelled["DATA"]] == [single]
    assert (
        cli.json("task", "list", "--filter-status", "ACTIVE", "--filter-label", "cli single")[
            "DATA"
        ]
        == []
    )


def test_sync_level_and_include_exclude(cli: Cli) -> None:
    target = cli.dest("sync/hello.txt")
    target.parent.mkdir(parents=True)
    target.write_text("already here, leave me alone\n")
    task = cli.submit(
        "transfer",
        "--sync-level",
        "exists",
        f"{cli.c1}:/hello.txt",
        f"{cli.c2}:{cli.scratch}sync/hello.txt",
    )
    cli.wait(task)
    assert target.read_text() == "already here, leave me alone\n"
    task = cli.submit(
        "transfer",
        "--sync-level",
        "checksum",
        f"{cli.c1}:/hello.txt",
        f"{cli.c2}:{cli.scratch}sync/hello.txt",
    )
    cli.wait(task)
    assert target.read_text() == (cli.c1_root / "hello.txt").read_text()

    task = cli.submit(
        "transfer",
        "--recursive",
        "--include",
        "file.txt",
        "--exclude",
        "*",
        f"{cli.c1}:/nested",
        f"{cli.c2}:{cli.scratch}filtered",
    )
    cli.wait(task)
    copied = sorted(
        str(p.relative_to(cli.dest("filtered")))
        for p in cli.dest("filtered").rglob("*")
        if p.is_file()
    )
    assert copied == ["dir/file.txt"]


def test_delete_and_rm(cli: Cli) -> None:
    base = cli.dest("doomed")
    (base / "sub").mkdir(parents=True)
    (base / "one.txt").write_text("1")
    (base / "sub" / "two.txt").write_text("2")
    (base / "keep.txt").write_text("k")
    task = cli.submit("delete", f"{cli.c2}:{cli.scratch}doomed/one.txt")
    cli.wait(task)
    assert not (base / "one.txt").exists() and (base / "keep.txt").exists()
    assert cli.json("task", "show", task)["type"] == "DELETE"
    refused = cli.run("delete", f"{cli.c2}:{cli.scratch}doomed/sub")
    assert refused.returncode == 0  # accepted; the task itself fails without --recursive
    removed = cli.run("rm", "-r", f"{cli.c2}:{cli.scratch}doomed/sub")
    assert removed.returncode == 0, removed.stderr
    assert "Delete task submitted" in removed.stderr
    assert not (base / "sub").exists()
    cli.dest("doomed/a.tmp").write_text("a")
    cli.dest("doomed/b.tmp").write_text("b")
    globbed = cli.run("rm", f"{cli.c2}:{cli.scratch}doomed/*.tmp")
    assert globbed.returncode == 0, globbed.stderr
    assert sorted(p.name for p in base.iterdir()) == ["keep.txt"]
    outside = cli.run("rm", f"{cli.c2}:/../etc/passwd")
    assert outside.returncode != 0


def test_bookmarks(cli: Cli) -> None:
    name = f"cli-bm-{uuid.uuid4().hex[:6]}"
    out = cli.ok("bookmark", "create", f"{cli.c1}:/nested/", name)
    assert "Bookmark ID" in out or name in out
    listed = cli.ok("bookmark", "list")
    assert name in listed and "Demo Collection 1" in listed and "/nested/" in listed
    docs = cli.json("bookmark", "list")
    assert any(b["name"] == name and b["endpoint_id"] == cli.c1 for b in docs["DATA"])


def test_task_cancel_of_finished_task(cli: Cli) -> None:
    task = cli.submit("transfer", f"{cli.c1}:/hello.txt", f"{cli.c2}:{cli.scratch}c/hello.txt")
    cli.wait(task)
    out = cli.ok("task", "cancel", task)
    assert "completed" in out.lower()
    assert cli.json("task", "show", task)["status"] == "SUCCEEDED"


def test_task_cancel_of_active_task(cli: Cli) -> None:
    # A sparse 4 GiB file: free to create, seconds of work to copy and checksum.
    huge = cli.dest("huge.bin")
    with huge.open("wb") as handle:
        handle.truncate(4 * 1024**3)
    try:
        task = cli.submit(
            "transfer",
            "--label",
            "to be cancelled",
            f"{cli.c2}:{cli.scratch}huge.bin",
            f"{cli.c2}:{cli.scratch}cancelled/huge.bin",
        )
        out = cli.ok("task", "cancel", task)
        assert "cancelled successfully" in out
        doc = cli.json("task", "show", task)
        assert doc["status"] == "FAILED" and doc["fatal_error"]["code"] == "CANCELED"
        waited = cli.run("task", "wait", task, "--timeout", "10")
        assert waited.returncode == 1
        assert "CANCELED" in cli.ok("task", "event-list", task)
        updated = cli.run("task", "update", task, "--label", "too late")
        assert updated.returncode == 1
        assert not cli.dest("cancelled/huge.bin").exists()
        leftovers = [p.name for p in cli.dest().rglob(".arctern-*")]
        assert leftovers == []
    finally:
        huge.unlink()


def test_task_update_of_active_task(cli: Cli) -> None:
    huge = cli.dest("huge-update.bin")
    with huge.open("wb") as handle:
        handle.truncate(4 * 1024**3)
    try:
        task = cli.submit(
            "transfer",
            f"{cli.c2}:{cli.scratch}huge-update.bin",
            f"{cli.c2}:{cli.scratch}updated/huge.bin",
        )
        cli.ok("task", "update", task, "--label", "renamed while running")
        # Cancel right away so the copy never has to run to the end; the label stays.
        cli.ok("task", "cancel", task)
        assert cli.json("task", "show", task)["label"] == "renamed while running"
        listed = cli.json("task", "list", "--filter-label", "renamed while running")
        assert [t["task_id"] for t in listed["DATA"]] == [task]
    finally:
        huge.unlink()


def test_stat_pause_info_and_permissions(cli: Cli) -> None:
    from tests.integration.test_transfer_api import make_user

    stat = cli.ok("stat", f"{cli.c1}:/hello.txt")
    assert "hello.txt" in stat and "file" in stat
    task = cli.submit("transfer", f"{cli.c1}:/hello.txt", f"{cli.c2}:{cli.scratch}p/hello.txt")
    cli.wait(task)
    assert "not paused" in cli.ok("task", "pause-info", task)
    assert cli.json("task", "show", "--skipped-errors", task)["DATA"] == []

    username, _ = make_user(cli.server, "perm")
    created = cli.ok(
        "endpoint",
        "permission",
        "create",
        f"{cli.c2}:{cli.scratch}",
        "--permissions",
        "r",
        "--identity",
        username,
    )
    assert "Access rule created successfully" in created
    rules = cli.json("endpoint", "permission", "list", cli.c2)
    mine = [r for r in rules["DATA"] if r["path"] == cli.scratch]
    assert len(mine) == 1 and mine[0]["permissions"] == "r"
    listed = cli.ok("endpoint", "permission", "list", cli.c2)
    assert username in listed
    rule_id = mine[0]["id"]
    assert (
        "updated"
        in cli.ok(
            "endpoint", "permission", "update", cli.c2, rule_id, "--permissions", "rw"
        ).lower()
    )
    assert "deleted" in cli.ok("endpoint", "permission", "delete", cli.c2, rule_id).lower()
