"""Read access of impersonated users (CallerObjectId), as Dataverse's security model answers it
for one record: a user's read depth on a table (none, user: rows it owns or that are shared with
it, organization: every row) from its security roles; application users read everything (the
app registration's Application User has a System Administrator-like role here).

Refusals have the service's shape: 403 `0x80040220` with the SecLib message for a row the user
may not read, or the missing-privilege message when the user has no read privilege at all."""

from __future__ import annotations

import threading
from typing import Any

from emulators.dataverse.errors import ODataError

ACCESS_DENIED = "0x80040220"  # PrivilegeDenied / SecLib::AccessCheckEx failed
DEPTHS = ("none", "user", "organization")
# What Basic User gives on activities: its own records (and those shared with it).
DEFAULT_DEPTH = "user"
OBJECT_TYPE_CODES = {"phonecall": 4210}
CHECKED = frozenset(OBJECT_TYPE_CODES)


class Privileges:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depths: dict[tuple[str, str], str] = {}  # (systemuserid, table) -> depth
        self._shares: set[tuple[str, str, str]] = set()  # (table, record id, systemuserid)

    def reset(self) -> None:
        with self._lock:
            self._depths.clear()
            self._shares.clear()

    def set_read(self, systemuser_id: str, table: str, depth: str) -> None:
        if depth not in DEPTHS:
            raise ValueError(f"read must be one of {list(DEPTHS)}")
        if table not in CHECKED:
            raise ValueError(f"table must be one of {sorted(CHECKED)}")
        with self._lock:
            self._depths[(systemuser_id.lower(), table)] = depth

    def share(self, table: str, record_id: str, systemuser_id: str) -> None:
        if table not in CHECKED:
            raise ValueError(f"table must be one of {sorted(CHECKED)}")
        with self._lock:
            self._shares.add((table, record_id.lower(), systemuser_id.lower()))

    def check_read(self, table: str, record: dict[str, Any], systemuser_id: str) -> None:
        """Raise Dataverse's 403 when an impersonated user may not read `record`."""
        if table not in CHECKED:
            return
        user = systemuser_id.lower()
        with self._lock:
            depth = self._depths.get((user, table), DEFAULT_DEPTH)
            record_id = str(record.get(f"{table}id") or record.get("activityid") or "").lower()
            shared = (table, record_id, user) in self._shares
        owner = str(record.get("_ownerid_value") or "").lower()
        code = OBJECT_TYPE_CODES[table]
        if depth == "none":
            raise ODataError(
                403,
                ACCESS_DENIED,
                f"Principal user (Id={user}, type=8, roleCount=1) is missing prvReadActivity "
                f"privilege on OTC={code} for entity '{table}'. Consider adding the privilege "
                "to one of the principal's security roles.",
            )
        if depth == "organization" or owner == user or shared:
            return
        raise ODataError(
            403,
            ACCESS_DENIED,
            f"SecLib::AccessCheckEx failed. Returned hr = -2147187962, ObjectID: {record_id}, "
            f"OwnerId: {owner}, OwnerIdType: 8 and CallingUser: {user}. ObjectTypeCode: {code}, "
            "objectBusinessUnitId: (none), AccessRights: ReadAccess",
        )
