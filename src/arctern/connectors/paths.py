"""Validation and splitting of collection paths, shared by every connector."""

from __future__ import annotations

from arctern.connectors.errors import InvalidPath, PathOutsideRoot
from arctern.connectors.names import unescape_name

# Linux NAME_MAX and PATH_MAX, in bytes of the name (UTF-8, or the bytes an escaped name
# stands for: see ``arctern.connectors.names``).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096


def split_path(path: str) -> list[str]:
    """The components of an absolute collection path; ``[]`` is the root.

    Refuses NUL bytes, ``..`` components, relative paths and over-long names. Nothing is
    percent-decoded: ``%2e%2e`` is an ordinary (odd) name inside the root. Names stay in
    their escaped text form; lengths are those of the bytes they stand for.
    """
    if not isinstance(path, str):
        raise InvalidPath(f"path must be a string, not {type(path).__name__}")
    if "\x00" in path:
        raise InvalidPath("path contains a NUL byte")
    if not path.startswith("/"):
        raise InvalidPath(f"path must be absolute: {path!r}")
    # Plain ASCII without escapes (most paths): each character is one byte.
    plain = path.isascii() and "\\" not in path
    if plain:
        length = len(path)
    else:
        try:
            length = len(path.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidPath("path is not valid UTF-8") from exc
        if "\\" in path:
            length = len(unescape_name(path))
    if length > MAX_PATH_BYTES:
        raise InvalidPath("path is too long")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise PathOutsideRoot(f"'..' is not allowed in paths: {path!r}")
        if (len(part) if plain else len(unescape_name(part))) > MAX_NAME_BYTES:
            raise InvalidPath(f"file name too long: {part[:40]!r}…")
        parts.append(part)
    return parts


def join_path(parts: list[str] | tuple[str, ...]) -> str:
    """The canonical collection path of ``parts`` (``/`` for the root)."""
    return "/" + "/".join(parts)


def normalize(path: str) -> str:
    """Canonical form of a valid collection path (no trailing slash, no ``.``)."""
    return join_path(split_path(path))


def child(path: str, name: str) -> str:
    return path.rstrip("/") + "/" + name if path != "/" else "/" + name


def parent_of(path: str) -> str:
    parts = split_path(path)
    return join_path(parts[:-1])


def basename(path: str) -> str:
    parts = split_path(path)
    return parts[-1] if parts else ""
