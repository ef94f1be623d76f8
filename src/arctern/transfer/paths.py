"""Normalisation of the paths clients send (``/~/x``, ``x/../y``) into collection paths.

A collection exposes one directory tree under ``/``; ``/~/`` (the default directory) is the
same root. Paths are confined beneath it: ``..`` that would climb above ``/`` is refused here,
before any storage is touched (the connectors refuse it again).
"""

from __future__ import annotations

from arctern.errors import InvalidRequest, PermissionDenied

MAX_PATH_LENGTH = 4096


def normalize_path(raw: str | None, *, default: str = "/") -> str:
    """The canonical collection path of ``raw``: absolute, no ``.``/``..``, no trailing ``/``.

    ``/~/`` and ``~/`` mean the collection root; a relative path is relative to it.
    """
    if raw is None or raw == "":
        raw = default
    if not isinstance(raw, str):
        raise InvalidRequest("A path must be a string", code="ClientError.BadRequest")
    if "\x00" in raw:
        raise InvalidRequest("A path must not contain NUL bytes", code="ClientError.BadRequest")
    if len(raw) > MAX_PATH_LENGTH:
        raise InvalidRequest("The path is too long", code="ClientError.BadRequest")
    if not raw.isascii():
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no file system can name it
            raise InvalidRequest(
                "A path must be valid Unicode", code="ClientError.BadRequest"
            ) from None
    text = raw
    if text == "~" or text.startswith("~/"):
        text = "/" + text
    if text == "/~" or text.startswith("/~/"):
        text = text[2:] or "/"
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PermissionDenied(
                    f"Path '{raw}' is outside the collection", code="PermissionDenied"
                )
            parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def display_path(raw: str | None, *, default: str = "/~/") -> str:
    """The path as echoed in an ``ls`` result: normalised, ``/~/`` kept, trailing ``/``."""
    source = raw if raw not in (None, "") else default
    assert source is not None
    canonical = normalize_path(source)
    home = source == "~" or source.startswith(("~/", "/~/")) or source == "/~"
    if home:
        return "/~" + (canonical if canonical != "/" else "") + "/"
    return canonical.rstrip("/") + "/"


def dir_prefix(path: str) -> str:
    """``path`` with exactly one trailing ``/``, for prefix comparisons between paths."""
    return path.rstrip("/") + "/"


def is_within(path: str, ancestor: str) -> bool:
    """True when ``path`` is ``ancestor`` or lies beneath it (both canonical)."""
    return dir_prefix(path).startswith(dir_prefix(ancestor))


def join(parent: str, name: str) -> str:
    return dir_prefix(parent) + name
