"""Who the enterprise-call sync works for (§4: email address and id): the ENTERPRISE_USERS
setting and its default from AGENTS. Kept apart from the call rules: settings are read at cold
start, the rules only when a sync runs."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain.directory import GUID

if TYPE_CHECKING:
    from shared.domain.directory import Agent

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class EnterpriseUser:
    """A person whose Teams/mobile calls are synced: found by email and/or id (§4)."""

    system_user_id: str
    email: str | None = None
    user_id: str | None = None  # Entra ID object id = Teams user id = Graph's userId


@dataclass(frozen=True)
class UserMap:
    users: tuple[EnterpriseUser, ...]

    def system_user_of(self, *, user_id: str | None, email: str | None) -> str | None:
        """The D365 systemuser of a call's user: by id first (an email can be renamed)."""
        if user_id:
            wanted = user_id.lower()
            for user in self.users:
                if user.user_id and user.user_id == wanted:
                    return user.system_user_id
        if email:
            wanted = email.strip().lower()
            for user in self.users:
                if user.email and user.email == wanted:
                    return user.system_user_id
        return None


def parse_enterprise_users(raw: str) -> tuple[EnterpriseUser, ...]:
    """The ENTERPRISE_USERS setting: a JSON list of {systemUserId, email?, userId?}."""
    try:
        data = json.loads(raw) if raw.strip() else []
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise ValueError("must be a JSON list of users")
    problems: list[str] = []
    users: list[EnterpriseUser] = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            problems.append(f"[{i}] must be an object")
            continue
        found = len(problems)
        system_user = item.get("systemUserId")
        email, user_id = item.get("email"), item.get("userId")
        if not isinstance(system_user, str) or not GUID.match(system_user):
            problems.append(f"[{i}].systemUserId must be a GUID")
        if email is not None and (not isinstance(email, str) or not EMAIL.match(email)):
            problems.append(f"[{i}].email must be an email address")
        if user_id is not None and (not isinstance(user_id, str) or not GUID.match(user_id)):
            problems.append(f"[{i}].userId must be a GUID (the Entra ID object id)")
        if not email and not user_id:
            problems.append(f"[{i}] needs email and/or userId")
        if len(problems) == found and isinstance(system_user, str):
            users.append(
                EnterpriseUser(
                    system_user.lower(),
                    email.strip().lower() if isinstance(email, str) else None,
                    user_id.lower() if isinstance(user_id, str) else None,
                )
            )
    problems.extend(_mapped_twice(users))
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(users)


def _mapped_twice(users: Sequence[EnterpriseUser]) -> list[str]:
    owners: dict[str, str] = {}
    problems = []
    for user in users:
        for key in (user.email, user.user_id):
            if key is None:
                continue
            if owners.setdefault(key, user.system_user_id) != user.system_user_id:
                problems.append(f"{key} is mapped to two D365 users")
    return problems


def user_map(configured: Sequence[EnterpriseUser], agents: Sequence[Agent]) -> UserMap:
    """ENTERPRISE_USERS when set; otherwise every agent, found by its Entra object id (which is
    also its Teams user id)."""
    if configured:
        return UserMap(tuple(configured))
    return UserMap(
        tuple(EnterpriseUser(a.system_user_id, None, a.entra_object_id.lower()) for a in agents)
    )
