"""Table Storage: tables created on first use, ETag-guarded writes, retries, transactions."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shared.adapters.storage_access import StorageAccess

if TYPE_CHECKING:  # the SDK is imported lazily: it is not paid for at cold start
    from azure.data.tables import TableClient, TableServiceClient

Entity = dict[str, Any]
# (operation, entity[, options]) as azure-data-tables' submit_transaction takes them:
# "create", "upsert", "update", "delete"; options e.g. {"etag": ..., "match_condition": ...}.
TransactionOp = tuple[Any, ...]


# A guarded write of an entity deleted since it was read fails with ResourceNotFound: it
# changed, as much as with a newer ETag.
_CONFLICT_CODES = {"EntityAlreadyExists", "UpdateConditionNotSatisfied", "ResourceNotFound"}


CONFLICT_ATTEMPTS = 40


def conflict_pause(attempt: int) -> None:
    """A short random pause before retrying after an ETag conflict, so writers racing for one
    entity spread out instead of colliding again in lockstep."""
    time.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** min(attempt, 6))))


class StorageError(Exception):
    """A Table Storage failure our callers can act on."""


class ConcurrencyConflict(StorageError):
    """The entity changed (ETag mismatch) or already exists."""


class RetriesExhausted(StorageError):
    """A read-modify-write kept conflicting beyond its attempts."""


class TransactionFailed(StorageError):
    """An entity-group transaction was rejected; nothing in it was written."""


class TableStore:
    """One TableServiceClient per process, built on first use; tables created on first use."""

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
        self._service: TableServiceClient | None = None
        self._clients: dict[str, TableClient] = {}
        self._lock = threading.Lock()

    @property
    def service(self) -> TableServiceClient:
        if self._service is None:
            from shared.adapters.http_pool import pooled_session

            self._service = self._access.table_service(
                session=pooled_session(self._pool_size),
                connection_timeout=self._timeout,
                read_timeout=self._timeout,
                **self._retry,
            )
        return self._service

    def table(self, name: str) -> TableClient:
        """The client of table `name`, creating the table the first time this process uses it."""
        client = self._clients.get(name)
        if client is not None:
            return client
        with self._lock:
            if name not in self._clients:
                self.service.create_table_if_not_exists(name)
                self._clients[name] = self.service.get_table_client(name)
            return self._clients[name]

    # ------------------------------------------------------------------ reads

    def get(self, table: str, partition_key: str, row_key: str) -> Entity | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return dict(self.table(table).get_entity(partition_key, row_key))
        except ResourceNotFoundError:
            return None

    def query(
        self,
        table: str,
        filter: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        select: Sequence[str] | None = None,
        top: int | None = None,
    ) -> Iterator[Entity]:
        """Entities matching an OData filter; `@name` placeholders come from `parameters`."""
        pages = self.table(table).query_entities(
            filter,
            parameters=dict(parameters or {}),
            select=list(select) if select else None,
            results_per_page=top,
        )
        for count, entity in enumerate(pages, start=1):
            yield dict(entity)
            if top is not None and count >= top:
                return

    def query_versions(
        self,
        table: str,
        filter: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        select: Sequence[str] | None = None,
        top: int | None = None,
    ) -> list[tuple[Entity, str]]:
        """Like `query`, each entity with its ETag (for a conditional write without a read)."""
        pages = self.table(table).query_entities(
            filter,
            parameters=dict(parameters or {}),
            select=list(select) if select else None,
            results_per_page=top,
        )
        found = []
        for entity in pages:
            found.append((dict(entity), str(entity.metadata["etag"])))
            if top is not None and len(found) >= top:
                break
        return found

    def partition(self, table: str, partition_key: str) -> list[Entity]:
        return list(self.query(table, "PartitionKey eq @pk", {"pk": partition_key}))

    # ------------------------------------------------------------------ writes

    def insert(self, table: str, entity: Entity) -> str:
        """Create; ConcurrencyConflict if it exists (a deterministic key makes this idempotent).
        Returns the new entity's ETag."""
        from azure.core.exceptions import ResourceExistsError

        try:
            return str(self.table(table).create_entity(entity).get("etag", ""))
        except ResourceExistsError as exc:
            raise ConcurrencyConflict(
                f"{table}/{entity['PartitionKey']}/{entity['RowKey']} already exists"
            ) from exc

    def upsert(self, table: str, entity: Entity, *, replace: bool = False) -> None:
        from azure.data.tables import UpdateMode

        self.table(table).upsert_entity(
            entity, mode=UpdateMode.REPLACE if replace else UpdateMode.MERGE
        )

    def replace_if_unchanged(self, table: str, entity: Entity, etag: str) -> str:
        """Replace the entity only if it still has `etag` (ConcurrencyConflict otherwise);
        returns its new ETag, so a later write in the same invocation needs no read."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            written = self.table(table).update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyConflict("entity changed (or went) since it was read") from exc
        return str(written.get("etag", ""))

    def delete(self, table: str, partition_key: str, row_key: str) -> None:
        self.table(table).delete_entity(partition_key, row_key)

    def read_modify_write(
        self,
        table: str,
        partition_key: str,
        row_key: str,
        mutate: Callable[[Entity | None], Entity | None],
        *,
        attempts: int = CONFLICT_ATTEMPTS,
        known: tuple[Entity, str] | None = None,
        written: Callable[[Entity, str], None] | None = None,
    ) -> Entity | None:
        """Read, let `mutate` compute the new entity, write it guarded by the read's ETag.

        `mutate` gets the current entity (None if absent) and returns the entity to store, or
        None to leave it as it is. On a conflict the entity is read again and `mutate` runs
        again, so `mutate` must be a pure function of what it is given.

        `known` is the entity and ETag this invocation already read or wrote: the first attempt
        starts from it instead of reading (a stale one costs one refused write). `written` is
        told the entity and ETag stored, for the next write's `known`.
        """
        from_known = known is not None
        for attempt in range(attempts):
            if attempt and not from_known:
                conflict_pause(attempt)
            if from_known:
                current: tuple[Entity, str] | None = known
            else:
                current = self.get_with_etag(table, partition_key, row_key)
            entity, etag = current if current else (None, None)
            new = mutate(dict(entity) if entity is not None else None)
            if new is None:
                if from_known:  # "nothing to do" is only believed of a fresh read
                    from_known = False
                    continue
                return entity
            from_known = False
            new = {**new, "PartitionKey": partition_key, "RowKey": row_key}
            try:
                if etag is None:
                    new_etag = self.insert(table, new)
                else:
                    new_etag = self.replace_if_unchanged(table, new, etag)
            except ConcurrencyConflict:
                continue
            if written is not None:
                written(new, new_etag)
            return new
        raise RetriesExhausted(
            f"{table}/{partition_key}/{row_key}: still conflicting after {attempts} attempts"
        )

    def get_with_etag(self, table: str, pk: str, rk: str) -> tuple[Entity, str] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            found = self.table(table).get_entity(pk, rk)
        except ResourceNotFoundError:
            return None
        return dict(found), str(found.metadata["etag"])

    def transact(self, table: str, operations: Iterable[TransactionOp]) -> list[Mapping[str, Any]]:
        """One entity-group transaction: all operations (one partition, at most 100) or none.
        Returns each operation's response metadata (its `etag`), in order."""
        from azure.core.exceptions import (
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )
        from azure.data.tables import TableTransactionError

        ops = list(operations)
        if not ops:
            return []
        partitions = {op[1]["PartitionKey"] for op in ops}
        if len(partitions) != 1:  # Azure rejects this; Azurite would not, so check here
            raise TransactionFailed(f"a transaction spans one partition, got {sorted(partitions)}")
        if len(ops) > 100:
            raise TransactionFailed("a transaction holds at most 100 operations")
        try:
            return list(self.table(table).submit_transaction(ops))
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyConflict(str(exc).splitlines()[0]) from exc
        except TableTransactionError as exc:
            message = str(exc).splitlines()[0]
            if str(getattr(exc, "error_code", "")) in _CONFLICT_CODES:
                raise ConcurrencyConflict(message) from exc
            raise TransactionFailed(message) from exc

    def ping(self) -> None:
        """Reachability probe: one cheap request to the service."""
        next(iter(self.service.list_tables(results_per_page=1)), None)
