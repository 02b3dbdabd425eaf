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
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

_local = threading.local()

Version = tuple[dict[str, Any], str]
Key = tuple[str, str, str]
_V = TypeVar("_V")


class Recent(Generic[_V]):
    """A process's bounded memory, shared by its threads: the `capacity` entries used last
    are kept, the least recently used forgotten first (a forgotten guess costs a read)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[Hashable, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> _V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: Hashable, value: _V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def pop(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


GUESSES_KEPT = 20_000  # the newest; a row's version is a few hundred bytes
_guesses: Recent[Version] = Recent(GUESSES_KEPT)


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
    _guesses.clear()


def known(table: str, pk: str, rk: str) -> Version | None:
    return _versions().get((table, pk, rk))


def guess(table: str, pk: str, rk: str) -> Version | None:
    """This invocation's version, else the one the process last saw: for a conditional write."""
    mine = known(table, pk, rk)
    if mine is not None:
        return mine
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
        _guesses.put((table, pk, rk), version)


def forget(table: str, pk: str, rk: str) -> None:
    _versions().pop((table, pk, rk), None)
    _guesses.pop((table, pk, rk))
