"""The composition root: adapters and services built once per process from the settings."""

from __future__ import annotations

from functools import cache

from shared.adapters.queues import QueueSender
from shared.adapters.tables import TableStore
from shared.config import Settings, get_settings
from shared.services.health import HealthReport, check_health


def settings() -> Settings:
    return get_settings()


@cache
def table_store() -> TableStore:
    s = settings()
    return TableStore(s.storage_connection_string, timeout_seconds=s.http_timeout_seconds)


@cache
def queue_sender() -> QueueSender:
    s = settings()
    return QueueSender(s.storage_connection_string, timeout_seconds=s.http_timeout_seconds)


@cache
def _health_table_store() -> TableStore:
    # Probes use short timeouts so a dead dependency answers 503 quickly.
    s = settings()
    return TableStore(
        s.storage_connection_string, timeout_seconds=s.health_timeout_seconds, retry_total=0
    )


@cache
def _health_queue_sender() -> QueueSender:
    s = settings()
    return QueueSender(
        s.storage_connection_string, timeout_seconds=s.health_timeout_seconds, retry_total=0
    )


def health() -> HealthReport:
    return check_health(
        settings().app_version,
        [
            ("tableStorage", _health_table_store()),
            ("queueStorage", _health_queue_sender()),
        ],
    )
