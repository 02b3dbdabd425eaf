"""What this invocation last read or wrote of an entity (with its ETag), so its next write
needs no read. An invocation runs on one worker thread from start to end, so the versions are
kept per thread and forgotten when the next invocation starts on that thread. A stale version
(another instance wrote since) costs one refused conditional write and a read: never a lost
update."""

from __future__ import annotations

import threading
from typing import Any

_local = threading.local()

Version = tuple[dict[str, Any], str]


def _versions() -> dict[tuple[str, str, str], Version]:
    found: dict[tuple[str, str, str], Version] | None = getattr(_local, "versions", None)
    if found is None:
        found = _local.versions = {}
    return found


def forget_all() -> None:
    """A new invocation starts on this thread: nothing it knows is its own yet."""
    _versions().clear()


def known(table: str, pk: str, rk: str) -> Version | None:
    return _versions().get((table, pk, rk))


def remember(table: str, pk: str, rk: str, entity: dict[str, Any], etag: str) -> None:
    if etag:
        _versions()[(table, pk, rk)] = (dict(entity), etag)
    else:
        forget(table, pk, rk)


def forget(table: str, pk: str, rk: str) -> None:
    _versions().pop((table, pk, rk), None)
