"""The pools' uploaded prompts: the audio in Blob Storage (container `prompts`, one blob per
prompt), the metadata in Table Storage (`prompts`: a pool's prompts in one partition;
docs/storage.md)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from shared.adapters.storage_access import StorageAccess
from shared.adapters.tables import ConcurrencyConflict, Entity, TableStore
from shared.domain.moments import as_utc
from shared.domain.prompts import StoredPrompt
from shared.errors import DependencyUnavailable

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient, ContainerClient

PROMPTS = "prompts"  # the table and the blob container


class BlobStore:
    """One BlobServiceClient per process, built on first use; containers created on first use."""

    def __init__(
        self, connection: str | StorageAccess, *, timeout_seconds: int = 15, pool_size: int = 10
    ) -> None:
        self._access = StorageAccess.of(connection)
        self._timeout, self._pool_size = timeout_seconds, pool_size
        self._service: BlobServiceClient | None = None
        self._containers: dict[str, ContainerClient] = {}
        self._lock = threading.Lock()

    def _container(self, name: str) -> ContainerClient:
        client = self._containers.get(name)
        if client is not None:
            return client
        with self._lock:
            if name not in self._containers:
                from azure.core.exceptions import ResourceExistsError

                from shared.adapters.http_pool import pooled_session

                if self._service is None:
                    self._service = self._access.blob_service(
                        session=pooled_session(self._pool_size),
                        connection_timeout=self._timeout,
                        read_timeout=self._timeout,
                    )
                container = self._service.get_container_client(name)
                with contextlib.suppress(ResourceExistsError):
                    container.create_container()
                self._containers[name] = container
            return self._containers[name]

    def put(self, container: str, name: str, data: bytes, content_type: str) -> None:
        from azure.storage.blob import ContentSettings

        with _unavailable("write"):
            self._container(container).upload_blob(
                name,
                data,
                overwrite=True,
                content_settings=ContentSettings(content_type=content_type),
            )

    def get(self, container: str, name: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        with _unavailable("read"):
            try:
                return bytes(self._container(container).download_blob(name).readall())
            except ResourceNotFoundError:
                return None

    def delete(self, container: str, name: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        # Gone already is what we wanted.
        with _unavailable("delete"), contextlib.suppress(ResourceNotFoundError):
            self._container(container).delete_blob(name)


@contextlib.contextmanager
def _unavailable(what: str) -> Iterator[None]:
    """Blob Storage down or refusing (other than not found): 503, never a traceback."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    try:
        yield
    except ResourceNotFoundError:
        raise
    except AzureError as exc:
        raise DependencyUnavailable(f"Blob Storage {what} failed") from exc


def _entity(prompt: StoredPrompt) -> Entity:
    return {
        "PartitionKey": prompt.pool_id,
        "RowKey": prompt.prompt_id,
        "name": prompt.name,
        "duration_ms": prompt.duration_ms,
        "size_bytes": prompt.size_bytes,
        "uploaded_at": prompt.uploaded_at,
        "uploaded_by": prompt.uploaded_by,
        "blob": prompt.blob_name,
    }


def _prompt(entity: Entity) -> StoredPrompt:
    uploaded = as_utc(entity.get("uploaded_at"))
    assert isinstance(uploaded, datetime)
    return StoredPrompt(
        pool_id=entity["PartitionKey"],
        prompt_id=entity["RowKey"],
        name=str(entity.get("name") or ""),
        duration_ms=int(entity.get("duration_ms") or 0),
        size_bytes=int(entity.get("size_bytes") or 0),
        uploaded_at=uploaded,
        uploaded_by=str(entity.get("uploaded_by") or ""),
    )


class TablePrompts:
    """The prompts' metadata (`prompts` table) and their audio (`prompts` container)."""

    def __init__(self, store: TableStore, blobs: BlobStore) -> None:
        self.store, self.blobs = store, blobs

    def add(self, prompt: StoredPrompt, audio: bytes) -> StoredPrompt:
        """The audio first, then its row: a crash between leaves an unlisted blob, never a
        listed prompt without audio. A prompt already there (the same audio) is kept."""
        found = self.get(prompt.pool_id, prompt.prompt_id)
        if found is not None:
            return found
        self.blobs.put(PROMPTS, prompt.blob_name, audio, "audio/wav")
        try:
            self.store.insert(PROMPTS, _entity(prompt))
        except ConcurrencyConflict:
            return self.get(prompt.pool_id, prompt.prompt_id) or prompt
        return prompt

    def get(self, pool_id: str, prompt_id: str) -> StoredPrompt | None:
        found = self.store.get(PROMPTS, pool_id, prompt_id)
        return _prompt(found) if found else None

    def exists(self, pool_id: str, prompt_id: str) -> bool:
        return self.get(pool_id, prompt_id) is not None

    def of_pool(self, pool_id: str) -> list[StoredPrompt]:
        return [_prompt(e) for e in self.store.partition(PROMPTS, pool_id)]

    def remove(self, prompt: StoredPrompt) -> None:
        """The row first (the prompt is gone from the list and from new settings), then the
        audio; a crash between leaves an unlisted blob that no pool setting can name."""
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self.store.delete(PROMPTS, prompt.pool_id, prompt.prompt_id)
        self.blobs.delete(PROMPTS, prompt.blob_name)

    def audio(self, pool_id: str, prompt_id: str) -> bytes | None:
        from shared.domain.prompts import blob_name

        return self.blobs.get(PROMPTS, blob_name(pool_id, prompt_id))
