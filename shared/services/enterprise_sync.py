"""Enterprise calls (§4): Teams calls, notified by Graph as they end (and read from the PSTN
call log on a catch-up timer), and call records pushed by other systems, become Phone Call
activities: once each, and not when the web phone has already logged the call."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.domain.enterprise_calls import (
    TEAMS_SOURCE,
    CrmView,
    EnterpriseActivity,
    EnterpriseCall,
    LoggedCall,
    Outcome,
    Rules,
    Screened,
    Skipped,
    UnreadableRecord,
    WriteResult,
    WriteStatus,
    decide,
    parse_pushed_calls,
    screen,
)
from shared.domain.enterprise_users import UserMap
from shared.errors import DependencyUnavailable, FieldError, Unprocessable
from shared.views import PushReport, RecordResult, SyncSummary, SyncWindow, to_json

log = logging.getLogger("enterprise_sync")
GRAPH_MAX_RANGE = timedelta(days=89)  # getPstnCalls refuses a range over 90 days
FIRST_RUN_LOOKBACK = timedelta(days=1)  # with no watermark yet


# ---------------------------------------------------------------------- ports


class CallRecordSource(Protocol):
    """Microsoft Graph's Teams PSTN call log."""

    def pstn_call_pages(
        self, start: datetime, end: datetime
    ) -> Iterable[list[EnterpriseCall | UnreadableRecord]]:
        """Calls that started in [start, end], a page at a time; raises if Graph fails."""
        ...

    def call_record(self, record_id: str) -> EnterpriseCall | UnreadableRecord | None:
        """One call record (with its sessions) as a call; None if Graph does not have it."""
        ...


class EnterpriseCrm(Protocol):
    """Dataverse, batched: requests grow with batches of records, not with records."""

    def look_up(
        self,
        wanted: Sequence[tuple[str, str]],
        since: datetime,
        until: datetime,
        *,
        accounts_and_leads: bool,
    ) -> CrmView:
        """Customers of each number, and the Phone Calls of (owner, number) pairs that started
        in [since, until]."""
        ...

    def create_activities(self, activities: Sequence[EnterpriseActivity]) -> dict[str, WriteResult]:
        """Create (and complete) each activity; a result per activity id."""
        ...


class SyncState(Protocol):
    """Markers of settled source records, the Teams watermark, the last run."""

    def processed(self, calls: Sequence[EnterpriseCall]) -> dict[str, str]:
        """Activity id -> earlier outcome, for the calls settled before."""
        ...

    def settle(self, settled: Sequence[tuple[EnterpriseCall, str]], at: datetime) -> None: ...

    def exclusive(self, source: str) -> AbstractContextManager[None]:
        """Held from the already-logged check to the create, so two paths that know one call
        under two ids (notification and poll) cannot both create it."""
        ...

    def watermark(self, source: str) -> datetime | None: ...

    def advance_watermark(self, source: str, to: datetime) -> None: ...

    def save_run(self, source: str, summary: dict[str, Any], at: datetime) -> None: ...


# ---------------------------------------------------------------------- results


@dataclass(frozen=True)
class Decision:
    """What became of one source record."""

    call_id: str
    outcome: Outcome
    activity_id: str | None = None  # the activity that holds the call, when there is one
    detail: str = ""  # e.g. the earlier outcome of a duplicate, Dataverse's refusal
    user: str | None = None  # the record's user (id, else email), for the log

    def result(self, index: int) -> RecordResult:
        return RecordResult(
            index=index,
            id=self.call_id,
            outcome=self.outcome,
            activity_id=self.activity_id or None,
            detail=self.detail or None,
        )


@dataclass(frozen=True)
class SyncReport:
    source: str
    decisions: tuple[Decision, ...]
    window: tuple[datetime, datetime] | None = None

    @property
    def counts(self) -> dict[str, int]:
        counts = {o.value: 0 for o in Outcome}
        for d in self.decisions:
            counts[d.outcome.value] += 1
        return counts

    def summary(self) -> SyncSummary:
        unmapped = sorted(
            {d.user for d in self.decisions if d.outcome is Outcome.UNMAPPED_USER and d.user}
        )
        window = self.window
        return SyncSummary(
            source=self.source,
            records=len(self.decisions),
            counts=self.counts,
            unmapped_users=tuple(unmapped[:20]),
            window=(
                SyncWindow(start=window[0].isoformat(), end=window[1].isoformat())
                if window
                else None
            ),
        )


@dataclass(frozen=True)
class PushResult:
    """The answer to a push: a result per valid record (by its index) and the field errors of
    the malformed ones."""

    label: str
    received: int
    results: tuple[tuple[int, Decision], ...]
    errors: tuple[FieldError, ...] = field(default=())

    def report(self) -> PushReport:
        counted = SyncReport(self.label, tuple(d for _, d in self.results))
        return PushReport(
            source=self.label,
            received=self.received,
            malformed=len({e.field.split(".")[0] for e in self.errors}),
            counts=counted.counts,
            results=tuple(d.result(i) for i, d in self.results),
        )


# ---------------------------------------------------------------------- the use case


@dataclass(frozen=True)
class SyncOptions:
    rules: Rules
    overlap_seconds: int = 86400


class EnterpriseSync:
    def __init__(
        self,
        *,
        call_records: CallRecordSource,
        crm: EnterpriseCrm,
        state: SyncState,
        users: UserMap,
        options: SyncOptions,
    ) -> None:
        self.call_records, self.crm, self.state = call_records, crm, state
        self.users, self.options = users, options

    def sync_teams(self, now: datetime, *, since: datetime | None = None) -> SyncReport:
        """Read Graph from the watermark (less the safety margin) to now, page by page; the
        watermark moves only when every page was read and every record settled or refused.
        `since` reaches further back (a catch-up after notifications were lost)."""
        start = self.window_start(now)
        if since is not None:
            start = max(min(start, since), now - GRAPH_MAX_RANGE)
        decisions: list[Decision] = []
        for page in self.call_records.pstn_call_pages(start, now):
            decisions.extend(self.process(page, now))
        report = SyncReport(TEAMS_SOURCE, tuple(decisions), (start, now))
        self.state.advance_watermark(TEAMS_SOURCE, now)
        summary = to_json(report.summary())
        self.state.save_run(TEAMS_SOURCE, summary, now)
        log.info(json.dumps({"event": "enterpriseCallSync", **summary}))
        return report

    def window_start(self, now: datetime) -> datetime:
        """The watermark less the safety margin; the very first run reaches back a day (the
        calls before the app was set up), never further than Graph's range allows."""
        overlap = timedelta(seconds=self.options.overlap_seconds)
        synced_to = self.state.watermark(TEAMS_SOURCE)
        if synced_to is None:
            return now - max(overlap, FIRST_RUN_LOOKBACK)
        start = (synced_to if synced_to < now else now) - overlap
        return max(start, now - GRAPH_MAX_RANGE)

    def import_call_record(self, record_id: str, now: datetime) -> Decision:
        """The notification path: fetch one call record and decide it like a polled one (the
        same rules, markers and already-logged check). Raises DependencyUnavailable when
        Graph does not have the record (yet): the queue tries again, the poll catches up."""
        call = self.call_records.call_record(record_id)
        if call is None:
            raise DependencyUnavailable(f"Graph has no call record {record_id} (yet)")
        [decision] = self.process([call], now)
        log.info(
            json.dumps(
                {
                    "event": "enterpriseCallNotified",
                    "callRecord": record_id,
                    "outcome": decision.outcome.value,
                    "activityId": decision.activity_id,
                }
            )
        )
        return decision

    def import_pushed(self, data: Any, now: datetime) -> PushResult:
        """Records pushed by another system (docs/enterprise-calls.md): the valid ones follow
        the same rules as Teams calls even when others in the request are malformed."""
        pushed = parse_pushed_calls(data)
        if not pushed.source:
            raise Unprocessable(
                "; ".join(f"{e.field} {e.message}".strip() for e in pushed.errors),
                errors=list(pushed.errors),
            )
        decisions = self.process([c for _, c in pushed.calls], now) if pushed.calls else []
        results = tuple((i, d) for (i, _), d in zip(pushed.calls, decisions, strict=True))
        report = SyncReport(pushed.source, tuple(decisions))
        log.info(
            json.dumps(
                {
                    "event": "enterpriseCallPush",
                    **to_json(report.summary()),
                    "malformed": len(pushed.errors),
                }
            )
        )
        return PushResult(pushed.label, pushed.received, results, pushed.errors)

    def process(
        self, items: Sequence[EnterpriseCall | UnreadableRecord], now: datetime
    ) -> list[Decision]:
        """Decide every record, in order. Dataverse is asked once for all lookups and once per
        few hundred activities; settled records get a marker so a re-read costs no Dataverse
        request. Raises DependencyUnavailable (after settling the rest) if Dataverse was
        throttling, so the caller tries again."""
        decisions: dict[int, Decision] = {}
        readable: list[tuple[int, EnterpriseCall]] = []
        first_of: set[str] = set()
        for i, item in enumerate(items):
            if isinstance(item, UnreadableRecord):
                decisions[i] = Decision(item.call_id, Outcome.UNREADABLE, detail=item.problem)
            elif item.activity_id in first_of:  # the same record twice in one read or push
                decisions[i] = _decision(item, Outcome.DUPLICATE, detail="repeated in this batch")
            else:
                first_of.add(item.activity_id)
                readable.append((i, item))

        earlier = self.state.processed([c for _, c in readable]) if readable else {}
        settled: list[tuple[EnterpriseCall, str]] = []
        screened: list[tuple[int, Screened]] = []
        for i, call in readable:
            if call.activity_id in earlier:
                before = earlier[call.activity_id]
                decisions[i] = _decision(
                    call,
                    Outcome.DUPLICATE,
                    activity_id=call.activity_id if before == Outcome.IMPORTED else None,
                    detail=f"already processed: {before}",
                )
                continue
            result = screen(call, self.users, self.options.rules)
            if isinstance(result, Outcome):
                decisions[i] = _decision(call, result)
                settled.append((call, result.value))
            else:
                screened.append((i, result))

        with ExitStack() as held:
            for source in sorted({s.call.source for _, s in screened}):
                held.enter_context(self.state.exclusive(source))
            activities = self._decide_with_crm(screened, decisions, settled)
            retry = self._write(activities, decisions, settled) if activities else False
            if settled:
                self.state.settle(settled, now)
        if retry:
            raise DependencyUnavailable(
                "Dataverse did not take every activity; those records are tried again"
            )
        return [decisions[i] for i in sorted(decisions)]

    def _write(
        self,
        activities: Sequence[tuple[int, EnterpriseActivity]],
        decisions: dict[int, Decision],
        settled: list[tuple[EnterpriseCall, str]],
    ) -> bool:
        """Create the activities in batches; True if Dataverse asked us to come back later."""
        written = self.crm.create_activities([a for _, a in activities])
        retry = False
        for i, made in activities:
            call = made.call
            write = written.get(call.activity_id, WriteResult(WriteStatus.RETRY))
            if write.status is WriteStatus.CREATED:
                decisions[i] = _decision(call, Outcome.IMPORTED, activity_id=call.activity_id)
            elif write.status is WriteStatus.EXISTS:
                decisions[i] = _decision(
                    call,
                    Outcome.DUPLICATE,
                    activity_id=call.activity_id,
                    detail="already in Dataverse",
                )
            else:
                retry = retry or write.status is WriteStatus.RETRY
                decisions[i] = _decision(call, Outcome.FAILED, detail=write.detail)
                log.warning(
                    json.dumps(
                        {
                            "event": "enterpriseCallRefused",
                            "source": call.source,
                            "callId": call.call_id,
                            "detail": write.detail,
                        }
                    )
                )
                continue
            settled.append((call, Outcome.IMPORTED.value))  # the activity exists
        return retry

    def _decide_with_crm(
        self,
        screened: Sequence[tuple[int, Screened]],
        decisions: dict[int, Decision],
        settled: list[tuple[EnterpriseCall, str]],
    ) -> list[tuple[int, EnterpriseActivity]]:
        if not screened:
            return []
        rules = self.options.rules
        margin = timedelta(seconds=rules.match_margin_seconds)
        starts = [s.call.started_at for _, s in screened]
        view = self.crm.look_up(
            [(s.owner_id, s.number) for _, s in screened],
            min(starts) - margin,
            max(starts) + margin,
            accounts_and_leads=rules.include_accounts_leads,
        )
        activities: list[tuple[int, EnterpriseActivity]] = []
        # Calls accepted earlier in this batch count as logged: a twin pushed twice is one call.
        logged = list(view.logged)
        for i, s in screened:
            result = decide(s, view.customers.get(s.number, ()), logged, rules)
            if isinstance(result, Skipped):
                decisions[i] = _decision(s.call, result.outcome, activity_id=result.activity_id)
                # A twin with this record's own id is its activity: an earlier import.
                kept = Outcome.IMPORTED if result.outcome is Outcome.DUPLICATE else result.outcome
                settled.append((s.call, kept.value))
            else:
                activities.append((i, result))
                logged.append(
                    LoggedCall(s.call.activity_id, s.owner_id, s.number, s.call.started_at)
                )
        return activities


def _decision(
    call: EnterpriseCall, outcome: Outcome, *, activity_id: str | None = None, detail: str = ""
) -> Decision:
    return Decision(
        call.call_id, outcome, activity_id, detail, call.user_id or call.user_email or None
    )
