"""The escaped text form of file names that are not valid UTF-8 (``arctern.connectors.names``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arctern.connectors.errors import InvalidPath, safe_text
from arctern.connectors.names import escape_name, os_name, shown_name, unescape_name

# Names built from the characters that matter (backslash, x, hex digits, high bytes, UTF-8
# sequences and their pieces) find the corner cases far faster than arbitrary bytes.
_PIECES = st.sampled_from(
    [b"\\", b"x", b"f", b"8", b"7", b"a", b"\xff", b"\x80", b"\xc3", b"\xa9", "é".encode(), b"/"]
)
tricky_bytes = st.lists(_PIECES, max_size=12).map(b"".join)


@given(st.one_of(st.binary(max_size=64), tricky_bytes))
def test_any_bytes_round_trip(raw: bytes) -> None:
    text = escape_name(raw)
    assert unescape_name(text) == raw
    # The text is valid Unicode: JSON and the database take it.
    text.encode("utf-8")
    assert json.loads(json.dumps(text, ensure_ascii=False)) == text
    # It is canonical: accepted back by the connectors, as the same bytes.
    if b"\x00" not in raw:
        assert os.fsencode(os_name(text)) == raw


@given(
    st.text(max_size=40).filter(
        lambda t: "\\" not in t and not any(0xD800 <= ord(c) <= 0xDFFF for c in t)
    )
)
def test_valid_utf8_without_backslashes_is_unchanged(text: str) -> None:
    assert escape_name(text.encode()) == text


@given(st.text(alphabet="\\x8af9é", max_size=16))
def test_canonical_text_is_a_fixed_point_and_the_rest_is_refused(text: str) -> None:
    raw = unescape_name(text)
    if escape_name(raw) == text:
        assert os.fsencode(os_name(text)) == raw
    else:
        with pytest.raises(InvalidPath):
            os_name(text)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"plain.txt", "plain.txt"),
        ("café".encode(), "café"),
        (b"caf\xe9", "caf\\xe9"),  # latin-1 é
        (b"\xff\xfe", "\\xff\\xfe"),
        (b"a\\b", "a\\b"),  # ordinary backslashes are left alone
        (b"C:\\data\\x", "C:\\data\\x"),
        (b"\\xff", "\\\\xff"),  # a name that looks like an escape is escaped itself
        (b"\\\\", "\\\\\\"),
        (b"\\\xff", "\\\\\\xff"),
        (b"\\x41", "\\x41"),  # only 80-ff are escapes
    ],
)
def test_documented_examples(raw: bytes, text: str) -> None:
    assert escape_name(raw) == text
    assert unescape_name(text) == raw


def test_second_spellings_are_refused() -> None:
    # (uppercase "\\xFF" is not an escape: it names a file called exactly that)
    for alias in ("\\xc3\\xa9", "a\\\\b"):
        with pytest.raises(InvalidPath):
            os_name(alias)
    with pytest.raises(InvalidPath):
        os_name("lone \udcff surrogate")


def test_shown_name_and_safe_text() -> None:
    raw_name = os.fsdecode(b"bad\xffname")
    assert shown_name(raw_name) == "bad\\xffname"
    assert safe_text(f"cannot open {raw_name}") == "cannot open bad\\xffname"
    assert shown_name("plain") == "plain"


async def test_posix_connector_speaks_escaped_names_only(tmp_path: Path) -> None:
    from arctern.connectors.posix.connector import PosixConnector

    raw_dir = os.fsencode(tmp_path) + b"/d\xff"
    os.mkdir(raw_dir)
    with open(raw_dir + b"/f\x80", "wb") as f:
        f.write(b"data")
    os.symlink(b"f\x80", raw_dir + b"/link\xfe")
    conn = PosixConnector(str(tmp_path))
    listing = {info.name: info async for info in conn.list("/d\\xff")}
    assert set(listing) == {"f\\x80", "link\\xfe"}
    assert listing["f\\x80"].path == "/d\\xff/f\\x80"
    assert listing["link\\xfe"].link_target == "f\\x80"
    assert await conn.read("/d\\xff/f\\x80", 0, 10) == b"data"
    # A write through an escaped path: the temporary path persisted is text, the final name
    # has the raw bytes.
    state = await conn.begin_write("/d\\xff/new\\xe9", 3, temp_key="k")
    state.temp_path.encode("utf-8")
    await conn.write(state, 0, b"abc")
    await conn.commit_write(state, "/d\\xff/new\\xe9")
    assert sorted(os.listdir(raw_dir)) == [b"f\x80", b"link\xfe", b"new\xe9"]
    with pytest.raises(InvalidPath):
        await conn.stat("/d\\xff/new\\xc3\\xa9")
