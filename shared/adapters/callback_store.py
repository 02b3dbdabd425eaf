"""Callback lists on Table Storage (requests, open index, claims) and the immediate-path queue."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.adapters.queues import QueueSender
from shared.adapters.tables import ConcurrencyConflict, Entity, StorageError, TableStore
from shared.domain.callbacks import (
    CallbackRequest,
    CallbackState,
    Claim,
    OpenRequest,
)
from shared.domain.customers import CustomerRef, Identification
from shared.domain.moments import as_utc
from shared.messages import CallbackImport
from shared.queues import CALLBACK_IMPORTS

CALLBACKS = "callbacks"
REQUEST_PREFIX, OPEN_PREFIX, HANDLED_PREFIX = "req-", "open-", "done-"
_MAX_MS = 10**15 - 1
# RowKey ranges: '.' sorts right after '-', so [prefix, prefix with '.') is exactly the prefix.
_TX_LIMIT = 100  # operations in one entity-group transaction
_REQUEST_FIELDS = (
    "request_id",
    "list_id",
    "number",
    "requested_at",
    "source",
    "pool_id",
    "name",
    "note",
)


def request_key(request_id: str) -> str:
    return f"{REQUEST_PREFIX}{request_id}"


def open_key(request_id: str, requested_at: datetime) -> str:
    """The open-index row: oldest first, so an import takes the longest-waiting requests."""
    at = requested_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{OPEN_PREFIX}{at}-{request_id}"


def handled_key(request_id: str, handled_at: datetime) -> str:
    """The handled-index row: newest first (the key counts down with the handled time)."""
    return f"{HANDLED_PREFIX}{_MAX_MS - int(handled_at.timestamp() * 1000):015d}-{request_id}"


def handled_entity(request: CallbackRequest) -> Entity:
    """A copy of the handled request under its handled-index key."""
    at = request.handled_at or request.requested_at
    return {**request_entity(request), "RowKey": handled_key(request.request_id, at)}


def _without_none(entity: Entity) -> Entity:
    return {k: v for k, v in entity.items() if v is not None}


def request_entity(request: CallbackRequest) -> Entity:
    return _without_none(
        {
            "PartitionKey": request.list_id,
            "RowKey": request_key(request.request_id),
            "request_id": request.request_id,
            "list_id": request.list_id,
            "number": request.number,
            "requested_at": request.requested_at,
            "source": request.source,
            "pool_id": request.pool_id,
            "name": request.name,
            "note": request.note,
            "state": request.state.value,
            "activity_id": request.activity_id,
            "handled_at": request.handled_at,
            "handled_note": request.handled_note,
            "identification": request.identification.value if request.identification else None,
            "regarding": json.dumps(request.regarding.to_json()) if request.regarding else None,
        }
    )


def open_entity(request: CallbackRequest) -> Entity:
    entity = {k: v for k, v in request_entity(request).items() if k in _REQUEST_FIELDS}
    entity.update(
        PartitionKey=request.list_id, RowKey=open_key(request.request_id, request.requested_at)
    )
    return entity


def request_from(entity: Entity) -> CallbackRequest:
    regarding = entity.get("regarding")
    identified = entity.get("identification")
    requested_at = as_utc(entity["requested_at"])
    assert requested_at is not None
    return CallbackRequest(
        request_id=entity["request_id"],
        list_id=entity["list_id"],
        number=entity["number"],
        requested_at=requested_at,
        source=entity.get("source", ""),
        pool_id=entity.get("pool_id"),
        name=entity.get("name"),
        note=entity.get("note"),
        state=CallbackState(entity.get("state", CallbackState.OPEN.value)),
        activity_id=entity.get("activity_id"),
        handled_at=as_utc(entity.get("handled_at")),
        handled_note=entity.get("handled_note"),
        identification=Identification(identified) if identified else None,
        regarding=CustomerRef.from_json(json.loads(regarding)) if regarding else None,
    )


def open_from(entity: Entity, etag: str) -> OpenRequest:
    return OpenRequest(
        request=request_from(entity),
        version=etag,
        claimed_by=entity.get("claimed_by") or None,
        claimed_until=as_utc(entity.get("claimed_until")),
        attempts=int(entity.get("attempts", 0)),
        last_error=entity.get("last_error") or None,
    )


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _if_not_modified() -> Any:
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified


def _merge() -> Any:
    from azure.data.tables import UpdateMode

    return UpdateMode.MERGE


class TableCallbackStore:
    """One partition per callback list: `req-<id>` rows (every request, open or handled) and
    `open-<requested at>-<id>` rows (the open ones, with the import's claims).

    A request and its open row are written together (one transaction) and closed together, so
    the import reads only open rows: its cost follows the backlog, not the history.
    """

    def __init__(self, store: TableStore) -> None:
        self.store = store

    # ------------------------------------------------------------------ capture and reads

    def add(self, request: CallbackRequest) -> tuple[CallbackRequest, bool]:
        """Store a new request; (the stored one, False) if its id was stored before."""
        try:
            self.store.transact(
                CALLBACKS, [("create", request_entity(request)), ("create", open_entity(request))]
            )
        except ConcurrencyConflict:
            existing = self.get(request.list_id, request.request_id)
            if existing is None:  # pragma: no cover - only a half-written pair could cause it
                raise
            return existing, False
        return request, True

    def get(self, list_id: str, request_id: str) -> CallbackRequest | None:
        entity = self.store.get(CALLBACKS, list_id, request_key(request_id))
        return request_from(entity) if entity else None

    def open_requests(self, list_id: str, limit: int | None = None) -> list[OpenRequest]:
        """The list's open requests, longest waiting first (claimed ones included)."""
        table = self.store.table(CALLBACKS)
        pages = table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": list_id, "lo": OPEN_PREFIX, "hi": OPEN_PREFIX[:-1] + "."},
            results_per_page=min(limit, 1000) if limit else None,
        )
        found: list[OpenRequest] = []
        for entity in pages:
            found.append(open_from(entity, str(entity.metadata.get("etag", ""))))
            if limit is not None and len(found) >= limit:
                break
        return found

    def open_request(
        self, list_id: str, request_id: str, requested_at: datetime
    ) -> OpenRequest | None:
        found = self.store.get_with_etag(CALLBACKS, list_id, open_key(request_id, requested_at))
        return open_from(*found) if found else None

    def requests(
        self, list_id: str, state: CallbackState | None, limit: int
    ) -> list[CallbackRequest]:
        """Requests of a list, at most `limit`: handled ones newest handled first (their
        index: the cost is `limit`, not the list's history); others by id."""
        if state is CallbackState.HANDLED:
            rows = self.store.query(
                CALLBACKS,
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                {"pk": list_id, "lo": HANDLED_PREFIX, "hi": HANDLED_PREFIX[:-1] + "."},
                top=limit,
            )
            return [request_from(e) for e in rows]
        condition = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        parameters: dict[str, Any] = {
            "pk": list_id,
            "lo": REQUEST_PREFIX,
            "hi": REQUEST_PREFIX[:-1] + ".",
        }
        if state is not None:
            condition += " and state eq @state"
            parameters["state"] = state.value
        rows = self.store.query(CALLBACKS, condition, parameters, top=limit)
        return [request_from(e) for e in rows]

    # ------------------------------------------------------------------ the import

    def claim(self, entries: Sequence[OpenRequest], claim: Claim) -> list[OpenRequest]:
        """Claim the entries that are unchanged since read (their ETag); return those claimed.

        One transaction per 100 when nobody interferes; on a conflict, one by one.
        """
        claimed: list[OpenRequest] = []
        for chunk in _chunks(list(entries), _TX_LIMIT):
            ops = [
                (
                    "update",
                    self._claim_fields(e, claim),
                    {"mode": _merge(), "etag": e.version, "match_condition": _if_not_modified()},
                )
                for e in chunk
            ]
            try:
                self.store.transact(CALLBACKS, ops)
                claimed.extend(self._claimed(e, claim) for e in chunk)
                continue
            except StorageError:
                pass  # someone else claimed or closed one of them: go one by one
            for entry in chunk:
                if self._claim_one(entry, claim):
                    claimed.append(self._claimed(entry, claim))
        return claimed

    def _claim_fields(self, entry: OpenRequest, claim: Claim) -> Entity:
        request = entry.request
        return {
            "PartitionKey": request.list_id,
            "RowKey": open_key(request.request_id, request.requested_at),
            "claimed_by": claim.run_id,
            "claimed_until": claim.until,
        }

    @staticmethod
    def _claimed(entry: OpenRequest, claim: Claim) -> OpenRequest:
        return OpenRequest(
            entry.request,
            "",
            claim.run_id,
            claim.until,
            entry.attempts,
            entry.last_error,
        )

    def _claim_one(self, entry: OpenRequest, claim: Claim) -> bool:
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        try:
            self.store.table(CALLBACKS).update_entity(
                self._claim_fields(entry, claim),
                mode=_merge(),
                etag=entry.version,
                match_condition=_if_not_modified(),
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    def close(self, handled: Sequence[CallbackRequest]) -> None:
        """Mark each request handled, index it by handled time and drop its open row, 33
        requests per transaction."""
        for chunk in _chunks(list(handled), _TX_LIMIT // 3):
            ops: list[tuple[Any, ...]] = []
            for request in chunk:
                ops.append(("upsert", request_entity(request), {"mode": _merge()}))
                ops.append(("upsert", handled_entity(request), {"mode": _merge()}))
                ops.append(("delete", self._open_keys(request)))
            try:
                self.store.transact(CALLBACKS, ops)
                continue
            except StorageError:
                pass  # an open row is gone (another run closed it): close one by one
            for request in chunk:
                self._close_one(request)

    def _close_one(self, request: CallbackRequest) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.store.transact(
                CALLBACKS,
                [
                    ("upsert", request_entity(request), {"mode": _merge()}),
                    ("upsert", handled_entity(request), {"mode": _merge()}),
                    ("delete", self._open_keys(request)),
                ],
            )
        except StorageError:
            # Closed before by a run that overlapped ours; the request row says handled.
            self.store.upsert(CALLBACKS, request_entity(request))
            self.store.upsert(CALLBACKS, handled_entity(request))
            with contextlib.suppress(ResourceNotFoundError):
                self.store.delete(CALLBACKS, *self._open_keys(request).values())

    def release(self, entries: Sequence[OpenRequest], error: str | None, at: datetime) -> None:
        """Give the entries back (claim expired now), counting the attempt and its error."""
        from azure.core.exceptions import ResourceNotFoundError

        updates = [
            {
                **self._open_keys(e.request),
                "claimed_by": "",
                "claimed_until": at,
                "attempts": e.attempts + 1,
                "last_error": (error or "")[:500],
            }
            for e in entries
        ]
        for chunk in _chunks(updates, _TX_LIMIT):
            try:
                # "update" (If-Match: *) never re-creates a row another run has closed.
                self.store.transact(CALLBACKS, [("update", u, {"mode": _merge()}) for u in chunk])
                continue
            except StorageError:
                pass
            for update in chunk:
                with contextlib.suppress(ResourceNotFoundError):
                    self.store.table(CALLBACKS).update_entity(update, mode=_merge())

    @staticmethod
    def _open_keys(request: CallbackRequest) -> Entity:
        return {
            "PartitionKey": request.list_id,
            "RowKey": open_key(request.request_id, request.requested_at),
        }


class QueueCallbackSignals:
    """The immediate path: a message per captured request, read by the import-now handler."""

    def __init__(self, sender: QueueSender) -> None:
        self.sender = sender

    def captured(self, request: CallbackRequest) -> None:
        message = CallbackImport(request.list_id, request.request_id, request.requested_at)
        self.sender.send(CALLBACK_IMPORTS, message.body())
