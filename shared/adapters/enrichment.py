"""The enrichment's adapters: its one Dataverse PATCH and its progress row on the call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.adapters.dataverse import (
    DataverseClient,
    DataverseError,
    keep_notes_annotation,
    remove_notes_annotation,
)
from shared.adapters.repositories import CALLS
from shared.adapters.tables import ConcurrencyConflict, Entity, RetriesExhausted, TableStore
from shared.domain.enrichment import (
    STATE_COMPLETED,
    ActivityUpdate,
    EnrichmentColumns,
    EnrichmentState,
    Outcome,
    Status,
    WriteResult,
)
from shared.domain.moments import iso_z

# Dataverse's codes for an update of a completed/canceled activity (the emulator's first).
CLOSED_CODES = {"0x80040230", "0x8004f508", "0x80040203"}
ENRICHMENT_ROW = "enrichment"


class DataverseActivityEnrichment:
    """Writes an ActivityUpdate onto its Phone Call in one PATCH (If-Match: * so a missing
    activity is a 404, never an upsert that would create a half activity)."""

    def __init__(self, client: DataverseClient, columns: EnrichmentColumns) -> None:
        self.client, self.columns = client, columns

    def body(self, update: ActivityUpdate) -> dict[str, Any]:
        c = self.columns
        body: dict[str, Any] = {}
        if update.recording_url is not None:
            body[c.recording_url] = update.recording_url
        if update.call_arrived_at is not None:
            body[c.call_arrived_at] = iso_z(update.call_arrived_at)
        if update.first_answered_at is not None:
            body[c.first_answered_at] = iso_z(update.first_answered_at)
        if update.wait_seconds is not None:
            body[c.wait_time_seconds] = update.wait_seconds
        if update.description is not None:
            body["description"] = update.description
        if update.complete_as is not None:
            body["statecode"] = STATE_COMPLETED
            body["statuscode"] = update.complete_as
        return body

    def enrich(self, update: ActivityUpdate) -> WriteResult:
        """The PATCH; notes too long for the description are kept in the activity's annotation,
        written before it (the activity may be completed by it), removed after it when the
        notes got short again."""
        try:
            if update.annotation is not None:
                keep_notes_annotation(self.client, update.activity_id, update.annotation)
            self.client.request(
                "PATCH",
                f"phonecalls({update.activity_id})",
                body=self.body(update),
                headers={"If-Match": "*"},
            )
        except DataverseError as exc:
            if exc.status == 404:
                return WriteResult.MISSING
            if exc.status == 400 and _closed(exc):
                return WriteResult.CLOSED
            raise
        if update.remove_annotation:
            remove_notes_annotation(self.client, update.activity_id)
        return WriteResult.WRITTEN

    def carries(self, update: ActivityUpdate) -> bool:
        # Dates come back formatted by Dataverse; the other columns identify our write well.
        dates = (self.columns.call_arrived_at, self.columns.first_answered_at)
        wanted = {k: v for k, v in self.body(update).items() if k not in dates}
        try:
            reply = self.client.request(
                "GET", f"phonecalls({update.activity_id})?$select={','.join(wanted)}"
            )
        except DataverseError as exc:
            if exc.status == 404:
                return False
            raise
        row = reply.body if isinstance(reply.body, dict) else {}
        return bool(wanted) and all(row.get(k) == v for k, v in wanted.items())


def _closed(exc: DataverseError) -> bool:
    text = exc.message.lower()
    return exc.code in CLOSED_CODES or "closed" in text or "inactive" in text


# ---------------------------------------------------------------------- the progress row


def state_to_entity(state: EnrichmentState) -> Entity:
    entity: Entity = {
        "PartitionKey": state.call_id,
        "RowKey": ENRICHMENT_ROW,
        "status": state.status.value,
        "reason": state.reason[:1000],
        "attempts": state.attempts,
        "dequeue_count": state.dequeue_count,
        "writes": state.writes,
    }
    optional = {
        "outcome": state.outcome.value if state.outcome else None,
        "claimed_by": state.claimed_by,
        "claimed_at": state.claimed_at,
        "recording_url": state.recording_url,
        "updated_at": state.updated_at,
    }
    entity.update({k: v for k, v in optional.items() if v is not None})
    return entity


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def state_from_entity(entity: Entity) -> EnrichmentState:
    outcome = entity.get("outcome")
    return EnrichmentState(
        call_id=str(entity["PartitionKey"]),
        status=Status(entity["status"]),
        outcome=Outcome(outcome) if outcome else None,
        reason=str(entity.get("reason", "")),
        attempts=int(entity.get("attempts", 0)),
        dequeue_count=int(entity.get("dequeue_count", 0)),
        writes=int(entity.get("writes", 0)),
        claimed_by=entity.get("claimed_by") or None,
        claimed_at=_moment(entity.get("claimed_at")),
        recording_url=entity.get("recording_url") or None,
        updated_at=_moment(entity.get("updated_at")),
    )


class TableEnrichmentLog:
    """`calls` / <call id> / `enrichment`: one row per call, every change ETag-guarded."""

    def __init__(self, store: TableStore) -> None:
        self.store = store

    def get(self, call_id: str) -> EnrichmentState | None:
        entity = self.store.get(CALLS, call_id, ENRICHMENT_ROW)
        return state_from_entity(entity) if entity else None

    def change(
        self, call_id: str, change: Callable[[EnrichmentState | None], EnrichmentState | None]
    ) -> tuple[EnrichmentState | None, bool]:
        for _ in range(20):
            found = self.store.get_with_etag(CALLS, call_id, ENRICHMENT_ROW)
            current = state_from_entity(found[0]) if found else None
            new = change(current)
            if new is None or new == current:
                return current, False
            try:
                if found is None:
                    self.store.insert(CALLS, state_to_entity(new))
                else:
                    self.store.replace_if_unchanged(CALLS, state_to_entity(new), found[1])
            except ConcurrencyConflict:
                continue  # changed meanwhile (a duplicate message): decide again on the new row
            return new, True
        raise RetriesExhausted(f"enrichment of call {call_id}: still conflicting")
