"""JSON from outside (requests, webhooks, queue messages): total over any bytes, bounded depth.

Every reader of foreign JSON goes through `loads`, so no input can raise anything but
InvalidInput: not bytes that are not UTF-8, not NaN, not nesting deep enough to exhaust
Python's recursion (a RecursionError would be a 500 with a traceback).
"""

from __future__ import annotations

import json
import re
from typing import Any

from shared.errors import InvalidInput

MAX_DEPTH = 32  # arrays and objects inside each other; our deepest real payload is about 6


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(body: bytes | str | None, *, what: str = "the body") -> Any:
    """`body` parsed as JSON (empty: None); InvalidInput if it is not JSON or too deep."""
    if body is None or (isinstance(body, bytes | str) and not body.strip()):
        return None
    # Counting brackets first keeps a 100,000-deep body from reaching the recursive parser.
    if _depth(body) > MAX_DEPTH:
        raise InvalidInput(f"{what} is nested too deep (JSON depth at most {MAX_DEPTH})")
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise InvalidInput(f"{what} is not JSON") from None


def _depth(body: bytes | str) -> int:
    """The deepest bracket nesting outside strings (an upper bound: JSON or not)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if "[" not in text and "{" not in text:
        return 0
    deepest = depth = 0
    for ch in _BRACKETS.findall(_STRINGS.sub("", text)):
        if ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    break
        else:
            depth -= 1
    return deepest


_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
