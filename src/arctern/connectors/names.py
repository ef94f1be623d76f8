"""The one text form of file names that are not valid UTF-8 (legal on POSIX).

Collection paths are Unicode text everywhere above the connectors: in API requests and
answers (JSON), in the database (file records, events, skipped errors) and in web pages. A
POSIX name is bytes and need not be UTF-8, so the connectors show such bytes escaped and map
the escaped form back to the same bytes on the way in. The form, for one name:

* Every byte that is not part of a valid UTF-8 sequence is written ``\\xHH`` (a backslash,
  ``x`` and two **lowercase** hex digits; only bytes 0x80 to 0xFF can be undecodable).
* A backslash is written ``\\\\`` only where it would otherwise be read as the start of an
  escape: when the next character written is a backslash, or ``x`` followed by two lowercase
  hex digits of value 0x80 to 0xFF. Every other backslash stays as it is, so the names of
  ordinary files (``a\\b``, ``C:\\data``) look exactly as before.
* Everything else (all valid UTF-8) stays as it is.

Reading it back (``unescape_name``) is left to right: ``\\\\`` is one backslash, ``\\xHH``
with HH in 80 to ff is that byte, any other character (a lone backslash too) is its UTF-8.

``unescape_name(escape_name(raw)) == raw`` for every byte string. The reverse holds only for
text in the *canonical* form (what ``escape_name`` produces): ``\\xc3\\xa9`` would read as
``é``, a second spelling of the same name. Connectors refuse non-canonical names
(``os_name``), so every name has exactly one spelling and comparisons of paths as text (access
rules, "is beneath") mean the same as comparisons of the bytes.
"""

from __future__ import annotations

import os
import re

from arctern.connectors.errors import InvalidPath

_BACKSLASH = "\\"
# An escape the reader would decode: ``\\`` or ``\x`` + two lowercase hex digits >= 0x80.
_ESCAPE = re.compile(r"\\(\\|x[89a-f][0-9a-f])")


def escape_name(raw: bytes) -> str:
    """The canonical text form of the name (or path: ``/`` is plain ASCII) ``raw``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "surrogateescape")
    else:
        if _BACKSLASH not in text:
            return text
    out: list[str] = []
    last = len(text) - 1
    for i, char in enumerate(text):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char == _BACKSLASH and i < last and _misread(text, i + 1):
            out.append("\\\\")
        else:
            out.append(char)
    return "".join(out)


def _misread(text: str, at: int) -> bool:
    """Whether a lone backslash followed by ``text[at:]`` would be read as an escape."""
    nxt = text[at]
    if nxt == _BACKSLASH or 0xDC80 <= ord(nxt) <= 0xDCFF:
        return True  # the next thing written starts with a backslash
    return (
        nxt == "x"
        and len(text) > at + 2
        and text[at + 1] in "89abcdef"
        and text[at + 2] in "0123456789abcdef"
    )


def unescape_name(text: str) -> bytes:
    """The bytes a name (or path) in escaped form stands for; any text has a reading."""
    try:
        if _BACKSLASH not in text:
            return text.encode("utf-8")
        out = bytearray()
        pos = 0
        for match in _ESCAPE.finditer(text):
            out += text[pos : match.start()].encode("utf-8")
            token = match.group(1)
            out += b"\\" if token == _BACKSLASH else bytes([int(token[1:], 16)])
            pos = match.end()
        out += text[pos:].encode("utf-8")
        return bytes(out)
    except UnicodeEncodeError as exc:  # lone surrogates sent as JSON "\udcff"
        raise InvalidPath("path is not valid Unicode text") from exc


def os_name(text: str) -> str:
    """The ``os``-module form (``os.fsdecode`` of the bytes) of a name in escaped form.

    Refuses names that are not canonical, so that each file has a single spelling.
    """
    if _BACKSLASH not in text and text.isascii():
        return text
    raw = unescape_name(text)
    if _BACKSLASH in text and escape_name(raw) != text:
        raise InvalidPath(
            f"{text!r} is not in canonical escaped form (undecodable bytes are written "
            f"\\xHH in lowercase; a backslash is doubled only before such an escape), "
            f"write {escape_name(raw)!r}"
        )
    return os.fsdecode(raw)


def shown_name(name: str) -> str:
    """The escaped text form of a name (or path) the ``os`` module returned."""
    if name.isascii() and _BACKSLASH not in name:
        return name
    return escape_name(os.fsencode(name))
