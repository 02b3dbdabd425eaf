"""How the app reaches ACS: the resource's connection string (access key, HMAC-signed requests;
the local emulator), or, in Azure, its endpoint and a managed identity (Entra ID bearer tokens,
which Call Automation accepts: no key anywhere)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shared.adapters.managed_identity import managed_identity
from shared.errors import DependencyUnavailable, TelephonyError

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

    @classmethod
    def of(cls, value: str | AcsAccess) -> AcsAccess:
        return value if isinstance(value, AcsAccess) else cls(connection_string=value)

    @property
    def uses_identity(self) -> bool:
        return not self.connection_string

    def credential(self) -> Any:
        """`token_credential`, else the managed identity (shared/adapters/managed_identity.py)."""
        if self.token_credential is not None:
            return self.token_credential
        return managed_identity(self.client_id)

    def sdk_client(
        self, client_class: Any, *, timeout_seconds: int, ca_bundle: str | None = None
    ) -> Any:
        """An ACS SDK client (Identity, Email) for this resource: the app's managed identity in
        Azure, else the connection string; timeouts and the local CA as our other clients."""
        options: dict[str, Any] = {
            "connection_timeout": timeout_seconds,
            "read_timeout": timeout_seconds,
        }
        if ca_bundle:
            options["connection_verify"] = ca_bundle
        if self.uses_identity:
            return client_class(self.endpoint, self.credential(), **options)
        return client_class.from_connection_string(self.connection_string, **options)

    def bearer_token(self) -> str:
        return str(self.credential().get_token(ACS_SCOPE).token)


@contextmanager
def acs_errors(operation: str) -> Iterator[None]:
    """The ACS SDKs' exceptions as ours: throttling, 5xx and transport failures (no connection,
    or a connection dropped or timed out before the answer) are DependencyUnavailable (503);
    any other refusal a TelephonyError carrying ACS's status and code."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    try:
        yield
    except HttpResponseError as exc:
        status = exc.status_code
        if status in (429, 500, 502, 503, 504):
            raise DependencyUnavailable(f"ACS {operation} is unavailable ({status})") from exc
        raise TelephonyError(operation, status, exc.error.code if exc.error else None) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise DependencyUnavailable(f"ACS {operation}: service not reachable") from exc
