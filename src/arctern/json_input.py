"""Parsing of untrusted JSON request bodies into plain Python values, or a clear refusal.

``json.loads`` alone lets three hostile inputs through as server errors: nesting deep enough
to exhaust the recursion limit, and ``\\ud800``-style escapes that decode to lone surrogates,
which no database driver or file system can encode later.
"""

from __future__ import annotations

import json
import re
from typing import Any

# A surrogate can only enter through a \\uD800-\\uDFFF escape (raw bytes must be valid UTF-8).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class InvalidJson(ValueError):
    """The body is not JSON that the server can process; the message says why."""


def parse_json(raw: bytes) -> Any:
    try:
        value = json.loads(raw)
    except RecursionError:
        raise InvalidJson("The request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidJson("The request body is not valid JSON") from None
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(value):
        raise InvalidJson("The request body contains an unpaired UTF-16 surrogate")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
