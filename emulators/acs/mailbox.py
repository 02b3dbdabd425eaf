"""The mails the ACS Email surface accepted (emulators/acs/email.py), shared with its controls."""

from __future__ import annotations

import threading
from typing import Any

from emulators.acs.delivery import now_iso


class Mailbox:
    """The mails the emulator accepted, and their operations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mails: list[dict[str, Any]] = []
        self._operations: dict[str, dict[str, Any]] = {}

    def accept(self, operation_id: str, message: dict[str, Any]) -> bool:
        """Record the mail; False for a repeated operation id (nothing new recorded)."""
        with self._lock:
            if operation_id in self._operations:
                return False
            self._operations[operation_id] = {"id": operation_id, "status": "Succeeded"}
            recipients = message.get("recipients") or {}
            content = message.get("content") or {}
            self._mails.append(
                {
                    "operationId": operation_id,
                    "receivedAt": now_iso(),
                    "senderAddress": message.get("senderAddress"),
                    "to": [r.get("address") for r in recipients.get("to") or []],
                    "cc": [r.get("address") for r in recipients.get("cc") or []],
                    "bcc": [r.get("address") for r in recipients.get("bcc") or []],
                    "subject": content.get("subject"),
                    "plainText": content.get("plainText"),
                    "html": content.get("html"),
                }
            )
            return True

    def operation(self, operation_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._operations.get(operation_id)
            return dict(found) if found else None

    def mails(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._mails]

    def reset(self) -> None:
        with self._lock:
            self._mails.clear()
            self._operations.clear()
