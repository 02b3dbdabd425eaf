"""How the app reaches ACS: the resource's connection string (access key, HMAC-signed requests;
the local emulator), or, in Azure, its endpoint and a managed identity (Entra ID bearer tokens,
which Call Automation accepts: no key anywhere)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

# The scope the ACS SDKs ask Entra ID for (the double slash is theirs).
ACS_SCOPE = "https://communication.azure.com//.default"


@dataclass(frozen=True)
class AcsAccess:
    """One of: `connection_string`, or `endpoint` reached with a managed identity (`client_id`
    names a user-assigned one; `token_credential` replaces it, e.g. in tests)."""

    connection_string: str = ""
    endpoint: str = ""
    client_id: str = ""
    token_credential: Any = None
    _credential: list[Any] = field(default_factory=list, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @classmethod
    def of(cls, value: str | AcsAccess) -> AcsAccess:
        return value if isinstance(value, AcsAccess) else cls(connection_string=value)

    @property
    def uses_identity(self) -> bool:
        return not self.connection_string

    def credential(self) -> Any:
        """The token credential (azure-identity is imported only here, on first use)."""
        if self.token_credential is not None:
            return self.token_credential
        with self._lock:
            if not self._credential:
                from azure.identity import ManagedIdentityCredential

                self._credential.append(ManagedIdentityCredential(client_id=self.client_id or None))
            return self._credential[0]

    def bearer_token(self) -> str:
        return str(self.credential().get_token(ACS_SCOPE).token)
