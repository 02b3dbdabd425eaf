"""The enterprise-call sync's state on Table Storage: a marker per processed source record, the
Teams watermark, the last run and the Graph subscription (docs/storage.md)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.tables import Entity, TableStore
from shared.domain.enterprise_calls import EnterpriseCall
from shared.domain.graph_notifications import StoredSubscription
from shared.errors import DependencyUnavailable

MARKERS, SYNC = "enterprisecalls", "enterprisesync"
WATERMARK_ROW, LAST_RUN_ROW, SUBSCRIPTION_ROW = "watermark", "lastrun", "subscription"
WRITER_ROW = "writer"
# The writer lease: long enough for one batch's lookups and $batch create; a holder that died
# holding it delays the next writer by at most this much.
WRITER_LEASE = timedelta(seconds=120)
WRITER_WAIT_SECONDS = 60.0
# Records of one source that started within this gap of each other are looked up with one
# range query; a push spread over weeks becomes a few small queries, not one huge one.
CLUSTER_GAP = timedelta(hours=1)
# The subscription ids Graph removed that the subscription row remembers (newest first): enough
# for any late renewal still in flight, bounded so the row stays small.
REMOVED_IDS_KEPT = 20


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

    @contextmanager
    def exclusive(self, source: str) -> Iterator[None]:
        """One writer of a source's activities at a time (row `enterprisesync/<source>/writer`,
        an ETag-guarded lease). The notification path and the poll know the same Teams call
        under two ids (a callRecord's, a PSTN log row's), so only the already-logged check
        tells them apart; holding the lease from that check to the create makes it exact."""
        holder = os.urandom(8).hex()
        deadline = time.monotonic() + WRITER_WAIT_SECONDS
        pause = 0.05

        def take(entity: Entity | None) -> Entity | None:
            now = datetime.now(UTC)
            until = (entity or {}).get("until")
            if until is not None and (entity or {}).get("holder") not in ("", holder):
                until = until.replace(tzinfo=UTC) if until.tzinfo is None else until
                if until > now:
                    return None  # held by another writer
            return {"holder": holder, "until": now + WRITER_LEASE}

        while True:
            row = self.store.read_modify_write(self.sync, source, WRITER_ROW, take)
            if row is not None and row.get("holder") == holder:
                break
            if time.monotonic() >= deadline:
                raise DependencyUnavailable(f"another {source} import holds the writer lease")
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        try:
            yield
        finally:

            def release(entity: Entity | None) -> Entity | None:
                if entity is None or entity.get("holder") != holder:
                    return None
                return {"holder": "", "until": datetime.now(UTC)}

            self.store.read_modify_write(self.sync, source, WRITER_ROW, release)

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

    # ---- the Graph subscription (row enterprisesync/<source>/subscription)

    def subscription(self, source: str) -> StoredSubscription | None:
        row = self.store.get(self.sync, source, SUBSCRIPTION_ROW)
        if row is None or not row.get("subscription_id"):
            return None
        expires: datetime = row["expires_at"]
        expires = expires.replace(tzinfo=UTC) if expires.tzinfo is None else expires
        return StoredSubscription(str(row["subscription_id"]), expires.astimezone(UTC))

    def save_subscription(self, source: str, sub: StoredSubscription, at: datetime) -> bool:
        """Store `sub` unless Graph removed it already: a renewal that finishes after its
        subscription's `subscriptionRemoved` was handled must not bring the dead id back over
        the new one. ETag-guarded; False when refused."""

        def put(entity: Entity | None) -> Entity | None:
            removed = _removed_ids(entity)
            if sub.subscription_id in removed:
                return None
            return {
                "subscription_id": sub.subscription_id,
                "expires_at": sub.expires_at,
                "updated_at": at,
                "removed_ids": json.dumps(removed),
            }

        row = self.store.read_modify_write(self.sync, source, SUBSCRIPTION_ROW, put)
        return (row or {}).get("subscription_id") == sub.subscription_id

    def forget_subscription(self, source: str, subscription_id: str) -> None:
        """Remember `subscription_id` as removed (it is never stored again) and drop it if it
        is still the stored one (a newer one stays)."""

        def drop(entity: Entity | None) -> Entity | None:
            removed = _removed_ids(entity)
            if subscription_id in removed:
                return None
            row = dict(entity or {"subscription_id": ""})
            if row.get("subscription_id") == subscription_id:
                row["subscription_id"] = ""
            row["removed_ids"] = json.dumps([subscription_id, *removed][:REMOVED_IDS_KEPT])
            return row

        self.store.read_modify_write(self.sync, source, SUBSCRIPTION_ROW, drop)


def _removed_ids(entity: Entity | None) -> list[str]:
    ids: list[str] = json.loads((entity or {}).get("removed_ids") or "[]")
    return ids
