"""Event delivery like Event Grid and ACS do it: asynchronous, retried, optionally duplicated or
reordered, each attempt logged with the webhook's answer."""

from __future__ import annotations

import copy
import json
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from emulators.acs.tokens import CallbackSigner

# Event Grid dead-letters these at once instead of retrying them.
NO_RETRY_STATUSES = frozenset({400, 413})
# How long a held event waits for a successor to swap places with when reordering.
REORDER_WINDOW_SECONDS = 0.3
# Deliveries in flight at once. Event Grid and ACS post events concurrently (one event per
# request, no documented cap, no order kept); 16 is what one subscription was seen to keep
# open against a slow webhook, and it is enough to make handlers of one call race.
DEFAULT_PARALLELISM = 16
MAX_PARALLELISM = 64


@dataclass(frozen=True)
class DeliverySettings:
    """How events go out. `parallelism` deliveries run at once (1: one at a time, in order);
    `duplicate` sends each event twice (`copies` times when set above 1), `reorder` swaps
    neighbours."""

    parallelism: int = DEFAULT_PARALLELISM
    duplicate: bool = False
    copies: int = 1
    reorder: bool = False
    max_attempts: int = 4
    retry_delay_seconds: float = 0.2
    timeout_seconds: float = 15.0

    def to_json(self) -> dict[str, Any]:
        return {
            "parallelism": self.parallelism,
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
    """A dispatcher thread hands events to `parallelism` delivery workers: concurrent and
    unordered as Event Grid is; with `parallelism` 1, in order, a retry blocking those behind."""

    def __init__(self, *, verify: str, signer: CallbackSigner) -> None:
        self._verify = verify
        self.verify = verify  # the CA bundle the emulator trusts (also for media downloads)
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
        # Connections enough for every worker (requests' default pool keeps 10).
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=MAX_PARALLELISM)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._pool = ThreadPoolExecutor(MAX_PARALLELISM, thread_name_prefix="acs-delivery")
        # Free worker slots: the dispatcher takes one before handing an event over.
        self._slots = threading.Semaphore(DEFAULT_PARALLELISM)
        self._slot_count = DEFAULT_PARALLELISM
        self._thread = threading.Thread(target=self._run, daemon=True, name="acs-delivery")
        self._thread.start()

    # -- control ------------------------------------------------------------------------------

    @property
    def settings(self) -> DeliverySettings:
        with self._lock:
            return self._settings

    def configure(self, **changes: Any) -> DeliverySettings:
        parallelism = changes.get("parallelism")
        if parallelism is not None and (
            not isinstance(parallelism, int) or not 1 <= parallelism <= MAX_PARALLELISM
        ):
            raise TypeError(f"parallelism must be a whole number from 1 to {MAX_PARALLELISM}")
        with self._lock:
            self._settings = replace(self._settings, **changes)
            settings = self._settings
        self._resize(settings.parallelism)
        return settings

    def _resize(self, parallelism: int) -> None:
        """Add or withdraw worker slots (a withdrawal waits for a delivery to finish)."""
        while True:
            with self._lock:
                if self._slot_count == parallelism:
                    return
                grow = self._slot_count < parallelism
                if grow:
                    self._slot_count += 1
            if grow:
                self._slots.release()
                continue
            self._slots.acquire()
            with self._lock:
                self._slot_count -= 1

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
        self._resize(DeliverySettings().parallelism)

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)
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
                    self._hand_over(held)
                    held = None
                    continue
                if entry is None:
                    break
                # The newer event overtakes the one that was held back.
                self._hand_over(entry, held)
                held = None
                continue
            entry = self._queue.get()
            if entry is None:
                break
            if self.settings.reorder:
                held = entry
                continue
            self._hand_over(entry)

    def _hand_over(self, *entries: tuple[int, Outgoing]) -> None:
        """Deliver `entries` one after the other on a free worker (waits for one)."""
        self._slots.acquire()

        def work() -> None:
            try:
                for entry in entries:
                    self._deliver(*entry)
            finally:
                self._slots.release()

        try:
            self._pool.submit(work)
        except RuntimeError:  # stopped meanwhile
            self._slots.release()

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
            started = time.monotonic()
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
                # How long the webhook took to answer (the latency a subscriber is judged by).
                record.setdefault("latencyMs", []).append(
                    round((time.monotonic() - started) * 1000, 1)
                )
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
