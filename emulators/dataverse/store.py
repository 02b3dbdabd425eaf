"""The emulator's records and Dataverse's rules for writing them (binds, states, versions)."""

from __future__ import annotations

import copy
import datetime as dt
import random
import re
import string
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from emulators.dataverse import errors as E
from emulators.dataverse.errors import ODataError
from emulators.dataverse.query import (
    ExpandItem,
    FilterParser,
    Node,
    evaluate,
    parse_datetime,
    parse_orderby,
    parse_select,
    sort_records,
)
from emulators.dataverse.schema import (
    BOOL,
    DATETIME,
    DECIMAL,
    GUID,
    INT,
    PRIVILEGES,
    STRING,
    SYSTEM_COLUMNS,
    Column,
    Lookup,
    Table,
    base_tables,
)

Record = dict[str, Any]
_TYPE_PREFIX = "@type:"  # internal: the table a lookup value points at
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
ROOT_BUSINESS_UNIT_ID = "3f0c2e59-8b1d-4a7e-9c4f-2d6a1b0e9f11"
DEPTHS = ("Basic", "Local", "Deep", "Global")  # PrivilegeDepth, in increasing reach
_BIND_RE = re.compile(r"^(?:.*/api/data/v[\d.]+/|/)?([A-Za-z_]\w*)\(([^)]+)\)$")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_guid(text: Any) -> bool:
    return isinstance(text, str) and bool(_GUID_RE.match(text))


@dataclass(frozen=True)
class Caller:
    """Who a request acts as: the application user, or the user named by CallerObjectId."""

    systemuser_id: str


@dataclass
class AttributeMeta:
    metadata_id: str
    entity: str
    body: dict[str, Any]


class Store:
    """All tables and records. Every public method runs under one lock (a request at a time)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tables: dict[str, Table] = base_tables()
            self.data: dict[str, dict[str, Record]] = {name: {} for name in self.tables}
            self.attributes: dict[str, AttributeMeta] = {}
            self.role_privileges: dict[str, dict[str, str]] = {}  # role -> privilege -> depth
            self.version = 1000
            self._tickets = 0  # the case auto-number's counter
            self._seed_organisation()

    def _seed_organisation(self) -> None:
        """What every org has before anyone writes: its root business unit and the privileges."""
        now = now_iso()
        self.data["businessunit"][ROOT_BUSINESS_UNIT_ID] = {
            "businessunitid": ROOT_BUSINESS_UNIT_ID,
            "name": "org-root",
            "_parentbusinessunitid_value": None,
            "_createdby_value": None,
            "_modifiedby_value": None,
            "createdon": now,
            "modifiedon": now,
            "versionnumber": self._next_version(),
        }
        for name in PRIVILEGES:
            pid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"privilege:{name}"))
            self.data["privilege"][pid] = {
                "privilegeid": pid,
                "name": name,
                "accessright": 0,
                "canbebasic": True,
                "canbelocal": True,
                "canbedeep": True,
                "canbeglobal": True,
            }

    # ---- transactions ($batch change sets) ----------------------------------------------------

    def snapshot(self) -> Any:
        with self.lock:
            return copy.deepcopy(
                (self.tables, self.data, self.attributes, self.role_privileges, self.version)
            )

    def restore(self, snap: Any) -> None:
        with self.lock:
            self.tables, self.data, self.attributes, self.role_privileges, self.version = snap

    # ---- lookups of tables -------------------------------------------------------------------

    def table_for_set(self, entity_set: str) -> Table | None:
        for table in self.tables.values():
            if table.entity_set == entity_set:
                return table
        return None

    def edm_of(self, table: Table, name: str) -> str | None:
        if name in table.columns:
            return table.columns[name].edm
        if table.lookup_by_value_column(name) is not None:
            return GUID
        return None

    def _next_version(self) -> int:
        self.version += 1
        return self.version

    # ---- application users -------------------------------------------------------------------

    def application_user(self, app_id: str) -> str:
        """The systemuser of an app (Dataverse needs one per app registration; we make it)."""
        with self.lock:
            users = self.data["systemuser"]
            for uid, user in users.items():
                if (user.get("applicationid") or "").lower() == app_id.lower():
                    return uid
            uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"appuser:{app_id.lower()}"))
            now = now_iso()
            users[uid] = {
                "systemuserid": uid,
                "fullname": f"# {app_id}",
                "firstname": "#",
                "lastname": app_id,
                "applicationid": app_id.lower(),
                "accessmode": 4,  # non-interactive
                "isdisabled": False,
                "createdon": now,
                "modifiedon": now,
                "versionnumber": self._next_version(),
            }
            return uid

    def user_by_object_id(self, object_id: str) -> str | None:
        with self.lock:
            for uid, user in self.data["systemuser"].items():
                if (user.get("azureactivedirectoryobjectid") or "").lower() == object_id.lower():
                    return uid
            return None

    # ---- writes ------------------------------------------------------------------------------

    def create(
        self, table: Table, body: dict[str, Any], caller: Caller, *, seeding: bool = False
    ) -> str:
        with self.lock:
            supplied = body.get(table.primary_id)
            if supplied is not None:
                if not is_guid(supplied):
                    raise E.payload_error(
                        table,
                        f"Cannot convert the literal '{supplied}' to the expected type 'Edm.Guid'.",
                    )
                record_id = str(supplied).lower()
            else:
                record_id = str(uuid.uuid4())
            rows = self.data[table.logical_name]
            if record_id in rows:
                raise ODataError(412, E.DUPLICATE, "Cannot insert duplicate key.")
            record: Record = {table.primary_id: record_id}
            children = self._apply(table, record, body, creating=True, seeding=seeding)
            self._defaults(table, record, caller, seeding=seeding)
            rows[record_id] = record
            try:
                for nav, items in children:
                    self._replace_children(table, record_id, nav, items, caller)
            except ODataError:
                del rows[record_id]  # a deep insert is one transaction
                raise
            return record_id

    def update(
        self,
        table: Table,
        record_id: str,
        body: dict[str, Any],
        caller: Caller,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> bool:
        """Apply a PATCH. Returns True when it created the record (upsert)."""
        with self.lock:
            record_id = record_id.lower()
            rows = self.data[table.logical_name]
            record = rows.get(record_id)
            if record is None:
                if if_match is not None:
                    raise E.record_not_found(table, record_id)
                self.create(table, {**body, table.primary_id: record_id}, caller)
                return True
            if if_none_match == "*":
                raise ODataError(
                    412, E.DUPLICATE, "A record with matching key values already exists."
                )
            self._check_etag(record, if_match)
            state = record.get("statecode", 0)
            if table.activity and state != 0:
                reopening = body.get("statecode") == 0 and set(body) <= {"statecode", "statuscode"}
                if not reopening:
                    raise ODataError(
                        400, E.CLOSED_ACTIVITY, "Cannot update Closed or Cancelled Activity"
                    )
            working = dict(record)
            children = self._apply(table, working, body, creating=False, seeding=False)
            self._check_state(table, working, record_id, body, previous_state=state)
            working["modifiedon"] = now_iso()
            working["versionnumber"] = self._next_version()
            if "modifiedby" in table.lookups:
                self._set_lookup(working, "modifiedby", "systemuser", caller.systemuser_id)
            self._computed(table, working)
            rows[record_id] = working
            try:
                for nav, items in children:
                    self._replace_children(table, record_id, nav, items, caller)
            except ODataError:
                rows[record_id] = record
                raise
            return False

    def delete(self, table: Table, record_id: str, *, if_match: str | None = None) -> None:
        with self.lock:
            record_id = record_id.lower()
            rows = self.data[table.logical_name]
            record = rows.get(record_id)
            if record is None:
                raise E.record_not_found(table, record_id)
            self._check_etag(record, if_match)
            del rows[record_id]
            # Cascade as Dataverse does: an activity's parties, queue items and notes go with it.
            for child in ("activityparty", "queueitem", "annotation"):
                fk = "_activityid_value" if child == "activityparty" else "_objectid_value"
                kids = self.data[child]
                for kid in [k for k, r in kids.items() if r.get(fk) == record_id]:
                    del kids[kid]

    def _check_etag(self, record: Record, if_match: str | None) -> None:
        if if_match is None or if_match.strip() == "*":
            return
        wanted = {tag.strip() for tag in if_match.split(",")}
        if etag(record) not in wanted:
            raise ODataError(
                412,
                E.VERSION_MISMATCH,
                "The version of the existing record doesn't match the RowVersion property "
                "provided.",
            )

    def _apply(
        self,
        table: Table,
        record: Record,
        body: dict[str, Any],
        *,
        creating: bool,
        seeding: bool,
    ) -> list[tuple[str, list[Any]]]:
        """Copy body values into `record` with Dataverse's checks; returns deep-insert lists."""
        children: list[tuple[str, list[Any]]] = []
        for key, value in body.items():
            if key.endswith("@odata.bind"):
                nav = key[: -len("@odata.bind")]
                target = table.nav_target(nav)
                if target is None:
                    raise E.payload_error(
                        table,
                        f"An undeclared property '{nav}' which only has property annotations "
                        "in the payload but no property value was found in the payload. In "
                        "OData, only declared navigation properties and declared named streams "
                        "can be represented as properties without values.",
                    )
                lookup, target_name = target
                if value is None:
                    self._clear_lookup(record, lookup.name)
                    continue
                target_name, target_id = self._resolve_bind(
                    table, nav, (target_name, *lookup.also), value
                )
                self._set_lookup(record, lookup.name, target_name, target_id)
                continue
            if key.startswith("@") or "@" in key:
                continue  # annotations such as @odata.type
            if key in table.collections:
                if not isinstance(value, list):
                    raise E.payload_error(
                        table, f"A collection was expected for the property '{key}'."
                    )
                children.append((key, value))
                continue
            if table.nav_target(key) is not None:
                raise E.query_error(
                    f"Deep insert of the single-valued navigation property '{key}' is not "
                    "supported by the emulator; bind an existing record with @odata.bind."
                )
            column = table.columns.get(key)
            if column is None:
                raise E.unknown_body_property(key, table)
            if key == table.primary_id:
                if not creating and value is not None and str(value).lower() != record[key]:
                    raise E.payload_error(table, "The primary key cannot be changed.")
                continue
            if key in SYSTEM_COLUMNS and not (seeding and key != "versionnumber"):
                continue  # Dataverse fills these itself and ignores what is sent
            if not column.writable and not seeding:
                continue  # Dataverse ignores columns that are not valid for create/update
            if key == "statecode" and creating and not seeding:
                continue  # not valid for create: every record starts in its default state
            record[key] = self._coerce(table, column, value)
        if creating and "statuscode" in body and not seeding and table.state is not None:
            status = record.get("statuscode")
            if status not in table.state.statuses[0]:
                raise self._state_error(table, record[table.primary_id], 0, status)
        return children

    def _coerce(self, table: Table, column: Column, value: Any) -> Any:
        if value is None:
            return None
        edm = column.edm

        def bad() -> ODataError:
            shown = value if not isinstance(value, bool) else str(value).lower()
            return E.payload_error(
                table,
                f"Cannot convert the literal '{shown}' to the expected type '{edm}'.",
            )

        if edm == STRING:
            if not isinstance(value, str):
                raise bad()
            if column.max_length is not None and len(value) > column.max_length:
                raise ODataError(
                    400,
                    E.MAX_LENGTH,
                    f"A validation error occurred. The length of the '{column.name}' attribute "
                    f"of the '{table.logical_name}' entity exceeded the maximum allowed length "
                    f"of '{column.max_length}'.",
                )
            return value
        if edm == GUID:
            if not is_guid(value):
                raise bad()
            return str(value).lower()
        if edm == INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad()
            return value
        if edm == DECIMAL:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad()
            return value
        if edm == BOOL:
            if not isinstance(value, bool):
                raise bad()
            return value
        if edm == DATETIME:
            if not isinstance(value, str):
                raise bad()
            try:
                parsed = parse_datetime(value)
            except ODataError:
                raise bad() from None
            return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")
        return value

    def _resolve_bind(
        self, table: Table, nav: str, targets: tuple[str, ...], value: Any
    ) -> tuple[str, str]:
        """The (table, id) an `@odata.bind` names, checked against the tables it may name."""
        if not isinstance(value, str):
            raise E.payload_error(table, f"The value of '{nav}@odata.bind' must be a URL string.")
        match = _BIND_RE.match(value.strip())
        if not match:
            raise E.payload_error(table, f"The entity reference '{value}' is not valid.")
        entity_set, key = match.group(1), match.group(2)
        bound = self.table_for_set(entity_set)
        if bound is None:
            raise ODataError(
                400, E.RESOURCE_NOT_FOUND, f"Resource not found for the segment '{entity_set}'."
            )
        if bound.logical_name not in targets:
            raise E.payload_error(
                table,
                f"The navigation property '{nav}' expects an entity of type "
                f"'Microsoft.Dynamics.CRM.{targets[0]}' but '{value}' is a "
                f"'{bound.edm_type}'.",
            )
        key = key.strip().strip("'")
        if not is_guid(key):
            raise E.payload_error(table, f"The entity reference '{value}' is not valid.")
        key = key.lower()
        if key not in self.data[bound.logical_name]:
            raise E.record_not_found(bound, key)
        return bound.logical_name, key

    def _set_lookup(self, record: Record, name: str, target: str, target_id: str) -> None:
        record[f"_{name}_value"] = target_id
        record[f"{_TYPE_PREFIX}{name}"] = target

    def _clear_lookup(self, record: Record, name: str) -> None:
        record[f"_{name}_value"] = None
        record.pop(f"{_TYPE_PREFIX}{name}", None)

    def _defaults(self, table: Table, record: Record, caller: Caller, *, seeding: bool) -> None:
        now = now_iso()
        record["createdon"] = record.get("overriddencreatedon") or record.get("createdon") or now
        record["modifiedon"] = (
            record.get("modifiedon") if seeding and record.get("modifiedon") else now
        )
        record["versionnumber"] = self._next_version()
        if table.state is not None:
            state = record.get("statecode")
            if state is None or state not in table.state.statuses:
                state = 0
            record["statecode"] = state
            if record.get("statuscode") is None:
                record["statuscode"] = table.state.default_status(state)
            elif seeding and record["statuscode"] not in table.state.statuses[state]:
                raise self._state_error(
                    table, record[table.primary_id], state, record["statuscode"]
                )
        if table.owned and record.get("_ownerid_value") is None and "ownerid" in table.lookups:
            self._set_lookup(record, "ownerid", "systemuser", caller.systemuser_id)
        for audit in ("createdby", "modifiedby"):
            if audit in table.lookups and record.get(f"_{audit}_value") is None:
                self._set_lookup(record, audit, "systemuser", caller.systemuser_id)
        if table.activity:
            record["activitytypecode"] = table.logical_name
            if table.logical_name == "phonecall" and record.get("directioncode") is None:
                record["directioncode"] = False
        if table.logical_name == "activityparty":
            record.setdefault("ispartydeleted", False)
        if table.logical_name == "incident":
            self._case_defaults(record, seeding=seeding)
        if table.logical_name == "systemuser" and record.get("isdisabled") is None:
            record["isdisabled"] = False  # Dataverse's default: an enabled user
        self._computed(table, record)
        for name in table.columns:
            record.setdefault(name, None)
        for lookup in table.lookups.values():
            record.setdefault(lookup.value_column, None)

    def _case_defaults(self, record: Record, *, seeding: bool) -> None:
        """A case needs its customer; its ticket number is an auto-number when not given."""
        if not record.get("_customerid_value") and not seeding:
            raise ODataError(
                400, E.INVALID_ARGUMENT, "You should specify a parent contact or account."
            )
        if not record.get("ticketnumber"):
            self._tickets += 1
            suffix = "".join(random.choices(string.ascii_uppercase + string.digits, k=6))
            record["ticketnumber"] = f"CAS-{1000 + self._tickets:05d}-{suffix}"

    def _computed(self, table: Table, record: Record) -> None:
        if table.logical_name == "annotation":  # what the note is attached to, by its lookup
            record["objecttypecode"] = record.get(f"{_TYPE_PREFIX}objectid")
        if "fullname" in table.columns and not table.columns["fullname"].writable:
            parts = [p for p in (record.get("firstname"), record.get("lastname")) if p]
            if parts:  # a seeded record may carry only a fullname
                record["fullname"] = " ".join(parts)

    def _state_error(self, table: Table, record_id: str, state: int, status: Any) -> ODataError:
        names = table.state.state_names if table.state else {}
        return ODataError(
            400,
            E.INVALID_STATE,
            f"{status} is not a valid status code for state code "
            f"{table.logical_name.capitalize()}State.{names.get(state, state)} on "
            f"{table.logical_name} with Id {record_id}.",
        )

    def _check_state(
        self,
        table: Table,
        record: Record,
        record_id: str,
        body: dict[str, Any],
        previous_state: int,
    ) -> None:
        if table.state is None:
            return
        state = record.get("statecode")
        if state not in table.state.statuses:
            raise ODataError(
                400,
                E.INVALID_STATE,
                f"{state} is not a valid state code on {table.logical_name} with Id {record_id}.",
            )
        if "statecode" in body and "statuscode" not in body and state != previous_state:
            record["statuscode"] = table.state.default_status(state)
        if record.get("statuscode") not in table.state.statuses[state]:
            raise self._state_error(table, record_id, state, record.get("statuscode"))

    def _replace_children(
        self, table: Table, record_id: str, nav: str, items: list[Any], caller: Caller
    ) -> None:
        child_set, fk = table.collections[nav]
        child_table = self.table_for_set(child_set)
        assert child_table is not None
        kids = self.data[child_table.logical_name]
        # The list replaces the current children; on any failure the old ones come back.
        previous = {k: r for k, r in kids.items() if r.get(fk) == record_id}
        for kid in previous:
            del kids[kid]
        fk_lookup = fk[1 : -len("_value")]
        added: list[str] = []
        try:
            for item in items:
                if not isinstance(item, dict):
                    raise E.payload_error(table, f"An entity was expected in '{nav}'.")
                if child_table.logical_name == "activityparty":
                    mask = item.get("participationtypemask")
                    if isinstance(mask, bool) or not isinstance(mask, int) or not 1 <= mask <= 11:
                        raise E.payload_error(
                            child_table,
                            f"Cannot convert the literal '{mask}' to a participation type "
                            "(participationtypemask 1..11).",
                        )
                child_id = self.create(child_table, item, caller)
                added.append(child_id)
                self._set_lookup(kids[child_id], fk_lookup, table.logical_name, record_id)
        except ODataError:
            for kid in added:
                kids.pop(kid, None)
            kids.update(previous)
            raise

    # ---- reads -------------------------------------------------------------------------------

    def get(self, table: Table, record_id: str) -> Record:
        with self.lock:
            record = self.data[table.logical_name].get(record_id.lower())
            if record is None:
                raise E.record_not_found(table, record_id.lower())
            return dict(record)

    def query(
        self,
        table: Table,
        *,
        filter_text: str | None = None,
        orderby_text: str | None = None,
        extra_filter: tuple[str, str] | None = None,
    ) -> list[Record]:
        with self.lock:
            rows = [dict(r) for r in self.data[table.logical_name].values()]
            if extra_filter is not None:
                rows = [r for r in rows if r.get(extra_filter[0]) == extra_filter[1]]
            if filter_text:
                node: Node = FilterParser(
                    filter_text, table, lambda n: self.edm_of(table, n)
                ).parse()
                rows = [r for r in rows if evaluate(node, r)]
            if orderby_text:
                order = parse_orderby(orderby_text, table, lambda n: self.edm_of(table, n))
                rows = sort_records(rows, order, lambda n: self.edm_of(table, n))
            else:
                rows.sort(key=lambda r: (r.get("createdon") or "", r.get("versionnumber") or 0))
            return rows

    def render(
        self,
        table: Table,
        record: Record,
        *,
        select: list[str] | None,
        expand: list[ExpandItem],
        annotations: bool,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"@odata.etag": etag(record)}
        names = select if select else [n for n in record if not n.startswith("@")]
        if table.primary_id not in names:
            names = [*names, table.primary_id]  # the key always comes back
        for name in names:
            value = record.get(name)
            out[name] = value
            if annotations:
                self._annotate(table, record, name, value, out)
        for item in expand:
            out[item.nav] = self._expand(table, record, item, annotations)
        return out

    def _annotate(
        self, table: Table, record: Record, name: str, value: Any, out: dict[str, Any]
    ) -> None:
        if value is None:
            return
        lookup = table.lookup_by_value_column(name)
        if lookup is not None:
            target = record.get(f"{_TYPE_PREFIX}{lookup.name}")
            if target:
                nav = next((n for n, t in lookup.navs.items() if t == target), lookup.name)
                out[f"{name}@Microsoft.Dynamics.CRM.associatednavigationproperty"] = nav
                out[f"{name}@Microsoft.Dynamics.CRM.lookuplogicalname"] = target
                related = self.data.get(target, {}).get(value)
                if related is not None:
                    primary = self.tables[target].primary_name
                    out[f"{name}@OData.Community.Display.V1.FormattedValue"] = related.get(primary)
            return
        if name == "statecode" and table.state is not None:
            out[f"{name}@OData.Community.Display.V1.FormattedValue"] = table.state.state_names.get(
                value, str(value)
            )
        elif isinstance(value, bool):
            out[f"{name}@OData.Community.Display.V1.FormattedValue"] = "Yes" if value else "No"

    def _expand(self, table: Table, record: Record, item: ExpandItem, annotations: bool) -> Any:
        if item.nav in table.collections:
            child_set, fk = table.collections[item.nav]
            child = self.table_for_set(child_set)
            assert child is not None
            rows = self.query(
                child,
                filter_text=item.options.get("$filter"),
                orderby_text=item.options.get("$orderby"),
                extra_filter=(fk, record[table.primary_id]),
            )
            if "$top" in item.options:
                rows = rows[: int(item.options["$top"])]
            select = self._select(child, item.options.get("$select"))
            return [
                self.render(child, r, select=select, expand=[], annotations=annotations)
                for r in rows
            ]
        target = table.nav_target(item.nav)
        if target is None:
            raise E.property_not_found(item.nav, table)
        lookup, target_name = target
        if record.get(f"{_TYPE_PREFIX}{lookup.name}") != target_name:
            return None
        related = self.data[target_name].get(record.get(lookup.value_column) or "")
        if related is None:
            return None
        target_table = self.tables[target_name]
        select = self._select(target_table, item.options.get("$select"))
        return self.render(target_table, related, select=select, expand=[], annotations=annotations)

    def _select(self, table: Table, text: str | None) -> list[str] | None:
        if not text:
            return None
        return parse_select(text, table, table.readable)

    def parse_select(self, table: Table, text: str | None) -> list[str] | None:
        return self._select(table, text)

    # ---- actions -----------------------------------------------------------------------------

    def add_to_queue(self, queue_id: str, target: Any, caller: Caller) -> str:
        with self.lock:
            queue_table = self.tables["queue"]
            queue_id = queue_id.lower()
            if queue_id not in self.data["queue"]:
                raise E.record_not_found(queue_table, queue_id)
            if not isinstance(target, dict):
                raise ODataError(400, E.INVALID_ARGUMENT, "Target is required.")
            odata_type = str(target.get("@odata.type", "")).lstrip("#")
            logical = odata_type.rsplit(".", 1)[-1] if odata_type else ""
            table = self.tables.get(logical)
            queueable = self.tables["queueitem"].lookups["objectid"].navs
            if table is None or f"objectid_{logical}" not in queueable:
                raise ODataError(
                    400, E.INVALID_ARGUMENT, f"Target type '{odata_type}' cannot be queued."
                )
            object_id = str(target.get(table.primary_id) or "").lower()
            if object_id not in self.data[logical]:
                raise E.record_not_found(table, object_id)
            items = self.data["queueitem"]
            for item_id, item in items.items():
                if item.get("_objectid_value") == object_id and item.get("statecode") == 0:
                    if item.get("_queueid_value") != queue_id:
                        # AddToQueue moves an active item from its current queue.
                        item["_queueid_value"] = queue_id
                        item["modifiedon"] = now_iso()
                        item["versionnumber"] = self._next_version()
                    return item_id
            obj = self.data[logical][object_id]
            item_id = self.create(
                self.tables["queueitem"],
                {
                    "title": obj.get(table.primary_name),
                    "objecttypecode": table.object_type_code,
                    "enteredon": now_iso(),
                    "queueid@odata.bind": f"/queues({queue_id})",
                    f"objectid_{logical}@odata.bind": f"/{table.entity_set}({object_id})",
                },
                caller,
            )
            return item_id

    # ---- security roles ----------------------------------------------------------------------

    def add_privileges_role(self, role_id: str, body: Any) -> None:
        """AddPrivilegesRole: grant each privilege at its depth (a granted one takes the new
        depth). All or nothing: an unknown privilege or depth refuses the whole request."""
        with self.lock:
            role_id = role_id.lower()
            if role_id not in self.data["role"]:
                raise E.record_not_found(self.tables["role"], role_id)
            items = body.get("Privileges") if isinstance(body, dict) else None
            if not isinstance(items, list) or not items:
                raise ODataError(400, E.INVALID_ARGUMENT, "Privileges is required.")
            grants: dict[str, str] = {}
            for item in items:
                pid = str((item or {}).get("PrivilegeId", "")).lower()
                depth = (item or {}).get("Depth")
                if pid not in self.data["privilege"]:
                    raise ODataError(404, E.NOT_FOUND, f"privilege With Id = {pid} Does Not Exist")
                if depth not in DEPTHS:
                    raise ODataError(
                        400, E.INVALID_ARGUMENT, f"Requested value '{depth}' was not found."
                    )
                grants[pid] = depth
            self.role_privileges.setdefault(role_id, {}).update(grants)
            record = self.data["role"][role_id]
            record["modifiedon"] = now_iso()
            record["versionnumber"] = self._next_version()

    def privileges_of_role(self, role_id: str) -> list[dict[str, Any]]:
        """RetrieveRolePrivilegesRole's RolePrivileges."""
        with self.lock:
            role_id = role_id.lower()
            role = self.data["role"].get(role_id)
            if role is None:
                raise E.record_not_found(self.tables["role"], role_id)
            return [
                {
                    "Depth": depth,
                    "PrivilegeId": pid,
                    "BusinessUnitId": role.get("_businessunitid_value"),
                    "PrivilegeName": self.data["privilege"][pid]["name"],
                }
                for pid, depth in self.role_privileges.get(role_id, {}).items()
            ]

    # ---- metadata ----------------------------------------------------------------------------

    def table_by_logical_name(self, logical_name: str) -> Table:
        table = self.tables.get(logical_name.lower())
        if table is None:
            raise ODataError(
                404,
                E.NOT_FOUND,
                f"Could not find entity with LogicalName '{logical_name}'.",
            )
        return table

    def attribute(self, table: Table, logical_name: str) -> dict[str, Any]:
        with self.lock:
            column = table.columns.get(logical_name.lower())
            lookup = table.lookups.get(logical_name.lower())
            if column is None and lookup is None:
                raise ODataError(
                    404,
                    E.NOT_FOUND,
                    f"Could not find attribute with LogicalName '{logical_name}' on entity "
                    f"'{table.logical_name}'.",
                )
            for meta in self.attributes.values():
                if meta.entity == table.logical_name and meta.body["LogicalName"] == (
                    logical_name.lower()
                ):
                    return dict(meta.body)
            return _builtin_attribute(table, column, lookup)

    def attribute_by_id(self, table: Table, metadata_id: str) -> dict[str, Any]:
        with self.lock:
            meta = self.attributes.get(metadata_id.lower())
            if meta is None or meta.entity != table.logical_name:
                raise ODataError(404, E.NOT_FOUND, f"Could not find attribute {metadata_id}.")
            return dict(meta.body)

    def attributes_of(self, table: Table) -> list[dict[str, Any]]:
        with self.lock:
            out = [self.attribute(table, name) for name in table.columns]
            out += [self.attribute(table, name) for name in table.lookups]
            return out

    def create_attribute(self, table: Table, body: dict[str, Any]) -> str:
        with self.lock:
            odata_type = str(body.get("@odata.type", "")).lstrip("#")
            kinds = {
                "Microsoft.Dynamics.CRM.StringAttributeMetadata": (STRING, "String"),
                "Microsoft.Dynamics.CRM.MemoAttributeMetadata": (STRING, "Memo"),
                "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata": (DATETIME, "DateTime"),
                "Microsoft.Dynamics.CRM.IntegerAttributeMetadata": (INT, "Integer"),
                "Microsoft.Dynamics.CRM.BooleanAttributeMetadata": (BOOL, "Boolean"),
                "Microsoft.Dynamics.CRM.DecimalAttributeMetadata": (DECIMAL, "Decimal"),
            }
            if odata_type not in kinds:
                raise ODataError(
                    400,
                    E.INVALID_ARGUMENT,
                    f"The attribute type '{odata_type}' is not supported by the emulator.",
                )
            schema_name = body.get("SchemaName")
            if not isinstance(schema_name, str) or not re.fullmatch(
                r"[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+", schema_name
            ):
                raise ODataError(
                    400,
                    E.INVALID_ARGUMENT,
                    "A custom attribute needs a SchemaName with a customization prefix "
                    "(e.g. new_RecordingUrl).",
                )
            logical = schema_name.lower()
            if logical in table.columns or logical in table.lookups:
                raise ODataError(
                    400,
                    "0x80047013",
                    f"An attribute with the specified name {logical} already exists.",
                )
            edm, attribute_type = kinds[odata_type]
            max_length = body.get("MaxLength") if edm == STRING else None
            if edm == STRING and not isinstance(max_length, int):
                max_length = 100 if attribute_type == "String" else 2000
            table.columns[logical] = Column(
                logical, edm, max_length=max_length, custom=True, metadata_type=attribute_type
            )
            metadata_id = str(uuid.uuid4())
            stored = dict(body)
            stored.update(
                {
                    "@odata.type": f"#{odata_type}",
                    "MetadataId": metadata_id,
                    "LogicalName": logical,
                    "SchemaName": schema_name,
                    "EntityLogicalName": table.logical_name,
                    "AttributeType": attribute_type,
                    "AttributeTypeName": {"Value": f"{attribute_type}Type"},
                    "IsCustomAttribute": True,
                }
            )
            if max_length is not None:
                stored["MaxLength"] = max_length
            self.attributes[metadata_id] = AttributeMeta(metadata_id, table.logical_name, stored)
            for record in self.data[table.logical_name].values():
                record.setdefault(logical, None)
            return metadata_id


def _builtin_attribute(
    table: Table, column: Column | None, lookup: Lookup | None
) -> dict[str, Any]:
    if lookup is not None:
        return {
            "@odata.type": "#Microsoft.Dynamics.CRM.LookupAttributeMetadata",
            "MetadataId": str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{table.logical_name}.{lookup.name}")
            ),
            "LogicalName": lookup.name,
            "SchemaName": lookup.name,
            "EntityLogicalName": table.logical_name,
            "AttributeType": "Lookup",
            "AttributeTypeName": {"Value": "LookupType"},
            "IsCustomAttribute": False,
            "Targets": sorted(set(lookup.navs.values())),
        }
    assert column is not None
    types = {
        STRING: "String",
        GUID: "Uniqueidentifier",
        INT: "Integer",
        BOOL: "Boolean",
        DATETIME: "DateTime",
        DECIMAL: "Decimal",
    }
    kind = column.metadata_type or types[column.edm]
    if column.name == table.primary_id:
        kind = "Uniqueidentifier"
    elif column.name in ("statecode",):
        kind = "State"
    elif column.name in ("statuscode",):
        kind = "Status"
    body: dict[str, Any] = {
        "@odata.type": f"#Microsoft.Dynamics.CRM.{kind}AttributeMetadata",
        "MetadataId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{table.logical_name}.{column.name}")),
        "LogicalName": column.name,
        "SchemaName": column.name,
        "EntityLogicalName": table.logical_name,
        "AttributeType": kind,
        "AttributeTypeName": {"Value": f"{kind}Type"},
        "IsCustomAttribute": column.custom,
        "IsValidForCreate": column.writable,
        "IsValidForUpdate": column.writable,
    }
    if column.max_length is not None:
        body["MaxLength"] = column.max_length
    return body


def etag(record: Record) -> str:
    return f'W/"{record.get("versionnumber")}"'
