"""What this invocation last read or wrote of an entity (with its ETag), so its next write
needs no read. An invocation runs on one worker thread from start to end, so the versions are
kept per thread and forgotten when the next invocation starts on that thread. A stale version
(another instance wrote since) costs one refused conditional write and a read: never a lost
update.

Besides, the process keeps the last version it wrote or read of the rows a call's invocations
share (the call row, its agents' rows and roster rows): a `guess`, never a fact. It is only
ever the starting point of an ETag-guarded write, so the next event of the call, handled by
this instance, writes without reading first. A guess is never believed for a decision: a
change that finds nothing to do on a guess reads afresh (another instance may have written).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

_local = threading.local()

Version = tuple[dict[str, Any], str]
Key = tuple[str, str, str]

GUESSES_KEPT = 20_000  # the newest; a row's version is a few hundred bytes
_guesses: OrderedDict[Key, Version] = OrderedDict()
_guesses_lock = threading.Lock()


def _versions() -> dict[Key, Version]:
    found: dict[Key, Version] | None = getattr(_local, "versions", None)
    if found is None:
        found = _local.versions = {}
    return found


def forget_all() -> None:
    """A new invocation starts on this thread: nothing it knows is its own yet."""
    _versions().clear()


def forget_guesses() -> None:
    """Nothing the process kept is to be guessed from (tests of a store emptied under it)."""
    with _guesses_lock:
        _guesses.clear()


def known(table: str, pk: str, rk: str) -> Version | None:
    return _versions().get((table, pk, rk))


def guess(table: str, pk: str, rk: str) -> Version | None:
    """This invocation's version, else the one the process last saw: for a conditional write."""
    mine = known(table, pk, rk)
    if mine is not None:
        return mine
    with _guesses_lock:
        return _guesses.get((table, pk, rk))


def remember(
    table: str, pk: str, rk: str, entity: dict[str, Any], etag: str, *, shared: bool = False
) -> None:
    """Keep the version for this invocation; `shared`: for the process's guesses too."""
    if not etag:
        forget(table, pk, rk)
        return
    version = (dict(entity), etag)
    _versions()[(table, pk, rk)] = version
    if shared:
        with _guesses_lock:
            _guesses[(table, pk, rk)] = version
            _guesses.move_to_end((table, pk, rk))
            while len(_guesses) > GUESSES_KEPT:
                _guesses.popitem(last=False)


def forget(table: str, pk: str, rk: str) -> None:
    _versions().pop((table, pk, rk), None)
    with _guesses_lock:
        _guesses.pop((table, pk, rk), None)
