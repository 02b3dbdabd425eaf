"""The enterprise-call sync's state on Table Storage: a marker per processed source record, the
Teams watermark and the last run (docs/storage.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.tables import Entity, TableStore
from shared.domain.enterprise_calls import EnterpriseCall

MARKERS, SYNC = "enterprisecalls", "enterprisesync"
WATERMARK_ROW, LAST_RUN_ROW = "watermark", "lastrun"
# Records of one source that started within this gap of each other are looked up with one
# range query; a push spread over weeks becomes a few small queries, not one huge one.
CLUSTER_GAP = timedelta(hours=1)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")


def marker_key(call: EnterpriseCall) -> str:
    """RowKey: start time first, so a time window is one range query; then the activity id
    (unique per source record, and made of characters a RowKey may hold)."""
    return f"{_stamp(call.started_at)}-{call.activity_id}"


def _clusters(calls: Sequence[EnterpriseCall]) -> list[list[EnterpriseCall]]:
    ordered = sorted(calls, key=lambda c: c.started_at)
    groups: list[list[EnterpriseCall]] = []
    for call in ordered:
        if groups and call.started_at - groups[-1][-1].started_at <= CLUSTER_GAP:
            groups[-1].append(call)
        else:
            groups.append([call])
    return groups


class TableSyncState:
    """Partition `enterprisecalls/<source>`: one marker per settled record (its outcome).
    Partition `enterprisesync/<source>`: the watermark and the last run's counts."""

    def __init__(self, store: TableStore, *, markers: str = MARKERS, sync: str = SYNC) -> None:
        self.store = store
        self.markers, self.sync = markers, sync

    def processed(self, calls: Sequence[EnterpriseCall]) -> dict[str, str]:
        """The records settled before: activity id -> the outcome then."""
        found: dict[str, str] = {}
        by_source: dict[str, list[EnterpriseCall]] = {}
        for call in calls:
            by_source.setdefault(call.source, []).append(call)
        for source, group in by_source.items():
            for cluster in _clusters(group):
                low = _stamp(cluster[0].started_at)
                high = _stamp(cluster[-1].started_at) + "~"  # past every id at that instant
                rows = self.store.query(
                    self.markers,
                    "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                    {"pk": source, "low": low, "high": high},
                    select=["RowKey", "outcome"],
                )
                for row in rows:
                    found[str(row["RowKey"]).split("-", 1)[1]] = str(row.get("outcome", ""))
        return found

    def settle(self, settled: Sequence[tuple[EnterpriseCall, str]], at: datetime) -> None:
        """Write the markers of settled records: (call, outcome), 100 per transaction."""
        by_source: dict[str, list[Entity]] = {}
        for call, outcome in settled:
            by_source.setdefault(call.source, []).append(
                {
                    "PartitionKey": call.source,
                    "RowKey": marker_key(call),
                    "call_id": call.call_id,
                    "outcome": outcome,
                    "activity_id": call.activity_id,
                    "started_at": call.started_at,
                    "processed_at": at,
                }
            )
        for entities in by_source.values():
            for i in range(0, len(entities), 100):
                self.store.transact(self.markers, [("upsert", e) for e in entities[i : i + 100]])

    def watermark(self, source: str) -> datetime | None:
        row = self.store.get(self.sync, source, WATERMARK_ROW)
        value = (row or {}).get("synced_to")
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    def advance_watermark(self, source: str, to: datetime) -> None:
        """Move the watermark forward to `to` (never back: an older run finishing late)."""

        def forward(entity: Entity | None) -> Entity | None:
            current = (entity or {}).get("synced_to")
            if current is not None:
                current = current.replace(tzinfo=UTC) if current.tzinfo is None else current
                if current >= to:
                    return None
            return {"synced_to": to}

        self.store.read_modify_write(self.sync, source, WATERMARK_ROW, forward)

    def save_run(self, source: str, summary: dict[str, Any], at: datetime) -> None:
        self.store.upsert(
            self.sync,
            {
                "PartitionKey": source,
                "RowKey": LAST_RUN_ROW,
                "finished_at": at,
                "summary": json.dumps(summary),
            },
            replace=True,
        )

    def last_run(self, source: str) -> dict[str, Any] | None:
        row = self.store.get(self.sync, source, LAST_RUN_ROW)
        if row is None:
            return None
        summary: dict[str, Any] = json.loads(row.get("summary") or "{}")
        return {**summary, "finishedAt": row["finished_at"]}
