"""ACS Identity through azure-communication-identity: VoIP access tokens for agents' ACS users."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.adapters.acs_access import AcsAccess, acs_errors

if TYPE_CHECKING:
    from azure.communication.identity import CommunicationIdentityClient


class AcsIdentity:
    """One identity client per process, built on first use (the SDK import is not cheap)."""

    def __init__(
        self,
        connection: str | AcsAccess,
        *,
        ca_bundle: str | None = None,
        timeout_seconds: int = 15,
    ) -> None:
        self._access, self._ca_bundle = AcsAccess.of(connection), ca_bundle
        self._timeout = timeout_seconds
        self._client: CommunicationIdentityClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> CommunicationIdentityClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from azure.communication.identity import CommunicationIdentityClient

                    self._client = self._access.sdk_client(
                        CommunicationIdentityClient,
                        timeout_seconds=self._timeout,
                        ca_bundle=self._ca_bundle,
                    )
        return self._client

    def voip_token(self, communication_user_id: str) -> tuple[str, datetime]:
        """A VoIP-scoped token for an existing ACS user: (token, expires on)."""
        from azure.communication.identity import CommunicationUserIdentifier

        with acs_errors("issueAccessToken"):
            token = self.client.get_token(
                CommunicationUserIdentifier(communication_user_id), scopes=["voip"]
            )
        return str(token.token), parse_expiry(token.expires_on)


def parse_expiry(value: Any) -> datetime:
    """The SDK hands `expiresOn` through as the service's text (7 fractional digits)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = re.sub(r"(\.\d{6})\d+", r"\1", str(value)).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
