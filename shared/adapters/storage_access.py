"""How the app reaches Azure Storage: a connection string (Azurite, local runs) or, in Azure, the
service URIs and a managed identity, as the Functions host's identity-based connections do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.adapters.managed_identity import managed_identity


@dataclass(frozen=True)
class StorageAccess:
    """One of: `connection_string`, or `table_uri` + `queue_uri` (+ `blob_uri`, the prompts)
    reached with a managed identity (`client_id` names a user-assigned one; empty: the
    system-assigned identity)."""

    connection_string: str = ""
    table_uri: str = ""
    queue_uri: str = ""
    blob_uri: str = ""
    client_id: str = ""
    token_credential: Any = None  # any azure-core TokenCredential; None: the managed identity

    @classmethod
    def of(cls, value: str | StorageAccess) -> StorageAccess:
        return value if isinstance(value, StorageAccess) else cls(connection_string=value)

    @property
    def uses_identity(self) -> bool:
        return not self.connection_string

    def credential(self) -> Any:
        """`token_credential`, else the managed identity (shared/adapters/managed_identity.py)."""
        if self.token_credential is not None:
            return self.token_credential
        return managed_identity(self.client_id)

    def table_service(self, **options: Any) -> Any:
        from azure.data.tables import TableServiceClient

        if self.uses_identity:
            return TableServiceClient(self.table_uri, credential=self.credential(), **options)
        return TableServiceClient.from_connection_string(self.connection_string, **options)

    def queue_service(self, **options: Any) -> Any:
        from azure.storage.queue import QueueServiceClient

        if self.uses_identity:
            return QueueServiceClient(self.queue_uri, credential=self.credential(), **options)
        return QueueServiceClient.from_connection_string(self.connection_string, **options)

    def blob_service(self, **options: Any) -> Any:
        from azure.storage.blob import BlobServiceClient

        if self.uses_identity:
            return BlobServiceClient(self.blob_uri, credential=self.credential(), **options)
        return BlobServiceClient.from_connection_string(self.connection_string, **options)
