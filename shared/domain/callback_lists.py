"""Callback lists (§5) as the CALLBACK_LISTS setting names them: read at start-up, so this
module stays small (the rest of the callback domain loads on first use)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

LIST_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class CallbackList:
    """A callback list: the D365 queue its requests go to, and whether the import is on (§5)."""

    id: str
    queue_id: str
    enabled: bool


def parse_callback_lists(raw: str) -> tuple[CallbackList, ...]:
    """The CALLBACK_LISTS setting: `{"<list id>": {"queueId": "<guid>", "enabled": true}}`."""
    try:
        data = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError('must be a JSON object: {"<list id>": {"queueId": ..., "enabled": ...}}')
    problems: list[str] = []
    lists: list[CallbackList] = []
    for list_id, item in data.items():
        if not LIST_ID.match(list_id):
            problems.append(f"list id {list_id!r} must be letters, digits, '_', '.' or '-'")
            continue
        if not isinstance(item, dict):
            problems.append(f"{list_id} must be an object with queueId and enabled")
            continue
        queue_id = item.get("queueId")
        enabled = item.get("enabled", True)
        if not isinstance(queue_id, str) or not GUID.match(queue_id):
            problems.append(f"{list_id}.queueId must be the D365 queue's GUID")
        if not isinstance(enabled, bool):
            problems.append(f"{list_id}.enabled must be true or false")
        unknown = sorted(set(item) - {"queueId", "enabled"})
        if unknown:
            problems.append(f"{list_id} has unknown keys {unknown}")
        if isinstance(queue_id, str) and GUID.match(queue_id) and isinstance(enabled, bool):
            lists.append(CallbackList(list_id, queue_id.lower(), enabled))
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(lists)
