"""The call-flow ports on Table Storage: calls, agent claims, pool queues (docs/storage.md)."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from shared import messages, queues
from shared.adapters import versions
from shared.adapters.tables import (
    CONFLICT_ATTEMPTS,
    ConcurrencyConflict,
    Entity,
    RetriesExhausted,
    TableStore,
    TransactionFailed,
    conflict_pause,
)
from shared.domain.activity import DESCRIPTION_MAX, NOTES_MAX
from shared.domain.availability import (
    AVAILABLE,
    AgentState,
    Availability,
    AvailabilityType,
    effective,
    takes_pool_calls,
)
from shared.domain.calls import (
    Call,
    CallbackOffer,
    CallKind,
    Consult,
    ConsultState,
    Direction,
    Handover,
    Offer,
    OfferOutcome,
)
from shared.domain.customers import CustomerRef
from shared.domain.moments import as_utc
from shared.domain.sessions import Lease

log = logging.getLogger(__name__)

CALLS, AGENTS, POOL_QUEUE, AGENT_CALLS = "calls", "agents", "poolqueue", "agentcalls"
CALL_ROW, NOTES_ROW = "call", "notes"
AGENT_PARTITION = "agent"
TIMED_PARTITION = "timed"
# A Table Storage string property holds 64 KiB (32 K UTF-16 units): notes are kept in slices of
# characters that fit even when every one is a surrogate pair, `text`, `text1`, `text2`, ...
NOTES_SLICE = 15_000
NOTES_SLOTS = math.ceil(NOTES_MAX / NOTES_SLICE)


def _notes_property(slot: int) -> str:
    return "text" if slot == 0 else f"text{slot}"


_DATES = (
    "arrived_at",
    "app_connected_at",
    "first_answered_at",
    "ended_at",
    "party_left_at",
    "agent_away_since",
    "callback_offered_at",
)


def call_to_entity(call: Call) -> Entity:
    entity: Entity = {"PartitionKey": call.call_id, "RowKey": CALL_ROW}
    for key, value in asdict(call).items():
        if key in ("offers", "candidates", "picked", "tried", "consult", "handovers"):
            continue
        if value is not None:
            entity[key] = value.value if isinstance(value, Enum) else value
    entity["candidates"] = json.dumps([c.to_json() for c in call.candidates])
    entity["picked"] = json.dumps(call.picked.to_json() if call.picked else None)
    entity["tried"] = json.dumps(list(call.tried))
    entity["offers"] = json.dumps([_offer_json(o) for o in call.offers])
    consult = call.consult
    entity["consult"] = json.dumps(
        {
            "n": consult.n,
            "target": consult.target,
            "agentId": consult.agent_id,
            "blind": consult.blind,
            "invitationId": consult.invitation_id,
            "state": consult.state.value,
            "fromAgentId": consult.from_agent_id,
            "fromName": consult.from_name,
            "toName": consult.to_name,
        }
        if consult
        else None
    )
    if call.handovers:  # left out until there is one: a call row without stays as it was
        entity["handovers"] = json.dumps([_handover_json(h) for h in call.handovers])
    return entity


def _handover_json(handover: Handover) -> dict[str, Any]:
    return {
        "n": handover.n,
        "fromAgentId": handover.from_agent_id,
        "fromName": handover.from_name,
        "toAgentId": handover.to_agent_id,
        "toName": handover.to_name,
        "at": handover.at.isoformat(),
    }


def _handover_from(data: dict[str, Any]) -> Handover:
    return Handover(
        int(data["n"]),
        data["fromAgentId"],
        data.get("fromName") or "",
        data["toAgentId"],
        data.get("toName") or "",
        datetime.fromisoformat(data["at"]),
    )


def _offer_json(offer: Offer) -> dict[str, Any]:
    return {
        "n": offer.n,
        "target": offer.target,
        "agentId": offer.agent_id,
        "offeredAt": offer.offered_at.isoformat(),
        "outcome": offer.outcome.value,
        "settledAt": offer.settled_at.isoformat() if offer.settled_at else None,
        "invitationId": offer.invitation_id,
        "rejoin": offer.rejoin,
    }


def _offer_from(data: dict[str, Any]) -> Offer:
    settled = data.get("settledAt")
    return Offer(
        data["n"],
        data["target"],
        data.get("agentId"),
        datetime.fromisoformat(data["offeredAt"]),
        OfferOutcome(data["outcome"]),
        datetime.fromisoformat(settled) if settled else None,
        data.get("invitationId"),
        bool(data.get("rejoin", False)),
    )


def call_from_entity(entity: Entity) -> Call:
    picked = json.loads(entity.get("picked") or "null")
    arrived = as_utc(entity["arrived_at"])
    assert arrived is not None
    return Call(
        call_id=entity["call_id"],
        direction=Direction(entity["direction"]),
        kind=CallKind(entity["kind"]),
        customer_number=entity["customer_number"],
        our_number=entity.get("our_number", ""),
        arrived_at=arrived,
        pool_id=entity.get("pool_id"),
        agent_id=entity.get("agent_id"),
        connection_id=entity.get("connection_id"),
        peer_target=entity.get("peer_target"),
        candidates=tuple(CustomerRef.from_json(c) for c in json.loads(entity["candidates"])),
        picked=CustomerRef.from_json(picked) if picked else None,
        offers=tuple(_offer_from(o) for o in json.loads(entity["offers"])),
        app_connected_at=as_utc(entity.get("app_connected_at")),
        first_answered_at=as_utc(entity.get("first_answered_at")),
        answered_by=entity.get("answered_by"),
        ended_at=as_utc(entity.get("ended_at")),
        party_left_at=as_utc(entity.get("party_left_at")),
        hangup_requested=bool(entity.get("hangup_requested", False)),
        participants_sequence=int(entity.get("participants_sequence", -1)),
        activity_id=entity.get("activity_id"),
        tried=tuple(json.loads(entity["tried"])),
        server_call_id=entity.get("server_call_id"),
        record=bool(entity.get("record", False)),
        recording_requested=bool(entity.get("recording_requested", False)),
        recording_id=entity.get("recording_id"),
        disposition=entity.get("disposition"),
        held=bool(entity.get("held", False)),
        muted=bool(entity.get("muted", False)),
        consult=_consult_from(json.loads(entity.get("consult") or "null")),
        agent_target_override=entity.get("agent_target_override"),
        callback=CallbackOffer(entity["callback"]) if entity.get("callback") else None,
        announcement=entity.get("announcement") or None,
        announcement_prompt=entity.get("announcement_prompt") or None,
        announce_then=entity.get("announce_then") or None,
        announced=str(entity.get("announced") or ""),
        agent_away_since=as_utc(entity.get("agent_away_since")),
        rejoin_hold=bool(entity.get("rejoin_hold", False)),
        rejoin_expired=bool(entity.get("rejoin_expired", False)),
        requeue_floor=entity.get("requeue_floor"),
        case_id=entity.get("case_id"),
        case_title=entity.get("case_title"),
        case_number=entity.get("case_number"),
        activity_requested=bool(entity.get("activity_requested", False)),
        overflowed=str(entity.get("overflowed") or ""),
        queue_announced=int(entity.get("queue_announced", 0)),
        keeps_place=bool(entity.get("keeps_place", False)),
        callback_call_id=entity.get("callback_call_id"),
        callback_offered_at=as_utc(entity.get("callback_offered_at")),
        callback_done=bool(entity.get("callback_done", False)),
        callback_for=entity.get("callback_for"),
        handovers=tuple(_handover_from(h) for h in json.loads(entity.get("handovers") or "[]")),
        activity_owner=entity.get("activity_owner"),
    )


def _consult_from(data: dict[str, Any] | None) -> Consult | None:
    if not data:
        return None
    return Consult(
        data["n"],
        data["target"],
        data.get("agentId"),
        bool(data["blind"]),
        ConsultState(data["state"]),
        data.get("invitationId"),
        data.get("fromAgentId"),
        data.get("fromName") or "",
        data.get("toName") or "",
    )


CallObserver = Callable[[Call | None, Call, int], None]
REVISION = "Rev"  # the call row's write count: orders the writes derived from it


class TableCallRepository:
    """A call's rows share its partition: the call, one marker per processed event, notes.

    `observer(before, after, revision)` hears of every change written (a pool call's log entry
    and its pool's alarm check follow from it); a failing observer never fails the call."""

    def __init__(self, store: TableStore, observer: CallObserver | None = None) -> None:
        self.store = store
        self.observer = observer

    def _observe(self, before: Call | None, after: Call, revision: int) -> None:
        if self.observer is None:
            return
        try:
            self.observer(before, after, revision)
        except Exception:
            log.exception("call %s: the change's observer failed", after.call_id)

    def add(self, call: Call) -> bool:
        entity = call_to_entity(call)
        try:
            etag = self.store.insert(CALLS, {**entity, REVISION: 0})
        except ConcurrencyConflict:
            return False
        versions.remember(CALLS, call.call_id, CALL_ROW, {**entity, REVISION: 0}, etag, shared=True)
        self._observe(None, call, 0)
        return True

    def get(self, call_id: str) -> Call | None:
        found = self.store.get_with_etag(CALLS, call_id, CALL_ROW)
        if found is None:
            versions.forget(CALLS, call_id, CALL_ROW)
            return None
        versions.remember(CALLS, call_id, CALL_ROW, *found, shared=True)
        return call_from_entity(found[0])

    def guess(self, call_id: str) -> Call | None:
        found = versions.guess(CALLS, call_id, CALL_ROW)
        return call_from_entity(found[0]) if found else None

    def get_with_notes(self, call_id: str) -> Call | None:
        found = self._read_with_notes(call_id)
        if found is None:
            versions.forget(CALLS, call_id, CALL_ROW)
            return None
        versions.remember(CALLS, call_id, CALL_ROW, *found, shared=True)
        return call_from_entity(found[0])

    def update(
        self, call_id: str, change: Callable[[Call], Call | None], *, event_id: str | None = None
    ) -> tuple[Call, bool] | None:
        marker = f"evt-{_safe_key(event_id)}" if event_id else None
        fresh, from_known = False, False
        for attempt in range(CONFLICT_ATTEMPTS):
            if attempt and not from_known:
                conflict_pause(attempt)
            # A write starts from the version this invocation (or, a guess, this instance) read
            # or wrote last: checked by the ETag, so a stale one costs a refusal and a read.
            found = None if fresh else versions.guess(CALLS, call_id, CALL_ROW)
            from_known, fresh = found is not None, True
            if found is None and marker and not attempt:
                found = self._read_with_notes(call_id)
            elif found is None:
                found = self.store.get_with_etag(CALLS, call_id, CALL_ROW)
            if found is None:
                versions.forget(CALLS, call_id, CALL_ROW)
                return None
            entity, etag = found
            if not from_known:
                versions.remember(CALLS, call_id, CALL_ROW, entity, etag, shared=True)
            current = call_from_entity(entity)
            new = change(current)
            if (new is None or new == current) and from_known:
                continue  # "nothing to do" is only believed of a fresh read
            if new is None or new == current:
                # Nothing to write: an event that changes nothing is a repeat or says nothing
                # new (the fold is idempotent), so it needs no marker either.
                return current, False
            revision = int(entity.get(REVISION) or 0) + 1
            new_entity = {**call_to_entity(new), REVISION: revision}
            update = (
                "update",
                new_entity,
                {"mode": "replace", "etag": etag, "match_condition": _if_not_modified()},
            )
            ops: list[tuple[Any, ...]] = [update]
            if marker:
                ops.insert(0, ("create", {"PartitionKey": call_id, "RowKey": marker}))
            try:
                results = self.store.transact(CALLS, ops)
            except ConcurrencyConflict:
                versions.forget(CALLS, call_id, CALL_ROW)
                # The marker is only looked for on a conflict: a new event costs two requests.
                if marker and self.store.get(CALLS, call_id, marker) is not None:
                    return self.get(call_id) or current, False  # processed before
                continue  # the call changed meanwhile: look again
            etag_now = str(results[-1].get("etag", "")) if results else ""
            versions.remember(CALLS, call_id, CALL_ROW, new_entity, etag_now, shared=True)
            self._observe(current, new, revision)
            return new, True
        raise RetriesExhausted(f"call {call_id}: still conflicting")

    def _read_with_notes(self, call_id: str) -> tuple[Entity, str] | None:
        """The call row and its notes in one query: the event that ends the call needs both
        (the activity's description), and a query costs what a point read does."""
        rows = self.store.query_versions(
            CALLS,
            "PartitionKey eq @pk and ( RowKey eq @call or RowKey eq @notes )",
            {"pk": call_id, "call": CALL_ROW, "notes": NOTES_ROW},
        )
        found = None
        versions.forget(CALLS, call_id, NOTES_ROW)
        for entity, etag in rows:
            versions.remember(CALLS, call_id, entity["RowKey"], entity, etag)
            if entity["RowKey"] == CALL_ROW:
                found = (entity, etag)
        if found is not None and not any(e["RowKey"] == NOTES_ROW for e, _ in rows):
            versions.remember(CALLS, call_id, NOTES_ROW, {"text": ""}, "none")  # no notes yet
        return found

    def _notes_row(self, call_id: str, part: int = 0) -> Entity | None:
        if part:
            return self.store.get(CALLS, call_id, notes_row(part))
        known = versions.known(CALLS, call_id, NOTES_ROW)  # read with this invocation's event
        return known[0] if known else self.store.get(CALLS, call_id, NOTES_ROW)

    def notes(self, call_id: str, part: int = 0) -> str:
        entity = self._notes_row(call_id, part)
        if not entity:
            return ""
        return "".join(str(entity.get(_notes_property(n)) or "") for n in range(NOTES_SLOTS))

    def notes_parts(self, call_id: str, count: int) -> tuple[str, ...]:
        return tuple(self.notes(call_id, part) for part in range(max(1, count)))

    def notes_attached(self, call_id: str) -> bool:
        entity = self._notes_row(call_id)  # the call's flag: on the first agent's row
        return bool(entity and entity.get("attached"))

    def save_notes(
        self, call_id: str, notes: str, part: int = 0, *, attached: bool = False
    ) -> None:
        row = notes_row(part)
        versions.forget(CALLS, call_id, row)
        # Sticky (a merge keeps it), one per call on its `notes` row: the activity may have an
        # annotation from now on, which shorter notes later remove.
        attached = attached or len(notes) > DESCRIPTION_MAX
        if attached and part:  # flagged before this part is stored: no write misses it
            versions.forget(CALLS, call_id, NOTES_ROW)
            self.store.upsert(
                CALLS, {"PartitionKey": call_id, "RowKey": NOTES_ROW, "attached": True}
            )
        entity: Entity = {"PartitionKey": call_id, "RowKey": row}
        for slot in range(NOTES_SLOTS):  # every slice, so a shorter text leaves none behind
            entity[_notes_property(slot)] = notes[slot * NOTES_SLICE : (slot + 1) * NOTES_SLICE]
        if attached and not part:
            entity["attached"] = True
        self.store.upsert(CALLS, entity)


def notes_row(part: int) -> str:
    """The row of one agent's part of a call's notes: `notes` (the first agent's), then
    `notes-1`, `notes-2`, ... (the part of the agent each completed transfer handed it to)."""
    return f"{NOTES_ROW}-{part}" if part else NOTES_ROW


def _if_not_modified() -> Any:
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified


class TableAgentStates:
    """One row per agent: the call it is busy with (the routing claim) and its latest call.
    Every change is carried into the agent's pool rosters (shared/adapters/pools.py)."""

    def __init__(self, store: TableStore, roster: Any = None) -> None:
        self.store = store
        self.roster = roster  # TablePoolRoster, or None (no pool index)

    def _change(self, agent_id: str, change: Callable[[Entity], Entity | None]) -> Entity:
        """ETag-guarded change of the agent row, starting from the version this invocation
        (or, a guess, this instance) read or wrote last; returns the row as it now is."""

        before: dict[str, Entity] = {}

        def revised(entity: Entity | None) -> Entity | None:
            before["row"] = dict(entity or {})
            new = change(dict(entity) if entity else {})
            # The revision orders the roster's copies of this row (never an older one last):
            # above the last one, and never below the clock, so a row deleted and made again
            # still comes after every copy of the old one.
            if new is None:
                return None
            rev = max(int((entity or {}).get("rev") or 0) + 1, int(time.time() * 1000))
            return {**new, "rev": f"{rev:015d}"}  # text: an Int32 column cannot hold it

        known = versions.guess(AGENTS, AGENT_PARTITION, agent_id)
        from_known = known is not None
        refused_with_roster = 0
        for attempt in range(CONFLICT_ATTEMPTS):
            if attempt and not from_known:
                conflict_pause(attempt)
            current = (
                known if from_known else self.store.get_with_etag(AGENTS, AGENT_PARTITION, agent_id)
            )
            entity, etag = current if current else (None, None)
            new = revised(dict(entity) if entity is not None else None)
            if new is None:
                if from_known:  # "nothing to do" is only believed of a fresh read
                    from_known = False
                    continue
                return entity or {}
            from_known = False
            new = {**new, "PartitionKey": AGENT_PARTITION, "RowKey": agent_id}
            op: tuple[Any, ...] = (
                ("create", new)
                if etag is None
                else (
                    "update",
                    new,
                    {"mode": "replace", "etag": etag, "match_condition": _if_not_modified()},
                )
            )
            # A change the roster holds goes into its rows in the agent's pools in the same
            # transaction (they share the partition); one it does not hold (the latest call,
            # forwarding, the endpoint) leaves them as they are: no read and no write of them.
            routing = self.roster is not None and routing_fields(
                agent_id, before.get("row") or {}
            ) != routing_fields(agent_id, new)
            # Refused twice with its roster rows (a roster row not as its member row says, which
            # no rereading mends): the agent row goes alone and the roster follows it, as a
            # refresh of its own that mends what it finds. The claim never waits on it.
            alone = refused_with_roster >= 2
            plan = self.roster.plan(agent_id, new) if routing and not alone else None
            try:
                results = self.store.transact(AGENTS, [op, *(plan.ops if plan else [])])
            except (ConcurrencyConflict, TransactionFailed):
                versions.forget(AGENTS, AGENT_PARTITION, agent_id)
                if plan is not None:
                    self.roster.failed(plan)
                    refused_with_roster += 1
                continue
            etag_now = str(results[0].get("etag", "")) if results else ""
            versions.remember(AGENTS, AGENT_PARTITION, agent_id, new, etag_now, shared=True)
            if plan is not None:
                self.roster.planned(plan, results[1:], agent_id, new)
            elif routing:
                self.roster.refresh(agent_id, new)
            return new
        raise RetriesExhausted(f"agent {agent_id}: still conflicting")

    def reindex(self, agent_id: str) -> None:
        """Write the agent's roster rows again from its row (its pools or skills changed)."""
        if self.roster is not None:
            found = self.store.get(AGENTS, AGENT_PARTITION, agent_id) or {}
            self.roster.refresh(agent_id, found)

    def claim(self, agent_id: str, call_id: str) -> bool:
        def take(entity: Entity) -> Entity | None:
            busy = entity.get("busy_call_id") or ""
            if busy:
                return None  # busy with another call, or already ours
            # The claim notes the call as the agent's latest too (every claim is followed by
            # note_call): the ring that follows writes no second version of the row.
            return {**_noted(entity, call_id), "busy_call_id": call_id}

        # The row returned is what was written, or what stopped the write: no read after it.
        row = self._change(agent_id, take)
        if row.get("busy_call_id") != call_id and self.roster is not None:
            self.roster.refresh(agent_id, row)  # a free row left by a crash goes now
        return row.get("busy_call_id") == call_id

    def release(self, agent_id: str, call_id: str, *, wrap_up_seconds: int = 0) -> bool:
        freed = {"value": False}
        now = datetime.now(UTC)
        wrap_until = now + timedelta(seconds=wrap_up_seconds) if wrap_up_seconds > 0 else ""

        def free(entity: Entity) -> Entity | None:
            freed["value"] = entity.get("busy_call_id") == call_id
            if not freed["value"]:
                return None
            return {**entity, "busy_call_id": "", "idle_since": now, "wrap_until": wrap_until}

        self._change(agent_id, free)
        return freed["value"]

    def states(self, agent_ids: tuple[str, ...]) -> dict[str, AgentState]:
        if not agent_ids:
            return {}
        params = {f"a{i}": a for i, a in enumerate(agent_ids)}
        rows = self.store.query_versions(
            # The SDK substitutes @names only between spaces: keep spaces around parentheses.
            AGENTS,
            "PartitionKey eq @pk and ( " + " or ".join(f"RowKey eq @{k}" for k in params) + " )",
            {"pk": AGENT_PARTITION, **params},
        )
        for row, etag in rows:  # a claim that follows writes without reading again
            versions.remember(AGENTS, AGENT_PARTITION, row["RowKey"], row, etag, shared=True)
        found = {r["RowKey"]: _agent_state(r["RowKey"], r) for r, _ in rows}
        return {a: found.get(a) or AgentState(a) for a in agent_ids}

    def state(self, agent_id: str) -> AgentState:
        # The version this invocation read or wrote (a claim just made) is as fresh as a read
        # would be; a write made from it is ETag-guarded all the same.
        known = versions.known(AGENTS, AGENT_PARTITION, agent_id)
        row = known[0] if known else self.store.get(AGENTS, AGENT_PARTITION, agent_id)
        return _agent_state(agent_id, row or {})

    def update(
        self, agent_id: str, change: Callable[[AgentState], AgentState | None]
    ) -> AgentState:
        now = datetime.now(UTC)

        def mutate(entity: Entity) -> Entity | None:
            old = _agent_state(agent_id, entity)
            new = change(old)
            if new is None:
                return None
            fields = _agent_fields(new)
            if takes_pool_calls(effective(new.availability, now)) and not takes_pool_calls(
                effective(old.availability, now)
            ):
                fields["idle_since"] = now  # idle from the moment it takes calls again
            return {**entity, **fields}

        # The Lunch index goes in before the status: a crash in between leaves an index row
        # the sweep checks and drops, never a Lunch the sweep cannot find.
        tentative = change(self.state(agent_id))
        if tentative is not None and tentative.availability.until is not None:
            self.store.upsert(
                AGENTS,
                {
                    "PartitionKey": TIMED_PARTITION,
                    "RowKey": agent_id,
                    "until": tentative.availability.until,
                },
            )

        state = _agent_state(agent_id, self._change(agent_id, mutate))
        # A timed status (Lunch) is indexed so the housekeeping sweep finds it without a scan.
        until = state.availability.until
        if until is not None:
            self.store.upsert(
                AGENTS, {"PartitionKey": TIMED_PARTITION, "RowKey": agent_id, "until": until}
            )
        else:
            self.store.delete(AGENTS, TIMED_PARTITION, agent_id)
        return state

    def claims(self) -> list[tuple[str, str]]:
        rows = self.store.query(
            AGENTS,
            # The roster's rows share the partition; their keys start with pools.ROSTER_MARK
            # ("~"), which sorts after every agent id.
            "PartitionKey eq @pk and RowKey lt @roster and busy_call_id ne @none",
            {"pk": AGENT_PARTITION, "roster": "~", "none": ""},
            select=["RowKey", "busy_call_id"],
        )
        return [(r["RowKey"], r["busy_call_id"]) for r in rows if r.get("busy_call_id")]

    def with_expired_status(self, now: datetime) -> list[str]:
        rows = self.store.query(AGENTS, "PartitionKey eq @pk", {"pk": TIMED_PARTITION})
        return [r["RowKey"] for r in rows if (as_utc(r.get("until")) or now) <= now]

    def note_call(self, agent_id: str, call_id: str, at: datetime) -> None:
        """The call is the agent's latest and heads its history (both on the agent row)."""
        # Noted already by this invocation's claim: the version it wrote says so (a later
        # call noted since would be newer, and is not to be overwritten either).
        known = versions.known(AGENTS, AGENT_PARTITION, agent_id)
        if known is None or known[0].get("latest_call_id") != call_id:
            self._change(
                agent_id,
                lambda e: None if e.get("latest_call_id") == call_id else _noted(e, call_id),
            )

    def latest_call(self, agent_id: str) -> str | None:
        return self.state(agent_id).latest_call_id

    def recent_calls(self, agent_id: str, limit: int) -> list[str]:
        row = self.store.get(AGENTS, AGENT_PARTITION, agent_id) or {}
        seen = _recent(row)[:limit]
        if len(seen) < limit:
            # Calls noted before the history moved onto the agent row (their `agentcalls`
            # rows, newest first: the RowKey counts down with time).
            for old in self.store.query(
                AGENT_CALLS,
                "PartitionKey eq @pk",
                {"pk": agent_id},
                select=["call_id"],
                top=limit * 2,
            ):
                if old["call_id"] not in seen:
                    seen.append(old["call_id"])
                if len(seen) >= limit:
                    break
        return seen


RECENT_CALLS_KEPT = 100  # the history's longest page (GET /api/me/calls?limit=)


def _recent(row: Entity) -> list[str]:
    try:
        found = json.loads(str(row.get("recent_calls") or "[]"))
    except ValueError:
        return []
    return [str(c) for c in found] if isinstance(found, list) else []


def _noted(row: Entity, call_id: str) -> Entity:
    """The agent row with `call_id` its latest call, first in its history: the history rides
    on the row every claim writes anyway, so noting a call costs no request of its own."""
    recent = [call_id, *(c for c in _recent(row) if c != call_id)][:RECENT_CALLS_KEPT]
    return {**row, "latest_call_id": call_id, "recent_calls": json.dumps(recent)}


def agent_state(agent_id: str, row: Entity) -> AgentState:
    return _agent_state(agent_id, row)


def routing_fields(agent_id: str, row: Entity) -> AgentState:
    """What the pool rosters copy of an agent row: its state without the columns they do not
    hold (the latest call, forwarding and the endpoint)."""
    return replace(
        _agent_state(agent_id, row), latest_call_id=None, forward_to=None, mobile_number=None
    )


def _agent_state(agent_id: str, row: Entity) -> AgentState:
    availability = AVAILABLE
    if row.get("status"):
        then_type = row.get("then_type")
        availability = Availability(
            row["status"],
            AvailabilityType(row.get("status_type", "Available")),
            until=as_utc(row.get("status_until") or None),
            then_status=row.get("then_status") or None,
            then_type=AvailabilityType(then_type) if then_type else None,
        )
    return AgentState(
        agent_id=agent_id,
        busy_call_id=row.get("busy_call_id") or None,
        availability=availability,
        inactive_pools=frozenset(json.loads(row.get("inactive_pools") or "[]")),
        forward_to=row.get("forward_to") or None,
        latest_call_id=row.get("latest_call_id") or None,
        wrap_until=as_utc(row.get("wrap_until") or None),
        idle_since=as_utc(row.get("idle_since") or None),
        mobile_number=row.get("mobile_number") or None,
    )


def _agent_fields(state: AgentState) -> Entity:
    """The agent row's availability, pool and forwarding columns (claims stay as they are)."""
    a = state.availability
    return {
        "status": a.status,
        "status_type": a.type.value,
        "status_until": a.until if a.until else "",
        "then_status": a.then_status or "",
        "then_type": a.then_type.value if a.then_type else "",
        "inactive_pools": json.dumps(sorted(state.inactive_pools)),
        "forward_to": state.forward_to or "",
        "mobile_number": state.mobile_number or "",
    }


class TableWaitingCalls:
    """A pool's waiting calls, oldest first: RowKey is arrival time then call id."""

    def __init__(self, store: TableStore) -> None:
        self.store = store

    @staticmethod
    def _key(call: Call, *, front: bool = False) -> str:
        # "0-" sorts before every arrival time: a caller back from an agent who dropped
        # (REJOIN_SECONDS) waits at the front of the queue.
        prefix = "0-" if front else ""
        return f"{prefix}{call.arrived_at.astimezone(UTC):%Y%m%dT%H%M%S%f}-{call.call_id}"

    def add(self, pool_id: str, call: Call) -> None:
        key = self._key(call, front=call.requeue_floor is not None)
        self.store.upsert(
            POOL_QUEUE, {"PartitionKey": pool_id, "RowKey": key, "call_id": call.call_id}
        )

    def remove(self, pool_id: str, call: Call) -> None:
        self.store.delete(POOL_QUEUE, pool_id, self._key(call))
        if call.requeue_floor is not None:
            self.store.delete(POOL_QUEUE, pool_id, self._key(call, front=True))

    def oldest(self, pool_id: str, limit: int) -> list[str]:
        rows = self.store.query(
            POOL_QUEUE, "PartitionKey eq @pk", {"pk": pool_id}, select=["call_id"], top=limit
        )
        return [r["call_id"] for r in rows]

    def arrivals(self, pool_id: str, limit: int) -> list[tuple[str, datetime]]:
        rows = self.store.query(
            POOL_QUEUE, "PartitionKey eq @pk", {"pk": pool_id}, select=["RowKey"], top=limit
        )
        found = []
        for row in rows:  # the key is ["0-" for the front,] the arrival time, the call id
            at, _, call_id = str(row["RowKey"]).removeprefix("0-").partition("-")
            found.append((call_id, datetime.strptime(at, "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)))
        return found

    def position(self, pool_id: str, call: Call, limit: int) -> int:
        """1 for the call at the front: the rows before its own, one read of keys (at most
        `limit`, so a caller further back counts as `limit + 1`)."""
        rows = self.store.query(
            POOL_QUEUE,
            "PartitionKey eq @pk and RowKey lt @mine",
            {"pk": pool_id, "mine": self._key(call, front=call.requeue_floor is not None)},
            select=["RowKey"],
            top=limit,
        )
        return sum(1 for _ in rows) + 1


class QueueDelayedChecks:
    """Checks that must run later: a queue message with a visibility delay."""

    CALLBACK_OFFERS = queues.CALLBACK_OFFERS

    def __init__(self, sender: Any) -> None:
        self.sender = sender

    def offer_callback_later(self, call_id: str, *, delay_seconds: int) -> None:
        self.sender.send(
            self.CALLBACK_OFFERS,
            messages.callback_offer_body(call_id),
            delay_seconds=delay_seconds,
        )

    def after_wrap_up(self, agent_id: str, *, delay_seconds: int) -> None:
        self.sender.send(
            queues.WRAP_UPS, messages.wrap_up_body(agent_id), delay_seconds=delay_seconds
        )

    def check_rejoin_later(self, call_id: str, *, delay_seconds: int) -> None:
        self.sender.send(
            queues.CALL_REJOINS, messages.rejoin_check_body(call_id), delay_seconds=delay_seconds
        )

    def check_queue_wait_later(
        self, call_id: str, check: str, n: int, *, delay_seconds: int
    ) -> None:
        self.sender.send(
            queues.QUEUE_WAITS,
            messages.queue_wait_body(call_id, check, n),
            delay_seconds=delay_seconds,
        )


class QueueEnrichment:
    """Schedules the delayed enrichment of a call's activity: the delay plus or minus the
    jitter (ENRICH_JITTER_SECONDS), so calls that end together do not reach Dataverse together."""

    QUEUE = queues.ENRICHMENT  # a test sends to a queue of its own

    def __init__(
        self,
        sender: Any,
        *,
        jitter_seconds: int = 0,
        randint: Callable[[int, int], int] | None = None,
    ) -> None:
        import random

        self.sender = sender
        self.jitter_seconds = jitter_seconds
        self._randint = randint or random.randint

    def schedule(self, call_id: str, *, delay_seconds: int, jitter: bool = True) -> None:
        """Enqueue `{"callId": ...}`; `jitter=False` keeps the delay exact (re-queues)."""
        spread = self.jitter_seconds if jitter else 0
        delay = delay_seconds + (self._randint(-spread, spread) if spread else 0)
        self.sender.send(self.QUEUE, messages.enrichment_body(call_id), delay_seconds=max(0, delay))


RECORDINGS = "recordings"


class TableRecordings:
    """RecordingFileStatusUpdated, kept by ACS server call id (it may come before we ask)."""

    def __init__(self, store: TableStore) -> None:
        self.store = store

    def save(
        self,
        server_call_id: str,
        recording_id: str,
        content_location: str,
        metadata_location: str | None,
        duration_ms: int | None,
        at: datetime,
    ) -> None:
        entity: Entity = {
            "PartitionKey": _safe_key(server_call_id),
            "RowKey": _safe_key(recording_id),
            "server_call_id": server_call_id,
            "recording_id": recording_id,
            "content_location": content_location,
            "received_at": at,
        }
        if metadata_location:
            entity["metadata_location"] = metadata_location
        if duration_ms is not None:
            entity["duration_ms"] = duration_ms
        self.store.upsert(RECORDINGS, entity, replace=True)

    def for_server_call(self, server_call_id: str) -> list[Entity]:
        return self.store.partition(RECORDINGS, _safe_key(server_call_id))


def _safe_key(value: str) -> str:
    """Table keys may not contain / \\ # ? or control characters."""
    return "".join("_" if ch in "/\\#?" or ord(ch) < 32 else ch for ch in value)[:512]


SESSION_PARTITION = "session"


class TableSessionLeases:
    """The web phone lease of each agent: `agents` table, PartitionKey "session"."""

    def __init__(self, store: TableStore) -> None:
        self.store = store

    @staticmethod
    def _lease(entity: Entity | None) -> Lease | None:
        if not entity or not entity.get("session_id"):
            return None
        started, expires = as_utc(entity["started_at"]), as_utc(entity["expires_at"])
        assert started is not None and expires is not None
        return Lease(entity["session_id"], started, expires)

    def swap(self, agent_id: str, decide: Callable[[Lease | None], Lease | None]) -> Lease | None:
        def mutate(entity: Entity | None) -> Entity | None:
            new = decide(self._lease(entity))
            if new is None:
                return None
            return {
                "session_id": new.session_id,
                "started_at": new.started_at,
                "expires_at": new.expires_at,
            }

        return self._lease(
            self.store.read_modify_write(AGENTS, SESSION_PARTITION, agent_id, mutate)
        )

    def remove(self, agent_id: str, session_id: str) -> None:
        self.store.read_modify_write(
            AGENTS,
            SESSION_PARTITION,
            agent_id,
            lambda e: {"session_id": ""} if e and e.get("session_id") == session_id else None,
        )
