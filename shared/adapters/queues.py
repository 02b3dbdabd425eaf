"""Storage Queues: the host's base64 encoding, delayed messages, queues created on first use."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import TYPE_CHECKING, Any

from shared.adapters.storage_access import StorageAccess

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueServiceClient


class QueueSender:
    """Sends messages the Functions queue trigger can read (base64 text)."""

    def __init__(
        self,
        connection: str | StorageAccess,
        *,
        timeout_seconds: int = 10,
        retry_total: int | None = None,
        pool_size: int = 10,
    ) -> None:
        self._access = StorageAccess.of(connection)
        self._pool_size = pool_size
        self._timeout = timeout_seconds
        # None keeps the SDK's retry policy; probes pass 0 to answer fast.
        self._retry: dict[str, Any] = {} if retry_total is None else {"retry_total": retry_total}
        self._service: QueueServiceClient | None = None
        self._clients: dict[str, QueueClient] = {}
        self._lock = threading.Lock()

    @property
    def service(self) -> QueueServiceClient:
        if self._service is None:
            from shared.adapters.http_pool import pooled_session

            self._service = self._access.queue_service(
                session=pooled_session(self._pool_size),
                connection_timeout=self._timeout,
                read_timeout=self._timeout,
                **self._retry,
            )
        return self._service

    def queue(self, name: str) -> QueueClient:
        client = self._clients.get(name)
        if client is not None:
            return client
        with self._lock:
            if name not in self._clients:
                from azure.core.exceptions import ResourceExistsError
                from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy

                client = self.service.get_queue_client(
                    name,
                    message_encode_policy=TextBase64EncodePolicy(),
                    message_decode_policy=TextBase64DecodePolicy(),
                )
                with contextlib.suppress(ResourceExistsError):
                    client.create_queue()
                self._clients[name] = client
            return self._clients[name]

    def send(self, queue: str, body: str | dict[str, Any], *, delay_seconds: int = 0) -> str:
        """Enqueue `body` (a dict is sent as JSON), invisible for `delay_seconds`; its id."""
        text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        sent = self.queue(queue).send_message(text, visibility_timeout=delay_seconds or None)
        return str(sent.id)

    def ping(self) -> None:
        """Reachability probe."""
        self.service.get_service_properties()
