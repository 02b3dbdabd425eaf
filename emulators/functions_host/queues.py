"""Queue triggers: poll Storage like the host's queue listener (batches, back-off, poison queue)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import random
import threading
import time
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient
from azure.storage.queue import QueueMessage as StorageMessage

from .config import HostConfigError, QueueOptions
from .invoker import InvocationFailed, Invoker
from .loader import FunctionSpec, QueueTrigger

log = logging.getLogger("functions_host")

# While a message is being processed it stays invisible this long (the host uses 10 minutes).
PROCESSING_VISIBILITY_SECONDS = 600
# The listener's shortest polling interval (QueuePollingIntervals.Minimum in the SDK).
MIN_POLLING_SECONDS = 0.1
# Prefixed to the listener's User-Agent, so a request count can tell the host from the app.
LISTENER_USER_AGENT = "functions-host-queue-listener"


def _client(connection_string: str, queue: str) -> QueueClient:
    # No encode/decode policy: the raw text is kept, decoded here and copied as-is to poison.
    return QueueClient.from_connection_string(
        connection_string,
        queue,
        connection_timeout=5,
        read_timeout=15,
        retry_total=1,
        user_agent=LISTENER_USER_AGENT,
    )


def _create(client: QueueClient) -> None:
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()


class QueuePoller:
    """One queue trigger: a polling thread plus a thread per message in flight."""

    def __init__(
        self, spec: FunctionSpec, invoker: Invoker, options: QueueOptions, stop: threading.Event
    ) -> None:
        assert isinstance(spec.trigger, QueueTrigger)
        self.spec = spec
        self.trigger: QueueTrigger = spec.trigger
        self.options = options
        self._invoker = invoker
        self._stop = stop
        self.poison_name = f"{self.trigger.queue_name}-poison"
        try:
            self._queue = _client(self.trigger.connection_string, self.trigger.queue_name)
            self._poison = _client(self.trigger.connection_string, self.poison_name)
        except ValueError as exc:
            raise HostConfigError(
                f"Function '{spec.name}': the connection setting "
                f"'{self.trigger.connection_name}' is not a valid storage connection string ({exc})"
            ) from exc
        self._poison_ready = False
        self._in_flight = 0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"queue-{spec.name}")

    def prepare(self, timeout: float) -> None:
        """Create the queue if missing; retry briefly (Storage may still be starting)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                _create(self._queue)
                return
            except AzureError as exc:
                if time.monotonic() >= deadline or self._stop.is_set():
                    log.warning(
                        "Queue '%s' could not be created yet (%s); the listener will keep trying",
                        self.trigger.queue_name,
                        type(exc).__name__,
                    )
                    return
                self._stop.wait(0.25)

    def start(self) -> None:
        self._thread.start()

    def drain(self, timeout: float) -> bool:
        """Wait (bounded) for in-flight messages to finish; True when none is left."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _receive(self) -> list[StorageMessage]:
        n = self.options.batch_size
        return list(
            self._queue.receive_messages(
                max_messages=n,
                messages_per_page=n,
                visibility_timeout=PROCESSING_VISIBILITY_SECONDS,
            )
        )

    def _run(self) -> None:
        try:
            self._poll_loop()
        except Exception:  # a bug here must be visible, not a listener that silently stops
            log.exception("Queue listener '%s' stopped unexpectedly", self.trigger.queue_name)

    def _poll_loop(self) -> None:
        delay = MIN_POLLING_SECONDS
        maximum = max(self.options.max_polling_interval.total_seconds(), MIN_POLLING_SECONDS)
        failing = False
        while not self._stop.is_set():
            with self._cond:
                # A new batch is fetched only when in-flight work drops to newBatchThreshold.
                if self._in_flight > self.options.new_batch_threshold:
                    self._cond.wait(0.1)
                    continue
            try:
                messages = self._receive()
                if failing:
                    log.info("Queue '%s' is reachable again", self.trigger.queue_name)
                    failing = False
            except AzureError as exc:
                if not failing:
                    log.warning(
                        "Polling queue '%s' failed: %s",
                        self.trigger.queue_name,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    )
                    failing = True
                with contextlib.suppress(AzureError):
                    _create(self._queue)
                messages = []
            if messages:
                delay = MIN_POLLING_SECONDS
                for message in messages:
                    with self._cond:
                        self._in_flight += 1
                    threading.Thread(
                        target=self._process,
                        args=(message,),
                        daemon=True,
                        name=f"queue-{self.spec.name}-{message.id[:8]}",
                    ).start()
                continue
            # Empty: randomized exponential back-off up to maxPollingInterval.
            self._stop.wait(delay)
            delay = min(maximum, delay * 2 * random.uniform(0.8, 1.2))

    def _decode(self, raw: str) -> bytes:
        if self.options.message_encoding == "none":
            return raw.encode("utf-8")
        return base64.b64decode(raw.encode("ascii"), validate=True)

    def _input(self, message: StorageMessage, body: bytes) -> Any:
        if self.trigger.data_type == "str":
            return body.decode("utf-8")
        if self.trigger.data_type == "bytes":
            return body
        return QueueMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )

    def _process(self, message: StorageMessage) -> None:
        try:
            self._handle(message)
        except AzureError as exc:
            # The message stays invisible until its processing visibility ends, then comes back.
            log.error(
                "Queue '%s': completing message %s failed: %s",
                self.trigger.queue_name,
                message.id,
                exc,
            )
        except Exception:
            log.exception(
                "Queue '%s': unexpected error with message %s", self.trigger.queue_name, message.id
            )
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _handle(self, message: StorageMessage) -> None:
        raw = str(message.content or "")
        count = int(message.dequeue_count or 0)
        try:
            body = self._decode(raw)
            value = self._input(message, body)
        except (binascii.Error, UnicodeError, ValueError) as exc:
            log.error(
                "Queue '%s': message %s is not valid %s (%s)",
                self.trigger.queue_name,
                message.id,
                self.options.message_encoding,
                exc,
            )
            self._move_to_poison(message, raw, "it cannot be decoded")
            return
        if count > self.options.max_dequeue_count:
            # Already past the limit (e.g. a host died mid-run): poison without running again.
            self._move_to_poison(message, raw, self._limit_reason())
            return
        try:
            self._invoker.invoke(
                self.spec, value, f"New queue message detected on '{self.trigger.queue_name}'."
            )
        except InvocationFailed:
            if count >= self.options.max_dequeue_count:
                self._move_to_poison(message, raw, self._limit_reason())
            else:
                self._queue.update_message(
                    message.id,
                    message.pop_receipt,
                    visibility_timeout=int(self.options.visibility_timeout.total_seconds()),
                )
            return
        self._queue.delete_message(message.id, message.pop_receipt)

    def _limit_reason(self) -> str:
        return f"it has reached MaxDequeueCount of {self.options.max_dequeue_count}"

    def _move_to_poison(self, message: StorageMessage, raw: str, reason: str) -> None:
        log.warning(
            "Message %s on '%s': %s. Moving message to queue '%s'.",
            message.id,
            self.trigger.queue_name,
            reason,
            self.poison_name,
        )
        if not self._poison_ready:
            _create(self._poison)
            self._poison_ready = True
        self._poison.send_message(raw)
        self._queue.delete_message(message.id, message.pop_receipt)
