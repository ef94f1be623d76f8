"""A corpus of path attacks against ls/stat/mkdir/rename/transfer/delete over HTTP: canary
files planted outside a collection's root are never read, listed, modified or deleted, and
nothing is created outside the root."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import Session, create_collection

SECRET = b"CANARY-" + uuid.uuid4().hex.encode()
OLD_ATIME = 1_000_000  # any read or listing moves atime forward (relatime: atime < mtime)


@dataclass
class Jail:
    base: Path  # holds the root and the canaries
    root: Path
    collection: str

    def snapshot(self) -> dict[str, tuple[Any, ...]]:
        """Everything outside the root: names, kinds, sizes, mtimes and contents.

        Reads use O_NOATIME so that the atime check (``atimes``) still sees the server's reads.
        """
        seen: dict[str, tuple[Any, ...]] = {}
        for dirpath, dirnames, filenames in os.walk(self.base, followlinks=False):
            here = Path(dirpath)
            dirnames[:] = [d for d in dirnames if here / d != self.root]
            for name in dirnames + filenames:
                path = here / name
                if path == self.root:
                    continue
                st = path.lstat()
                digest = None
                if stat.S_ISREG(st.st_mode):
                    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
                    try:
                        digest = hashlib.sha256(os.read(fd, 1 << 20)).hexdigest()
                    finally:
                        os.close(fd)
                seen[str(path.relative_to(self.base))] = (
                    st.st_mode,
                    st.st_size,
                    st.st_mtime_ns,
                    digest,
                )
        return seen

    def atimes(self, names: list[str]) -> dict[str, int]:
        """Access times of known paths outside the root (lstat only: reads nothing)."""
        return {name: (self.base / name).lstat().st_atime_ns for name in names}

    def age(self, names: list[str]) -> None:
        """Old atimes: with relatime any later read or listing moves them forward."""
        for name in names:
            path = self.base / name
            if not path.is_symlink():
                os.utime(path, ns=(OLD_ATIME * 10**9, path.lstat().st_mtime_ns))


def plant(base: Path) -> None:
    outside = base / "outside"
    (outside / "deep").mkdir(parents=True)
    for path in (base / "canary.txt", outside / "canary.txt", outside / "deep" / "canary.txt"):
        path.write_bytes(SECRET)
    (outside / "victim-dir").mkdir()
    (base / "root-sibling").mkdir()
    (base / "root-sibling" / "canary.txt").write_bytes(SECRET)


@pytest.fixture(scope="module")
def jail(shared: Session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jail]:
    base = tmp_path_factory.mktemp("jail")
    root = base / "root"
    (root / "inside" / "sub").mkdir(parents=True)
    (root / "inside" / "file.txt").write_bytes(b"inside")
    (root / "victim.txt").write_bytes(b"victim")
    plant(base)
    # Links inside the collection that point outside it (relative, absolute, chained).
    os.symlink("../outside", root / "escape")
    os.symlink(str(base / "outside"), root / "escape-abs")
    os.symlink("../canary.txt", root / "escape-file")
    os.symlink("escape", root / "escape-chain")
    os.symlink("/etc", root / "etc")
    os.symlink("../../root-sibling", root / "inside" / "up2")
    collection = create_collection(shared.server, f"Jail {uuid.uuid4().hex[:6]}", root)
    yield Jail(base, root, collection)


def attack_paths(jail: Jail) -> list[str]:
    outside_abs = str(jail.base / "outside")
    traversal = [
        "..",
        "../",
        "/..",
        "/../",
        "/../..",
        "../..",
        "../../..",
        "../outside/canary.txt",
        "/../outside/canary.txt",
        "/../canary.txt",
        "../canary.txt",
        "inside/../../canary.txt",
        "/inside/../../outside",
        "/inside/sub/../../../canary.txt",
        "/./../outside",
        "/~/../canary.txt",
        "~/../outside",
        "/~/..",
        "~/../../",
        "/inside/./.././../root-sibling/canary.txt",
        "////..//..//canary.txt",
        "/../root/../canary.txt",
        "/" + "../" * 40 + "etc/passwd",
        "/../" + "a/../" * 10 + "..",
    ]
    encoded = [
        "%2e%2e/canary.txt",
        "/%2e%2e/canary.txt",
        "%2e%2e%2fcanary.txt",
        "..%2fcanary.txt",
        "%252e%252e/canary.txt",
        "..%252fcanary.txt",
        "%2E%2E/%2E%2E/etc/passwd",
        "..%5ccanary.txt",
        "..\\canary.txt",
        "\\..\\canary.txt",
        "..\\..\\etc\\passwd",
        "%c0%ae%c0%ae/canary.txt",
        "%e0%80%ae%e0%80%ae/canary.txt",
        ".%2e/canary.txt",
        "%2e./canary.txt",
        "/%2e%2e%2f%2e%2e%2fetc/passwd",
        "..;/canary.txt",
        "../;/canary.txt",
    ]
    unicode = [
        "\u2025/canary.txt",
        "\uff0e\uff0e/canary.txt",
        "\uff0e\uff0e\uff0fcanary.txt",
        "..\u2215canary.txt",
        "..\u2044canary.txt",
        "\u2024\u2024/canary.txt",
        "..\uff0fcanary.txt",
        ".\u200b./canary.txt",
        "\u202e../canary.txt",
        "..\u0000/canary.txt",
        "\u0130../canary.txt",
        "..\u00a0/canary.txt",
        "\ufe52\ufe52/canary.txt",
        "../\u00ff",
        "..\u2216canary.txt",
        "\u3002\u3002/canary.txt",
    ]
    absolute = [
        "/etc/passwd",
        "//etc/passwd",
        "/etc/shadow",
        outside_abs,
        outside_abs + "/canary.txt",
        str(jail.base / "canary.txt"),
        str(jail.root) + "/../canary.txt",
        "file:///etc/passwd",
        "~root/",
        "~root/.ssh",
        "/proc/self/environ",
        "/proc/self/cwd/canary.txt",
        "/dev/zero",
        "C:\\Windows\\win.ini",
        "\\\\server\\share",
        "/root/../../canary.txt",
    ]
    nul_and_control = [
        "canary.txt\x00",
        "/\x00/..",
        "inside\x00/../../canary.txt",
        "/inside/file.txt\x00.jpg",
        "%00",
        "/%00../canary.txt",
        "inside\n../../canary.txt",
        "inside\r\n",
        "\x01\x02\x03",
        "\x7f",
        "\t../canary.txt",
    ]
    overlong = [
        "a" * 256,
        "/" + "a" * 255 + "/b",
        "/" + "a" * 5000,
        "/" + "a/" * 2100,
        "/" + "../" * 1500,
        "/inside/" + "x" * 4090,
        "/" + "\u00e9" * 200,
        "/" + "\U0001f600" * 80,
    ]
    links = [
        "/escape",
        "/escape/",
        "/escape/canary.txt",
        "/escape/deep",
        "/escape/deep/canary.txt",
        "/escape-abs",
        "/escape-abs/canary.txt",
        "/escape-file",
        "/escape-chain",
        "/escape-chain/canary.txt",
        "/etc",
        "/etc/passwd",
        "/inside/up2",
        "/inside/up2/canary.txt",
        "/escape/victim-dir",
        "/escape/../canary.txt",
        "/escape/deep/../../canary.txt",
    ]
    return traversal + encoded + unicode + absolute + nul_and_control + overlong + links


def test_corpus_is_large_enough(jail: Jail) -> None:
    assert len(attack_paths(jail)) >= 100
    # Each path is used against several operations (ls, stat, mkdir, rename old and new,
    # transfer source and destination, delete): well over 200 attacks.


def _status_ok(response: httpx.Response) -> None:
    """A Globus-shaped answer: 4xx, or the documented 502 ``ExternalError.*`` storage refusal
    (e.g. ``ExternalError.RenameFailed.Exists``); never an unhandled error."""
    where = (response.request.method, str(response.request.url)[:300], response.text[:300])
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("code"), str) and "detail" not in body, where
        if response.status_code >= 500:
            assert response.status_code == 502, where
            assert body["code"].startswith("ExternalError."), where
            assert not body["code"].endswith(".EndpointError"), where


def test_path_attacks_never_touch_anything_outside(shared: Session, jail: Jail) -> None:
    me = shared
    paths = attack_paths(jail)
    before = jail.snapshot()
    known = [*before, "."]
    jail.age(known)
    atimes_before = jail.atimes(known)
    base = f"{me.api}/operation/endpoint/{jail.collection}"
    client = httpx.Client(headers=me.headers, timeout=30)
    tasks: list[str] = []
    attacks = 0
    scratch = f"/paths-{uuid.uuid4().hex[:6]}"
    me.tc.operation_mkdir(me.c2, scratch)
    for raw in paths:
        for response in (
            client.get(f"{base}/ls", params={"path": raw}),
            client.get(f"{base}/stat", params={"path": raw}),
        ):
            attacks += 1
            _status_ok(response)
            if response.status_code == 200:
                # Anything listed must be inside the root: no secret, no outside names.
                listing = response.json()
                assert SECRET.decode() not in response.text
                names = {e.get("name") for e in listing.get("DATA", [])}
                assert not names & {"victim-dir", "deep", "passwd", "shadow"}, (raw, names)
        for payload, op in (
            ({"DATA_TYPE": "mkdir", "path": raw}, "mkdir"),
            ({"DATA_TYPE": "rename", "old_path": raw, "new_path": "/moved"}, "rename"),
            ({"DATA_TYPE": "rename", "old_path": "/victim.txt", "new_path": raw}, "rename"),
        ):
            attacks += 1
            response = client.post(f"{base}/{op}", json=payload)
            _status_ok(response)
            if response.status_code < 300 and op == "rename" and payload["new_path"] == raw:
                # A rename that stayed inside the root: put the victim back.
                client.post(
                    f"{base}/rename",
                    json={"DATA_TYPE": "rename", "old_path": raw, "new_path": "/victim.txt"},
                )
        submission = [
            ("transfer", jail.collection, me.c2, raw, f"{scratch}/{uuid.uuid4().hex}"),
            ("transfer", me.c1, jail.collection, "/hello.txt", raw),
            ("delete", jail.collection, None, raw, None),
        ]
        for kind, source, destination, src_path, dst_path in submission:
            attacks += 1
            sid = client.get(f"{me.api}/submission_id").json()["value"]
            if kind == "transfer":
                body: dict[str, Any] = {
                    "DATA_TYPE": "transfer",
                    "submission_id": sid,
                    "source_endpoint": source,
                    "destination_endpoint": destination,
                    "DATA": [
                        {
                            "DATA_TYPE": "transfer_item",
                            "source_path": src_path,
                            "destination_path": dst_path,
                            "recursive": True,
                        }
                    ],
                    "skip_source_errors": True,
                }
            else:
                body = {
                    "DATA_TYPE": "delete",
                    "submission_id": sid,
                    "endpoint": source,
                    "recursive": True,
                    "ignore_missing": True,
                    "DATA": [{"DATA_TYPE": "delete_item", "path": src_path}],
                }
            response = client.post(f"{me.api}/{kind}", json=body)
            _status_ok(response)
            if response.status_code in (200, 202):
                tasks.append(response.json()["task_id"])
    races = _race_directory_for_symlink(me, jail, client, scratch)
    attacks += races
    for task_id in tasks:
        me.wait(task_id, timeout=120)
    atimes_after = jail.atimes(known)
    read = [name for name in known if atimes_after[name] != atimes_before[name]]
    assert read == [], f"read or listed outside the root: {read}"
    after = jail.snapshot()
    changed = {
        k: (before.get(k), after.get(k))
        for k in set(before) | set(after)
        if before.get(k) != after.get(k)
    }
    assert changed == {}, changed
    # Nothing read from outside reached the other collection either.
    for path in (me.c2_root / scratch.strip("/")).rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_bytes(), path
    shutil.rmtree(me.c2_root / scratch.strip("/"))  # no residue in the shared demo data
    print(
        f"\nRELIABILITY paths: {len(paths)} paths, {attacks} attacks, {len(tasks)} tasks "
        f"accepted and run, 0 accesses outside the root"
    )


def _race_directory_for_symlink(me: Session, jail: Jail, client: httpx.Client, scratch: str) -> int:
    """Replace a directory by a symlink to the outside while tasks read from and write into it."""
    race_src = jail.root / "race-src"
    race_dst = jail.root / "race-dst"
    stop = threading.Event()

    def fill() -> None:
        for d in (race_src, race_dst):
            if d.is_symlink():
                d.unlink()
            d.mkdir(exist_ok=True)
        for i in range(40):
            (race_src / f"{i}.txt").write_bytes(b"r" * 10_000)

    def flip() -> None:
        n = 0
        while not stop.is_set():
            for d in (race_src, race_dst):
                hidden = d.with_name(d.name + ".real")
                try:
                    os.rename(d, hidden)
                    os.symlink(str(jail.base / "outside"), d)
                    time.sleep(0.001)
                    os.unlink(d)
                    os.rename(hidden, d)
                except OSError:
                    pass
            n += 1

    fill()
    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    count = 0
    try:
        for _ in range(5):
            for src, dst, source, destination in (
                ("/race-src", f"{scratch}/race-{uuid.uuid4().hex}", jail.collection, me.c2),
                ("/nested", "/race-dst/in", me.c1, jail.collection),
            ):
                sid = client.get(f"{me.api}/submission_id").json()["value"]
                response = client.post(
                    f"{me.api}/transfer",
                    json={
                        "DATA_TYPE": "transfer",
                        "submission_id": sid,
                        "source_endpoint": source,
                        "destination_endpoint": destination,
                        "DATA": [
                            {
                                "DATA_TYPE": "transfer_item",
                                "source_path": src,
                                "destination_path": dst,
                                "recursive": True,
                            }
                        ],
                        "skip_source_errors": True,
                    },
                )
                _status_ok(response)
                count += 1
                me.wait(response.json()["task_id"], timeout=60)
            sid = client.get(f"{me.api}/submission_id").json()["value"]
            response = client.post(
                f"{me.api}/delete",
                json={
                    "DATA_TYPE": "delete",
                    "submission_id": sid,
                    "endpoint": jail.collection,
                    "recursive": True,
                    "ignore_missing": True,
                    "DATA": [{"DATA_TYPE": "delete_item", "path": "/race-dst/in"}],
                },
            )
            _status_ok(response)
            count += 1
            me.wait(response.json()["task_id"], timeout=60)
            for path in ("/race-src", "/race-dst"):
                _status_ok(
                    client.get(
                        f"{me.api}/operation/endpoint/{jail.collection}/ls", params={"path": path}
                    )
                )
                count += 1
    finally:
        stop.set()
        flipper.join()
    return count
