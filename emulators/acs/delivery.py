"""Event delivery like Event Grid and ACS do it: asynchronous, retried, optionally duplicated or
reordered, each attempt logged with the webhook's answer."""

from __future__ import annotations

import copy
import json
import queue
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import requests

from emulators.acs.tokens import CallbackSigner

# Event Grid dead-letters these at once instead of retrying them.
NO_RETRY_STATUSES = frozenset({400, 413})
# How long a held event waits for a successor to swap places with when reordering.
REORDER_WINDOW_SECONDS = 0.3


@dataclass(frozen=True)
class DeliverySettings:
    """How events go out. `duplicate` sends each event twice (`copies` times when set above 1),
    `reorder` swaps neighbours."""

    duplicate: bool = False
    copies: int = 1
    reorder: bool = False
    max_attempts: int = 4
    retry_delay_seconds: float = 0.2
    timeout_seconds: float = 15.0

    def to_json(self) -> dict[str, Any]:
        return {
            "duplicate": self.duplicate,
            "reorder": self.reorder,
            "copies": self.copies,
            "maxAttempts": self.max_attempts,
            "retryDelaySeconds": self.retry_delay_seconds,
            "timeoutSeconds": self.timeout_seconds,
        }


@dataclass(frozen=True)
class Outgoing:
    """One event to post: `kind` is "eventgrid" (Event Grid schema) or "callback" (CloudEvents)."""

    kind: str
    event_type: str
    event_id: str
    url: str | None
    body: list[dict[str, Any]]
    call_connection_id: str | None = None
    subscription: str = ""


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Deliverer:
    """A single background worker: in order by default; retries block the events behind them."""

    def __init__(self, *, verify: str, signer: CallbackSigner) -> None:
        self._verify = verify
        self._signer = signer
        self._queue: queue.Queue[tuple[int, Outgoing] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._settings = DeliverySettings()
        self._generation = 0
        self._outstanding = 0
        self._seq = 0
        self._stopping = threading.Event()
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, daemon=True, name="acs-delivery")
        self._thread.start()

    # -- control ------------------------------------------------------------------------------

    @property
    def settings(self) -> DeliverySettings:
        with self._lock:
            return self._settings

    def configure(self, **changes: Any) -> DeliverySettings:
        with self._lock:
            self._settings = replace(self._settings, **changes)
            return self._settings

    def enqueue(self, item: Outgoing) -> None:
        with self._lock:
            self._outstanding += 1
            generation = self._generation
        self._queue.put((generation, item))

    def idle(self) -> bool:
        with self._lock:
            return self._outstanding == 0

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._log)

    def reset(self) -> None:
        """Forget pending events and the log; an event mid-delivery finishes but is not logged."""
        with self._lock:
            self._generation += 1
            self._log.clear()
            self._settings = DeliverySettings()
            # Events of the old generation are skipped by the worker and no longer counted.
            self._outstanding = 0
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._session.close()

    def post_now(self, item: Outgoing, extra_headers: dict[str, str]) -> tuple[int, Any]:
        """One synchronous post (the subscription validation handshake); returns status, JSON."""
        assert item.url
        response = requests.post(
            item.url,
            data=json.dumps(item.body),
            headers={"Content-Type": "application/json", **extra_headers},
            timeout=self.settings.timeout_seconds,
            verify=self._verify,
        )
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return response.status_code, body

    # -- worker -------------------------------------------------------------------------------

    def _run(self) -> None:
        held: tuple[int, Outgoing] | None = None
        while not self._stopping.is_set():
            if held is not None:
                try:
                    entry = self._queue.get(timeout=REORDER_WINDOW_SECONDS)
                except queue.Empty:
                    self._deliver(*held)
                    held = None
                    continue
                if entry is None:
                    break
                # The newer event overtakes the one that was held back.
                self._deliver(*entry)
                self._deliver(*held)
                held = None
                continue
            entry = self._queue.get()
            if entry is None:
                break
            if self.settings.reorder:
                held = entry
                continue
            self._deliver(*entry)

    def _deliver(self, generation: int, item: Outgoing) -> None:
        try:
            with self._lock:
                current = generation == self._generation
                settings = self._settings
            if not current:
                return
            for copy_number in range(max(settings.copies, 2 if settings.duplicate else 1)):
                self._attempt_all(generation, item, settings, copy_number + 1)
        finally:
            with self._lock:
                if generation == self._generation:
                    self._outstanding -= 1

    def _attempt_all(
        self, generation: int, item: Outgoing, settings: DeliverySettings, copy_number: int
    ) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._seq += 1
            record: dict[str, Any] = {
                "seq": self._seq,
                "eventId": item.event_id,
                "eventType": item.event_type,
                "kind": item.kind,
                "target": item.url,
                "callConnectionId": item.call_connection_id,
                "copy": copy_number,
                "attempts": [],
                "delivered": False,
                "startedAt": now_iso(),
            }
            self._log.append(record)
        if not item.url:
            with self._lock:
                record["error"] = "no webhook configured"
            return
        body = json.dumps(item.body)
        for attempt in range(settings.max_attempts):
            with self._lock:
                if generation != self._generation:
                    return  # reset while retrying: the old world's events are dropped
            status: int | None = None
            try:
                response = self._session.post(
                    item.url,
                    data=body,
                    headers=self._headers(item, attempt),
                    timeout=settings.timeout_seconds,
                    verify=self._verify,
                )
                status = response.status_code
                outcome: int | str = status
            except requests.RequestException as exc:
                outcome = f"error: {type(exc).__name__}"
            with self._lock:
                record["attempts"].append(outcome)
                if status is not None and 200 <= status < 300:
                    record["delivered"] = True
            if status is not None and (200 <= status < 300 or status in NO_RETRY_STATUSES):
                return
            if attempt + 1 < settings.max_attempts and self._stopping.wait(
                settings.retry_delay_seconds * (2**attempt)
            ):
                return

    def _headers(self, item: Outgoing, attempt: int) -> dict[str, str]:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if item.kind == "eventgrid":
            headers.update(
                {
                    "aeg-event-type": "Notification",
                    "aeg-subscription-name": item.subscription,
                    "aeg-delivery-count": str(attempt),
                    "aeg-data-version": "1.0",
                    "aeg-metadata-version": "1",
                }
            )
        else:
            # A fresh token per attempt: a retry after a pause must not carry a stale one.
            headers["Authorization"] = f"Bearer {self._signer.mint()}"
        return headers
