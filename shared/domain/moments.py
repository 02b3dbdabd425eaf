"""How moments are written and read at our edges: UTC, ISO 8601 with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso_z(moment: datetime) -> str:
    """`2026-11-25T09:00:05.123456Z`: UTC, the form JSON APIs and Dataverse take."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_z_or_none(moment: datetime | None) -> str | None:
    return iso_z(moment) if moment is not None else None


def as_utc(value: Any) -> datetime | None:
    """A stored moment (a datetime, or ISO text) as an aware UTC datetime; None stays None."""
    if value is None or value == "":
        return None
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    # Storage SDKs hand back datetime subclasses: the domain gets plain datetimes, to the
    # microsecond (no float on the way).
    return datetime(*moment.timetuple()[:6], moment.microsecond, tzinfo=UTC)
