"""Callbacks (§5): capture requests, import the open ones into D365 exactly once, list them.

Exactly once, without a distributed lock: a request is claimed (an ETag-guarded write) before
it is worked on, so overlapping runs split the work; the Phone Call's id is derived from the
request's, so a create that is repeated (after a crash before the close, or by a run whose
claim had expired) meets the first one and creates nothing; the close follows the create, so
a request is never closed without its Phone Call in D365.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.domain.callback_lists import CallbackList
from shared.domain.callbacks import (
    NAME_MAX,
    NOTE_MAX,
    CallbackActivity,
    CallbackRequest,
    CallbackSource,
    CallbackState,
    Claim,
    OpenRequest,
    WriteOutcome,
    WriteResult,
    callback_activity,
    request_id_for_call,
)
from shared.domain.calls import Call
from shared.domain.customers import CustomerRef
from shared.domain.numbers import normalise
from shared.errors import DependencyUnavailable, FieldError, NotFound, Unprocessable
from shared.views import (
    CallbackRequests,
    CallbackRequestView,
    OpenCallbackRequestView,
    extended,
)

log = logging.getLogger("callbacks")


# ---------------------------------------------------------------------- ports


class CallbackStore(Protocol):
    """Callback lists: every request, and the open ones with the import's claims."""

    def add(self, request: CallbackRequest) -> tuple[CallbackRequest, bool]:
        """Store a new request; (the stored one, False) when its id exists already."""
        ...

    def get(self, list_id: str, request_id: str) -> CallbackRequest | None: ...

    def open_requests(self, list_id: str, limit: int | None = None) -> list[OpenRequest]:
        """Open requests, longest waiting first, with their claims and versions."""
        ...

    def open_request(
        self, list_id: str, request_id: str, requested_at: datetime
    ) -> OpenRequest | None: ...

    def requests(
        self, list_id: str, state: CallbackState | None, limit: int
    ) -> list[CallbackRequest]: ...

    def claim(self, entries: Sequence[OpenRequest], claim: Claim) -> list[OpenRequest]:
        """Claim the entries still at the version read; return the ones now held."""
        ...

    def close(self, handled: Sequence[CallbackRequest]) -> None:
        """Store each request as handled and remove it from the open ones."""
        ...

    def release(self, entries: Sequence[OpenRequest], error: str | None, at: datetime) -> None:
        """Give claimed entries back (claimable from `at`), noting the failed attempt."""
        ...


class CallbackCrm(Protocol):
    """Dynamics 365 as the import needs it: batched, so requests grow with batches."""

    def identify(self, numbers: Sequence[str]) -> dict[str, tuple[CustomerRef, ...]]:
        """The contacts, accounts and leads of each number (one round trip)."""
        ...

    def write(self, activities: Sequence[CallbackActivity]) -> dict[str, WriteResult]:
        """Create each Phone Call with its queue item, atomically each (one round trip)."""
        ...


class CallbackSignals(Protocol):
    """The immediate path: tells a handler to import one request now."""

    def captured(self, request: CallbackRequest) -> None: ...


# ---------------------------------------------------------------------- values


@dataclass(frozen=True)
class CallbackOptions:
    lists: tuple[CallbackList, ...]
    pool_names: Mapping[str, str] = field(default_factory=dict)
    default_region: str = "FI"
    immediate: bool = True
    claim_seconds: int = 300
    batch_size: int = 100
    unresolved_parties: bool = False  # DATAVERSE_UNRESOLVED_PARTIES
    max_run_seconds: int = 240  # stop taking new batches after this; the next run goes on


@dataclass
class ImportSummary:
    """What one import run did (logged by the trigger)."""

    imported: int = 0  # Phone Calls created now
    repaired: int = 0  # already in D365 from an earlier run that did not close them; closed now
    failed: int = 0  # refused by Dataverse: left open with the error, retried by later runs
    busy: int = 0  # held by another run that is still alive
    left: int = 0  # not reached within this run's time budget
    interrupted: str | None = None  # Dataverse unavailable: the rest waits for a later run


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------- the service


class CallbackService:
    def __init__(
        self,
        *,
        store: CallbackStore,
        crm: CallbackCrm,
        signals: CallbackSignals,
        options: CallbackOptions,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.store, self.crm, self.signals = store, crm, signals
        self.options, self.clock = options, clock
        self._lists = {c.id: c for c in options.lists}

    # ------------------------------------------------------------------ capture

    def capture_from_call(self, call: Call, list_id: str, at: datetime) -> bool:
        """The call flow's port: the waiting caller pressed 1 (§5). One request per call."""
        customer = call.customer
        try:
            self.capture(
                list_id=list_id,
                number=call.customer_number,
                requested_at=at,
                pool_id=call.pool_id,
                source=CallbackSource.CALL,
                name=customer.name if customer else None,
                request_id=request_id_for_call(call.call_id),
            )
        except Unprocessable:
            return False  # e.g. a withheld number: nobody to call back
        return True

    def capture(
        self,
        *,
        list_id: str | None,
        number: str,
        requested_at: datetime,
        pool_id: str | None,
        source: str,
        name: str | None = None,
        note: str | None = None,
        request_id: str | None = None,
    ) -> CallbackRequest:
        """Store a callback request in its list (idempotent for a given `request_id`).

        Unprocessable when the list is unknown, the number is not a callable number or the
        name/note is too long. With the immediate path on and the list enabled, the request
        is also signalled for an import at once; if that signal fails, the timer imports it.
        """
        errors: list[FieldError] = []
        chosen = self._choose_list(list_id, errors)
        parsed = normalise(number or "", self.options.default_region)
        if not parsed.valid:
            errors.append(FieldError("number", "is not a valid phone number"))
        name = (name or "").strip() or None
        note = (note or "").strip() or None
        if name is not None and len(name) > NAME_MAX:
            errors.append(FieldError("name", f"is longer than {NAME_MAX} characters"))
        if note is not None and len(note) > NOTE_MAX:
            errors.append(FieldError("note", f"is longer than {NOTE_MAX} characters"))
        if errors or chosen is None:
            raise Unprocessable("; ".join(f"{e.field} {e.message}" for e in errors), errors=errors)
        request = CallbackRequest(
            request_id=request_id or str(uuid.uuid4()),
            list_id=chosen.id,
            number=parsed.value,
            requested_at=requested_at.astimezone(UTC),
            source=str(source),
            pool_id=pool_id,
            name=name,
            note=note,
        )
        stored, new = self.store.add(request)
        if new and self.options.immediate and chosen.enabled:
            try:
                self.signals.captured(stored)
            except Exception as exc:  # the request is stored: the timer is the safety net
                log.warning(
                    "callback %s: immediate import not signalled (%s)",
                    stored.request_id,
                    type(exc).__name__,
                )
        return stored

    def _choose_list(self, list_id: str | None, errors: list[FieldError]) -> CallbackList | None:
        if list_id:
            chosen = self._lists.get(list_id)
            if chosen is None:
                errors.append(FieldError("list", f"is not a callback list: {list_id!r}"))
            return chosen
        if len(self._lists) == 1:
            return next(iter(self._lists.values()))
        errors.append(FieldError("list", f"is required, one of {sorted(self._lists)}"))
        return None

    # ------------------------------------------------------------------ the import

    def import_open(self) -> ImportSummary:
        """The timer's run: every enabled list's open, unclaimed requests, in batches."""
        summary = ImportSummary()
        run_id = uuid.uuid4().hex
        started = self.clock()
        for callback_list in self.options.lists:
            if not callback_list.enabled:
                continue  # §5: the integration is off for this list; its requests stay open
            entries = self.store.open_requests(callback_list.id)
            now = self.clock()
            free = [e for e in entries if e.claimable(now)]
            summary.busy += len(entries) - len(free)
            for chunk in _chunks(free, self.options.batch_size):
                if (self.clock() - started).total_seconds() > self.options.max_run_seconds:
                    summary.left += len(chunk)
                    continue
                try:
                    self._import(callback_list, chunk, run_id, summary)
                except DependencyUnavailable as exc:
                    summary.interrupted = exc.detail
                    return summary
        return summary

    def import_one(self, list_id: str, request_id: str, requested_at: datetime) -> ImportSummary:
        """The immediate path: import one request now, unless it is done or being done.

        DependencyUnavailable propagates (the queue retries; the timer is the safety net).
        """
        summary = ImportSummary()
        callback_list = self._lists.get(list_id)
        if callback_list is None or not callback_list.enabled:
            return summary
        entry = self.store.open_request(list_id, request_id, requested_at)
        if entry is None:
            return summary  # handled already
        if not entry.claimable(self.clock()):
            summary.busy = 1  # another run holds it
            return summary
        self._import(callback_list, [entry], uuid.uuid4().hex, summary)
        return summary

    def _import(
        self,
        callback_list: CallbackList,
        entries: Sequence[OpenRequest],
        run_id: str,
        summary: ImportSummary,
    ) -> None:
        claim = Claim(run_id, self.clock() + timedelta(seconds=self.options.claim_seconds))
        claimed = self.store.claim(entries, claim)
        summary.busy += len(entries) - len(claimed)
        if not claimed:
            return
        try:
            candidates = self.crm.identify([e.request.number for e in claimed])
            activities = [
                callback_activity(
                    e.request,
                    candidates.get(e.request.number, ()),
                    callback_list=callback_list,
                    pool_name=self._pool_name(e.request.pool_id),
                    unresolved_parties=self.options.unresolved_parties,
                )
                for e in claimed
            ]
            results = self.crm.write(activities)
        except Exception as exc:
            # Nothing was closed; give the claims back so the next run need not wait for them.
            self._release(claimed, _reason(exc))
            raise
        handled: list[CallbackRequest] = []
        failed: dict[str, list[OpenRequest]] = {}
        now = self.clock()
        for entry, activity in zip(claimed, activities, strict=True):
            result = results.get(
                activity.activity_id, WriteResult(WriteOutcome.FAILED, "no result")
            )
            if result.outcome is WriteOutcome.FAILED:
                failed.setdefault(result.error or "failed", []).append(entry)
                summary.failed += 1
                continue
            if result.outcome is WriteOutcome.CREATED:
                summary.imported += 1
            else:
                summary.repaired += 1
            handled.append(entry.request.handled(now, candidates.get(entry.request.number, ())))
        # A crash here leaves Phone Calls whose requests are open and claimed: once the claim
        # expires, a run meets the existing activity ids (EXISTED) and closes the requests.
        self.store.close(handled)
        for error, entries_failed in failed.items():
            self._release(entries_failed, error)

    def _release(self, entries: Sequence[OpenRequest], error: str) -> None:
        try:
            self.store.release(entries, error, self.clock())
        except Exception as exc:  # the claims expire by themselves
            log.warning("callback claims not released (%s); they expire", type(exc).__name__)

    def _pool_name(self, pool_id: str | None) -> str | None:
        if not pool_id:
            return None
        return self.options.pool_names.get(pool_id, pool_id)

    # ------------------------------------------------------------------ the supervisors' view

    def requests(
        self, *, list_id: str | None, state: CallbackState | None, limit: int
    ) -> CallbackRequests:
        """Requests of one list (or all), open ones longest waiting first, at most `limit`."""
        if list_id is not None and list_id not in self._lists:
            raise NotFound(f"no callback list {list_id!r}")
        lists = [list_id] if list_id is not None else list(self._lists)
        views: list[CallbackRequestView] = []
        for lid in lists:
            if state in (None, CallbackState.OPEN) and len(views) < limit:
                open_entries = self.store.open_requests(lid, limit - len(views))
                views.extend(open_view(e) for e in open_entries)
            if state in (None, CallbackState.HANDLED) and len(views) < limit:
                handled = self.store.requests(lid, CallbackState.HANDLED, limit - len(views))
                handled.sort(key=lambda r: r.handled_at or r.requested_at, reverse=True)
                views.extend(request_view(r) for r in handled)
        return CallbackRequests(value=tuple(views[:limit]))


def _reason(exc: Exception) -> str:
    detail = getattr(exc, "detail", None) or str(exc)
    return f"{type(exc).__name__}: {detail}"[:500]


def request_view(request: CallbackRequest) -> CallbackRequestView:
    return CallbackRequestView(
        request_id=request.request_id,
        list_id=request.list_id,
        state=request.state,
        number=request.number,
        name=request.name,
        note=request.note,
        pool_id=request.pool_id,
        source=request.source,
        requested_at=request.requested_at,
        activity_id=request.activity_id,
        handled_at=request.handled_at,
        handled_note=request.handled_note,
        identification=request.identification,
        regarding=request.regarding,
    )


def open_view(entry: OpenRequest) -> OpenCallbackRequestView:
    return extended(
        request_view(entry.request),
        OpenCallbackRequestView,
        claimed_until=entry.claimed_until if entry.claimed_by else None,
        attempts=entry.attempts,
        last_error=entry.last_error,
    )
