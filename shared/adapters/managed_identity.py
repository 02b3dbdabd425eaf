"""The app's managed identity as an azure-core TokenCredential: one per client id per process,
shared by every client that reaches Azure with it (azure-identity is imported on first use)."""

from __future__ import annotations

import threading
from typing import Any

_credentials: dict[str, Any] = {}
_lock = threading.Lock()


def managed_identity(client_id: str = "") -> Any:
    """The ManagedIdentityCredential of `client_id` (a user-assigned identity), or of the
    system-assigned identity when it is empty; built once, then reused."""
    with _lock:
        if client_id not in _credentials:
            from azure.identity import ManagedIdentityCredential

            _credentials[client_id] = ManagedIdentityCredential(client_id=client_id or None)
        return _credentials[client_id]
