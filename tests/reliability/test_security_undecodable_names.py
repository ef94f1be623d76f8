"""File names that are not valid UTF-8 in a POSIX collection (issue #10, item 8).

Such names are legal on POSIX. One of them used to make ``ls`` answer 502, the ``/files``
page 500 and a recursive transfer of the directory fail, so one user could break a shared
directory for everyone. Names are now shown in the escaped form of
``arctern.connectors.names`` (undecodable bytes as ``\\xHH``), accepted back in every path,
and copied byte for byte.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import globus_sdk
import httpx
import pytest

from tests.integration.test_web_pages import log_in
from tests.reliability.conftest import Session

pytestmark = pytest.mark.timeout(300)

# Raw names (bytes) and the text the API shows for them.
LATIN1 = b"caf\xe9.txt"  # é in latin-1: not UTF-8
LATIN1_SHOWN = "caf\\xe9.txt"
BAD_DIR = b"\xff\xfe-dir"
BAD_DIR_SHOWN = "\\xff\\xfe-dir"
INNER = b"inner\x80"
INNER_SHOWN = "inner\\x80"
LOOKALIKE = b"\\xff"  # a valid name that looks like an escape: shown with its "\" doubled
LOOKALIKE_SHOWN = "\\\\xff"


@dataclass
class Tree:
    path: str  # collection path in collection 1, ends with "/"
    root: Path


def _write(path: bytes, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


@pytest.fixture
def tree(shared: Session) -> Iterator[Tree]:
    name = f"names-{uuid.uuid4().hex[:8]}"
    root = shared.c1_root / name
    root.mkdir()
    base = os.fsencode(root)
    _write(base + b"/" + LATIN1, b"latin-1 named\n")
    _write(base + b"/plain.txt", b"plain\n")
    _write(base + b"/" + LOOKALIKE, b"looks like an escape\n")
    os.mkdir(base + b"/" + BAD_DIR)
    _write(base + b"/" + BAD_DIR + b"/" + INNER, os.urandom(5000))
    try:
        yield Tree(f"/{name}/", root)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _raw_tree(root: bytes) -> dict[bytes, bytes | None]:
    """Every entry under ``root`` by its raw relative name: content, or None for a dir."""
    found: dict[bytes, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        prefix = b"" if rel == b"." else rel + b"/"
        for d in dirnames:
            found[prefix + d] = None
        for f in filenames:
            with open(os.path.join(dirpath, f), "rb") as fh:
                found[prefix + f] = fh.read()
    return found


def test_ls_and_stat_show_the_escaped_names(shared: Session, tree: Tree) -> None:
    tc = shared.tc
    names = {e["name"]: e["type"] for e in tc.operation_ls(shared.c1, path=tree.path)}
    assert names == {
        LATIN1_SHOWN: "file",
        "plain.txt": "file",
        LOOKALIKE_SHOWN: "file",
        BAD_DIR_SHOWN: "dir",
    }, names
    # The escaped form is accepted back: listing the undecodable directory, stat of a file.
    inner = tc.operation_ls(shared.c1, path=f"{tree.path}{BAD_DIR_SHOWN}/")
    assert [e["name"] for e in inner] == [INNER_SHOWN]
    assert inner["path"] == f"{tree.path}{BAD_DIR_SHOWN}/"
    stat = tc.operation_stat(shared.c1, path=f"{tree.path}{BAD_DIR_SHOWN}/{INNER_SHOWN}")
    assert stat["size"] == 5000
    looks = tc.operation_stat(shared.c1, path=f"{tree.path}{LOOKALIKE_SHOWN}")
    assert looks["size"] == len(b"looks like an escape\n")
    # A second spelling of a name (escapes of bytes that are valid UTF-8) is refused.
    with pytest.raises(globus_sdk.TransferAPIError) as refused:
        tc.operation_ls(shared.c1, path=f"{tree.path}\\x70lain.txt\\xc3\\xa9")
    assert refused.value.http_status == 400, refused.value
    assert "canonical" in refused.value.message
    print(f"RELIABILITY names-ls entries={len(names)} status=200 escaped={sorted(names)}")


def test_files_page_renders_a_directory_with_undecodable_names(shared: Session, tree: Tree) -> None:
    with httpx.Client(base_url=shared.server.url, timeout=30) as http:
        log_in(http)
        page = http.get("/files", params={"origin_id": shared.c1, "origin_path": tree.path})
        assert page.status_code == 200, page.text[:500]
        shown = {html.unescape(n) for n in re.findall(r'data-name="([^"]*)"', page.text)}
        assert {LATIN1_SHOWN, BAD_DIR_SHOWN, LOOKALIKE_SHOWN, "plain.txt"} <= shown, shown
        inside = http.get(
            "/files",
            params={"origin_id": shared.c1, "origin_path": f"{tree.path}{BAD_DIR_SHOWN}/"},
        )
        assert inside.status_code == 200
        assert INNER_SHOWN in html.unescape(inside.text)
    print("RELIABILITY names-files-page status=200")


def test_recursive_transfer_copies_names_byte_for_byte(
    shared: Session, tree: Tree, scratch: str
) -> None:
    me = shared
    task_id = me.transfer(me.c1, me.c2, [(tree.path, f"{scratch}copy/", True)])
    doc = me.wait(task_id, timeout=120)
    assert doc["status"] == "SUCCEEDED", doc
    source = _raw_tree(os.fsencode(tree.root))
    copied = _raw_tree(os.fsencode(me.c2_root / scratch.strip("/") / "copy"))
    assert copied == source
    assert set(source) == {LATIN1, b"plain.txt", LOOKALIKE, BAD_DIR, BAD_DIR + b"/" + INNER}
    # Everything the task recorded is text (no lone surrogates reached the database).
    successes = list(me.tc.task_successful_transfers(task_id))
    assert f"{tree.path}{BAD_DIR_SHOWN}/{INNER_SHOWN}" in {s["source_path"] for s in successes}
    print(f"RELIABILITY names-recursive files={doc['files_transferred']} byte-identical")


def test_single_file_transfer_rename_and_delete_of_escaped_paths(
    shared: Session, tree: Tree, scratch: str
) -> None:
    me = shared
    source = f"{tree.path}{BAD_DIR_SHOWN}/{INNER_SHOWN}"
    task_id = me.transfer(me.c1, me.c2, [(source, f"{scratch}got\\xe9", False)])
    doc = me.wait(task_id, timeout=60)
    assert doc["status"] == "SUCCEEDED", doc
    dest = os.fsencode(me.c2_root / scratch.strip("/"))
    original = os.fsencode(tree.root) + b"/" + BAD_DIR + b"/" + INNER
    with open(dest + b"/got\xe9", "rb") as copy, open(original, "rb") as src:
        assert copy.read() == src.read()

    me.tc.operation_rename(me.c2, f"{scratch}got\\xe9", f"{scratch}moved\\xff")
    assert sorted(os.listdir(dest)) == [b"moved\xff"]

    delete = globus_sdk.DeleteData(endpoint=me.c2)
    delete.add_item(f"{scratch}moved\\xff")
    deleted = me.wait(str(me.tc.submit_delete(delete)["task_id"]), timeout=60)
    assert deleted["status"] == "SUCCEEDED", deleted
    assert os.listdir(dest) == []
    print("RELIABILITY names-single transfer+rename+delete ok")
