"""Callback lists (§5) as the CALLBACK_LISTS setting names them: read at start-up, so this
module stays small (the rest of the callback domain loads on first use)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

LIST_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
DEFAULT_DUE_MINUTES = 1440  # a callback is due within a day of the request unless set
MAX_DUE_MINUTES = 43200  # 30 days
_KEYS = {"queueId", "enabled", "dueMinutes", "ownerTeamId", "ownerUserId"}


@dataclass(frozen=True)
class ListOwner:
    """Who owns the list's callback Phone Calls in D365: a team or a user."""

    entity: str  # team | systemuser
    id: str


@dataclass(frozen=True)
class CallbackList:
    """A callback list: the D365 queue its requests go to, whether the import is on (§5), when
    a callback is due after its request, and who owns its Phone Calls (None: the application
    user the import runs as)."""

    id: str
    queue_id: str
    enabled: bool
    due_minutes: int = DEFAULT_DUE_MINUTES
    owner: ListOwner | None = None


def parse_callback_lists(raw: str) -> tuple[CallbackList, ...]:
    """The CALLBACK_LISTS setting: `{"<list id>": {"queueId": "<guid>", "enabled": true,
    "dueMinutes": 1440, "ownerTeamId": "<guid>" | "ownerUserId": "<guid>"}}`."""
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
        before = len(problems)
        queue_id = item.get("queueId")
        enabled = item.get("enabled", True)
        due = item.get("dueMinutes", DEFAULT_DUE_MINUTES)
        if not isinstance(queue_id, str) or not GUID.match(queue_id):
            problems.append(f"{list_id}.queueId must be the D365 queue's GUID")
        if not isinstance(enabled, bool):
            problems.append(f"{list_id}.enabled must be true or false")
        if isinstance(due, bool) or not isinstance(due, int) or not 1 <= due <= MAX_DUE_MINUTES:
            problems.append(f"{list_id}.dueMinutes must be a whole number 1-{MAX_DUE_MINUTES}")
        owner = _owner(list_id, item, problems)
        unknown = sorted(set(item) - _KEYS)
        if unknown:
            problems.append(f"{list_id} has unknown keys {unknown}")
        if len(problems) == before:
            assert isinstance(queue_id, str)
            lists.append(CallbackList(list_id, queue_id.lower(), enabled, due, owner))
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(lists)


def _owner(list_id: str, item: dict[str, object], problems: list[str]) -> ListOwner | None:
    owners = [
        (entity, item[key])
        for key, entity in (("ownerTeamId", "team"), ("ownerUserId", "systemuser"))
        if key in item
    ]
    if len(owners) > 1:
        problems.append(f"{list_id} names both ownerTeamId and ownerUserId: choose one")
        return None
    if not owners:
        return None
    entity, value = owners[0]
    if not isinstance(value, str) or not GUID.match(value):
        key = "ownerTeamId" if entity == "team" else "ownerUserId"
        problems.append(f"{list_id}.{key} must be the D365 {entity}'s GUID")
        return None
    return ListOwner(entity, value.lower())
