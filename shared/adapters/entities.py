"""Dataclass <-> Table Storage entity mapping: datetimes in UTC, enums by value, JSON for lists."""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from datetime import UTC, datetime
from typing import Any, TypeVar, get_type_hints

T = TypeVar("T")

# Table Storage keys and system properties that never map onto a dataclass field.
_SYSTEM = {"PartitionKey", "RowKey", "Timestamp", "etag", "odata.etag"}


def to_entity(obj: Any, *, partition_key: str, row_key: str) -> dict[str, Any]:
    """A dataclass instance as an entity; None fields are left out (Table Storage has no null)."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"{obj!r} is not a dataclass instance")
    entity: dict[str, Any] = {"PartitionKey": partition_key, "RowKey": row_key}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if value is None:
            continue
        entity[field.name] = _to_property(value)
    return entity


def from_entity(cls: type[T], entity: typing.Mapping[str, Any]) -> T:
    """Build `cls` from an entity; properties the dataclass does not know are ignored."""
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in _SYSTEM or field.name not in entity:
            continue
        kwargs[field.name] = _from_property(hints[field.name], entity[field.name])
    return cls(**kwargs)


def _to_property(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass an aware (UTC) datetime")
        return value.astimezone(UTC)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, default=_json_default)
    return value


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot store {type(value).__name__}")


def _from_property(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _from_property(args[0], value)
    if hint is datetime:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if origin in (list, tuple, dict) or hint in (list, tuple, dict):
        decoded = json.loads(value) if isinstance(value, str) else value
        return tuple(decoded) if origin is tuple or hint is tuple else decoded
    if hint is int and not isinstance(value, bool):
        return int(value)  # the SDK returns EntityProperty/int64 wrappers for large ints
    if hint is float:
        return float(value)
    return value
