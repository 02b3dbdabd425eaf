"""Pool monitoring on Table Storage and the notification channels (docs/storage.md, docs/alarms.md):
the pool call log, alarm thresholds and alarm state, the pool-check queue, a Teams incoming
webhook (an Adaptive Card) and ACS Email."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared import messages, queues
from shared.adapters.acs_access import AcsAccess
from shared.adapters.tables import (
    CONFLICT_ATTEMPTS,
    ConcurrencyConflict,
    Entity,
    RetriesExhausted,
    TableStore,
    conflict_pause,
)
from shared.adapters.versions import Recent
from shared.domain.calls import Outcome, Phase
from shared.domain.moments import as_utc, iso_z
from shared.domain.pool_monitoring import (
    AlarmEvent,
    AlarmKind,
    AlarmState,
    AlarmThresholds,
    Change,
    PoolCallEntry,
    watched,
)
from shared.errors import DependencyUnavailable

if TYPE_CHECKING:
    from azure.communication.email import EmailClient

log = logging.getLogger(__name__)

POOL_CALLS, POOL_ALARMS = "poolcalls", "poolalarms"
THRESHOLDS_ROW, STATE_ROW = "thresholds", "state"
_EPOCH_MS_SPAN = 10**13  # row keys count down from here: the newest call comes first
_NAMESPACE = uuid.UUID("6c6f6e67-2d77-6169-742d-616c61726d73")


def _row_key(entry: PoolCallEntry) -> str:
    millis = int(entry.arrived_at.timestamp() * 1000)
    return f"{_EPOCH_MS_SPAN - millis:013d}-{entry.call_id}"


def row_key_before(moment: datetime) -> str:
    """Row keys of calls that arrived after `moment` sort below this one."""
    millis = int(moment.timestamp() * 1000)
    return f"{_EPOCH_MS_SPAN - millis:013d}-~"


class WrittenRows:
    """What this process last wrote or read of each pool call log row: its revision and ETag,
    so the next write of the row is one conditional replace, without a read. Only a guess:
    the ETag checks it (another process wrote since: one refused write, a read, a retry).
    Bounded: the least recently used rows are forgotten first (a forgotten row costs a read)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._rows: Recent[tuple[int, str]] = Recent(capacity)

    def known(self, pk: str, rk: str) -> tuple[int, str] | None:
        return self._rows.get((pk, rk))

    def remember(self, pk: str, rk: str, revision: int, etag: str) -> None:
        if etag:
            self._rows.put((pk, rk), (revision, etag))
        else:
            self.forget(pk, rk)

    def forget(self, pk: str, rk: str) -> None:
        self._rows.pop((pk, rk))


class TablePoolCallLog:
    """One row per pool call (partition: the pool; newest first), written after each change of
    the call that the service calls tab or the wallboard shows. The call's revision orders the
    writes: a late write of an older revision never overwrites a newer one."""

    def __init__(self, store: TableStore, written: WrittenRows | None = None) -> None:
        self.store = store
        self.written = written or WrittenRows()

    def record(self, entry: PoolCallEntry, revision: int) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        row: Entity = {
            "PartitionKey": entry.pool_id,
            "RowKey": _row_key(entry),
            "callId": entry.call_id,
            "arrivedAt": entry.arrived_at,
            "phase": entry.phase.value,
            "customerNumber": entry.customer_number,
            "answeredAt": entry.answered_at,
            "endedAt": entry.ended_at,
            "agentId": entry.agent_id,
            "outcome": entry.outcome.value if entry.outcome else None,
            "revision": revision,
        }
        row = {k: v for k, v in row.items() if v is not None}
        pk, rk = row["PartitionKey"], row["RowKey"]
        # No read where none is needed: a new call's row is inserted (it is not there yet), and
        # a row this process wrote or read before is replaced If-Match the ETag it had then.
        # Either guess, if wrong, costs one refused write and then a read.
        known = self.written.known(pk, rk)
        for attempt in range(CONFLICT_ATTEMPTS):
            if attempt:
                conflict_pause(attempt)
            found: tuple[int, str] | None
            if known is not None:
                found = known
            elif not attempt and revision == 0:
                found = None
            else:
                read = self.store.get_with_etag(POOL_CALLS, pk, rk)
                found = (int(read[0].get("revision", -1)), read[1]) if read else None
                if found:
                    self.written.remember(pk, rk, *found)
            known = None
            try:
                if found is None:
                    etag = self.store.insert(POOL_CALLS, row)
                else:
                    # Revisions only grow in the row: if this process saw this one or a newer
                    # one there, it is there still (or a newer one is).
                    stored_revision, stored_etag = found
                    if stored_revision >= revision:
                        return
                    etag = self.store.replace_if_unchanged(POOL_CALLS, row, stored_etag)
            except (ConcurrencyConflict, ResourceNotFoundError):
                # Another writer came first, or the row is gone (a reset): read, then decide.
                self.written.forget(pk, rk)
                continue
            self.written.remember(pk, rk, revision, etag)
            return
        raise RetriesExhausted(f"pool call log {entry.call_id}: still conflicting")

    def recent(self, pool_id: str, since: datetime, limit: int) -> list[PoolCallEntry]:
        """The pool's calls that arrived after `since`, newest first: one query."""
        rows = self.store.query(
            POOL_CALLS,
            "PartitionKey eq @pool and RowKey lt @before",
            {"pool": pool_id, "before": row_key_before(since)},
            top=limit,
        )
        return [_entry(pool_id, row) for row in rows]


def _entry(pool_id: str, row: Entity) -> PoolCallEntry:
    arrived = as_utc(row["arrivedAt"])
    assert arrived is not None
    return PoolCallEntry(
        pool_id=pool_id,
        call_id=row["callId"],
        arrived_at=arrived,
        phase=Phase(row["phase"]),
        customer_number=row.get("customerNumber", ""),
        answered_at=as_utc(row.get("answeredAt")),
        ended_at=as_utc(row.get("endedAt")),
        agent_id=row.get("agentId"),
        outcome=Outcome(row["outcome"]) if row.get("outcome") else None,
    )


class TableAlarms:
    """Per pool (partition: the pool id): the supervisors' thresholds and the alarm state, an
    ETag-guarded row, so concurrent checks agree on one transition. Remembers for
    `watch_seconds` which pools are watched (`watched`), so a change of a pool nobody watches
    asks for no check and costs no read."""

    def __init__(
        self,
        store: TableStore,
        *,
        watch_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.watch_seconds, self.clock = store, watch_seconds, clock
        self._watched: dict[str, tuple[bool, float]] = {}  # pool id -> (watched, seen at)
        self._lock = threading.Lock()

    def thresholds(self, pool_id: str) -> tuple[AlarmThresholds, str | None, datetime | None]:
        """The pool's thresholds, who set them last and when (defaults: every alarm off)."""
        return _thresholds(self.store.get(POOL_ALARMS, pool_id, THRESHOLDS_ROW))

    def current(self, pool_id: str) -> tuple[AlarmThresholds, AlarmState, str | None]:
        """The thresholds, the alarm state and its ETag: both rows in one query (a check of a
        pool with no alarm set and none to clear costs this one request)."""
        rows = {
            row["RowKey"]: (row, etag)
            for row, etag in self.store.query_versions(
                POOL_ALARMS, "PartitionKey eq @pk", {"pk": pool_id}
            )
        }
        found = rows.get(THRESHOLDS_ROW)
        thresholds, _, _ = _thresholds(found[0] if found else None)
        state, etag = _state(rows.get(STATE_ROW))
        self._saw(pool_id, watched(thresholds, state))
        return thresholds, state, etag

    def watched(self, pool_id: str) -> bool:
        """Whether the pool has an alarm set or one left to clear, as this process saw it at
        most `watch_seconds` ago (else one query). Another process's change of thresholds
        reaches this one that much later; the supervisor's own change is checked at once, and
        the alarm timer checks every watched pool anyway."""
        with self._lock:
            seen = self._watched.get(pool_id)
        if seen is not None and self.clock() - seen[1] < self.watch_seconds:
            return seen[0]
        thresholds, state, _ = self.current(pool_id)
        return watched(thresholds, state)

    def _saw(self, pool_id: str, is_watched: bool) -> None:
        with self._lock:
            self._watched[pool_id] = (is_watched, self.clock())

    def set_thresholds(
        self, pool_id: str, thresholds: AlarmThresholds, by: str, at: datetime
    ) -> None:
        row: Entity = {
            "PartitionKey": pool_id,
            "RowKey": THRESHOLDS_ROW,
            "queueLength": thresholds.queue_length,
            "maxWaitSeconds": thresholds.max_wait_seconds,
            "nobodyServing": thresholds.nobody_serving,
            "abandonRatePercent": thresholds.abandon_rate_percent,
            "abandonMinCalls": thresholds.abandon_min_calls,
            "updatedBy": by,
            "updatedAt": at,
        }
        self.store.upsert(
            POOL_ALARMS, {k: v for k, v in row.items() if v is not None}, replace=True
        )
        if thresholds.any:
            self._saw(pool_id, True)
        else:  # watched still if an alarm is left to clear: the next look reads
            with self._lock:
                self._watched.pop(pool_id, None)

    def state(self, pool_id: str) -> tuple[AlarmState, str | None]:
        """The alarm state and its ETag (None: never written)."""
        return _state(self.store.get_with_etag(POOL_ALARMS, pool_id, STATE_ROW))

    def save_state(self, pool_id: str, state: AlarmState, etag: str | None) -> str | None:
        """Write the state if nobody else did since it was read: its new ETag (for the next
        write, without a read); None when someone did."""
        row: Entity = {
            "PartitionKey": pool_id,
            "RowKey": STATE_ROW,
            "active": json.dumps({k.value: iso_z(t) for k, t in state.active.items()}),
            "serial": state.serial,
            "outbox": json.dumps([_event_json(e) for e in state.outbox]),
        }
        try:
            if etag is None:
                written = self.store.insert(POOL_ALARMS, row)
            else:
                written = self.store.replace_if_unchanged(POOL_ALARMS, row, etag)
        except ConcurrencyConflict:
            return None
        if state.active or state.outbox:
            self._saw(pool_id, True)
        return written


def _thresholds(row: Entity | None) -> tuple[AlarmThresholds, str | None, datetime | None]:
    if row is None:
        return AlarmThresholds(), None, None
    return (
        AlarmThresholds(
            queue_length=row.get("queueLength"),
            max_wait_seconds=row.get("maxWaitSeconds"),
            nobody_serving=bool(row.get("nobodyServing", False)),
            abandon_rate_percent=row.get("abandonRatePercent"),
            abandon_min_calls=int(row.get("abandonMinCalls", 10)),
        ),
        row.get("updatedBy"),
        as_utc(row.get("updatedAt")),
    )


def _state(found: tuple[Entity, str] | None) -> tuple[AlarmState, str | None]:
    if found is None:
        return AlarmState(active={}), None
    row, etag = found
    active = {
        AlarmKind(k): moment
        for k, v in json.loads(row.get("active") or "{}").items()
        if (moment := as_utc(v)) is not None
    }
    outbox = tuple(_event(e) for e in json.loads(row.get("outbox") or "[]"))
    return AlarmState(active, int(row.get("serial", 0)), outbox), etag


def _event_json(event: AlarmEvent) -> dict[str, Any]:
    return {
        "kind": event.kind.value,
        "change": event.change.value,
        "at": iso_z(event.at),
        "serial": event.serial,
        "poolId": event.pool_id,
    }


def _event(data: dict[str, Any]) -> AlarmEvent:
    at = as_utc(data["at"])
    assert at is not None
    return AlarmEvent(
        data["poolId"], AlarmKind(data["kind"]), Change(data["change"]), at, int(data["serial"])
    )


class QueuePoolChecks:
    """Asks for a pool's alarm check: a queue message the pool-check trigger handles."""

    def __init__(self, sender: Any) -> None:
        self.sender = sender

    def request(self, pool_id: str) -> None:
        self.sender.send(queues.POOL_CHECKS, messages.pool_check_body(pool_id))


# ---------------------------------------------------------------------- notification channels


class TeamsWebhook:
    """A Teams incoming webhook: one message with one Adaptive Card attachment per alarm event."""

    def __init__(self, url: str, *, ca_bundle: str | None, timeout_seconds: int) -> None:
        self.url, self.ca_bundle, self.timeout = url, ca_bundle, timeout_seconds
        self._session: Any = None

    def post(self, title: str, facts: list[tuple[str, str]], raised: bool) -> None:
        import requests

        if self._session is None:
            self._session = requests.Session()
        payload = adaptive_card_message(title, facts, raised)
        try:
            reply = self._session.post(
                self.url,
                json=payload,
                timeout=self.timeout,
                verify=self.ca_bundle or True,
            )
        except requests.RequestException as exc:
            raise DependencyUnavailable("the Teams webhook is not reachable") from exc
        if reply.status_code >= 300:
            # The URL itself is the secret: never in a message.
            raise DependencyUnavailable(f"the Teams webhook answered {reply.status_code}")


def adaptive_card_message(title: str, facts: list[tuple[str, str]], raised: bool) -> dict[str, Any]:
    """The body a Teams incoming webhook takes: a message with an Adaptive Card attachment."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": title,
                            "weight": "Bolder",
                            "size": "Medium",
                            "color": "Attention" if raised else "Good",
                            "wrap": True,
                        },
                        {
                            "type": "FactSet",
                            "facts": [{"title": k, "value": v} for k, v in facts],
                        },
                    ],
                },
            }
        ],
    }


class AcsEmail:
    """ACS Email through azure-communication-email: one client per process, built on first use.
    The send is accepted (202) and left to run; the event's id is the Operation-Id, so a
    repeated send of the same event is the same operation for the service."""

    def __init__(
        self,
        connection: str | AcsAccess,
        *,
        sender: str,
        recipients: tuple[str, ...],
        ca_bundle: str | None = None,
        timeout_seconds: int = 15,
    ) -> None:
        self._access, self._ca_bundle = AcsAccess.of(connection), ca_bundle
        self.sender, self.recipients, self._timeout = sender, recipients, timeout_seconds
        self._client: EmailClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> EmailClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from azure.communication.email import EmailClient

                    self._client = self._access.sdk_client(
                        EmailClient, timeout_seconds=self._timeout, ca_bundle=self._ca_bundle
                    )
        return self._client

    def send(self, event_id: str, subject: str, text: str) -> None:
        from azure.core.exceptions import HttpResponseError, ServiceRequestError

        message = {
            "senderAddress": self.sender,
            "recipients": {"to": [{"address": a} for a in self.recipients]},
            "content": {"subject": subject, "plainText": text},
        }
        operation_id = str(uuid.uuid5(_NAMESPACE, event_id))
        try:
            self.client.begin_send(message, operation_id=operation_id, polling=False)
        except HttpResponseError as exc:
            raise DependencyUnavailable(f"ACS Email answered {exc.status_code}") from exc
        except ServiceRequestError as exc:
            raise DependencyUnavailable("ACS Email: service not reachable") from exc
