"""`make d365-setup`: prepare a D365 org for the web phone (docs/dataverse-setup.md): the
custom columns on `phonecall` (the call's seconds, the enrichment's link and metrics; metadata
API), the channel provider records of Channel Integration Framework 1.0 and 2.0 that embed the
panel, and the "Phone User" security role with its privileges. Idempotent: what exists as
wanted is left as it is, so a second run only reads.

Settings come from the environment, else from local.settings.json (so it works against the
local emulator of `make run`): DATAVERSE_URL, DATAVERSE_CLIENT_ID, DATAVERSE_CLIENT_SECRET,
ENTRA_AUTHORITY_HOST, ENTRA_TENANT_ID, DATAVERSE_PUBLISHER_PREFIX, TLS_CA_BUNDLE, PUBLIC_BASE_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.adapters.dataverse import DataverseClient, DataverseError  # noqa: E402
from shared.config import SETTINGS  # noqa: E402
from shared.domain.enrichment import CustomColumn, EnrichmentColumns  # noqa: E402

ENTITY = "phonecall"
LANGUAGE = 1033
ODATA_TYPES = {
    "String": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
    "DateTime": "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata",
    "Integer": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
}
NEEDED = (
    "DATAVERSE_URL",
    "DATAVERSE_CLIENT_ID",
    "DATAVERSE_CLIENT_SECRET",
    "ENTRA_AUTHORITY_HOST",
    "ENTRA_TENANT_ID",
    "DATAVERSE_PUBLISHER_PREFIX",
    "TLS_CA_BUNDLE",
    "HTTP_TIMEOUT_SECONDS",
    "PUBLIC_BASE_URL",
)


@dataclass(frozen=True)
class ColumnResult:
    logical_name: str
    kind: str
    action: str  # created | exists | conflict | missing (dry run)
    detail: str = ""


def _label(text: str) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.Label",
        "LocalizedLabels": [
            {
                "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
                "Label": text,
                "LanguageCode": LANGUAGE,
            }
        ],
    }


def column_body(column: CustomColumn) -> dict[str, Any]:
    """The attribute definition POSTed to EntityDefinitions(LogicalName='phonecall')/Attributes."""
    body: dict[str, Any] = {
        "@odata.type": ODATA_TYPES[column.kind],
        "SchemaName": column.schema_name,
        "DisplayName": _label(column.label),
        "Description": _label(column.description),
        "RequiredLevel": {
            "Value": "None",
            "CanBeChanged": True,
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
        },
    }
    if column.kind == "String":
        body.update({"MaxLength": column.max_length, "FormatName": {"Value": "Url"}})
    elif column.kind == "DateTime":
        body.update({"Format": "DateAndTime", "DateTimeBehavior": {"Value": "UserLocal"}})
    elif column.kind == "Integer":
        body.update({"Format": "None", "MinValue": 0, "MaxValue": 2147483647})
    return body


def ensure_columns(
    client: DataverseClient,
    columns: EnrichmentColumns,
    *,
    dry_run: bool = False,
    solution: str | None = None,
) -> list[ColumnResult]:
    """Create the columns `phonecall` lacks: one GET, then one POST per missing column."""
    base = f"EntityDefinitions(LogicalName='{ENTITY}')/Attributes"
    reply = client.request("GET", f"{base}?$select=LogicalName,AttributeType")
    existing = {
        str(a.get("LogicalName", "")).lower(): str(a.get("AttributeType", ""))
        for a in (reply.body or {}).get("value", [])
    }
    headers = {"MSCRM.SolutionUniqueName": solution} if solution else None
    results = []
    for column in columns.definitions():
        found = existing.get(column.logical_name)
        if found is not None:
            action = "exists" if found == column.kind else "conflict"
            detail = "" if found == column.kind else f"is {found}, expected {column.kind}"
            results.append(ColumnResult(column.logical_name, column.kind, action, detail))
        elif dry_run:
            results.append(ColumnResult(column.logical_name, column.kind, "missing"))
        else:
            client.request("POST", base, body=column_body(column), headers=headers)
            results.append(ColumnResult(column.logical_name, column.kind, "created"))
    return results


# ---------------------------------------------------------------- records (CIF, roles)


@dataclass(frozen=True)
class Change:
    """What the set-up did to one record (or would do, in a dry run)."""

    item: str
    action: str  # created | updated | exists | missing | skipped
    detail: str = ""


PROVIDER_NAME = "D365 Phone"
ROLE_NAME = "Phone User"
# CIF's option values for its API version (msdyn_ciproviderapiversion / msdyn_apiversion).
CIF_API_VERSION = 192350000


def channel_providers(public_base_url: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(label, entity set, id column, wanted values) of the CIF 1.0 and CIF 2.0 providers."""
    panel = f"{public_base_url.rstrip('/')}/api/panel/"
    common = {
        "msdyn_name": PROVIDER_NAME,
        "msdyn_label": "Phone",
        "msdyn_landingurl": panel,
        "msdyn_sortorder": 1,
        "msdyn_trusteddomain": public_base_url.rstrip("/"),
    }
    return [
        (
            "CIF 1.0 channel provider",
            "msdyn_ciproviders",
            "msdyn_ciproviderid",
            {**common, "msdyn_clicktoact": True, "msdyn_ciproviderapiversion": CIF_API_VERSION},
        ),
        (
            "CIF 2.0 channel provider",
            "msdyn_channelproviders",
            "msdyn_channelproviderid",
            {**common, "msdyn_enableoutbound": True, "msdyn_apiversion": CIF_API_VERSION},
        ),
    ]


# Privilege name -> depth. Phone Call is an activity: its rights are the Activity privileges.
ROLE_PRIVILEGES = {
    "prvReadContact": "Global",
    "prvReadAccount": "Global",
    "prvReadLead": "Global",
    "prvReadUser": "Global",
    "prvAppendToContact": "Global",
    "prvAppendToAccount": "Global",
    "prvAppendToLead": "Global",
    "prvCreateActivity": "Basic",
    "prvReadActivity": "Local",
    "prvWriteActivity": "Basic",
    "prvAppendActivity": "Basic",
    "prvAppendToActivity": "Basic",
    # Notes (annotation): the whole notes of a call are a note on its Phone Call, written by the
    # app; agents read them as they read the activities (their business unit's) and may add
    # their own to their calls.
    "prvCreateNote": "Basic",
    "prvReadNote": "Local",
    "prvWriteNote": "Basic",
    "prvAppendNote": "Basic",
    "prvReadQueue": "Global",
    "prvReadQueueItem": "Local",
    "prvReadmsdyn_ciprovider": "Global",  # CIF 1.0 reads its provider as the signed-in user
    "prvReadmsdyn_channelprovider": "Global",  # CIF 2.0 likewise
}
_DEPTH_ORDER = ("Basic", "Local", "Deep", "Global")


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _missing_entity_set(exc: DataverseError) -> bool:
    return exc.status == 404 and "segment" in exc.message


def ensure_channel_providers(
    client: DataverseClient, public_base_url: str, *, dry_run: bool = False
) -> list[Change]:
    """Each provider: one GET; a POST when missing, a PATCH of what differs, else nothing."""
    changes = []
    for label, entity_set, id_column, wanted in channel_providers(public_base_url):
        select = ",".join([id_column, *wanted])
        try:
            reply = client.request(
                "GET",
                f"{entity_set}?$select={select}&$filter=msdyn_name eq '{_quote(PROVIDER_NAME)}'",
            )
        except DataverseError as exc:
            if _missing_entity_set(exc):
                changes.append(Change(label, "skipped", "that CIF solution is not installed"))
                continue
            raise
        found = (reply.body or {}).get("value", [])
        if not found:
            if not dry_run:
                client.request("POST", entity_set, body=wanted)
            changes.append(
                Change(label, "missing" if dry_run else "created", wanted["msdyn_landingurl"])
            )
            continue
        record = found[0]
        differs = {k: v for k, v in wanted.items() if record.get(k) != v}
        if not differs:
            changes.append(Change(label, "exists"))
            continue
        if not dry_run:
            client.request("PATCH", f"{entity_set}({record[id_column]})", body=differs)
        changes.append(
            Change(label, "missing" if dry_run else "updated", ", ".join(sorted(differs)))
        )
    return changes


def ensure_security_role(client: DataverseClient, *, dry_run: bool = False) -> list[Change]:
    """The "Phone User" role in the caller's business unit, with at least ROLE_PRIVILEGES."""
    who = client.request("GET", "WhoAmI").body or {}
    business_unit = str(who["BusinessUnitId"])
    reply = client.request(
        "GET",
        f"roles?$select=roleid,name&$filter=name eq '{_quote(ROLE_NAME)}'"
        f" and _businessunitid_value eq {business_unit}",
    )
    roles = (reply.body or {}).get("value", [])
    changes = []
    if roles:
        role_id: str | None = str(roles[0]["roleid"])
        changes.append(Change(f"role {ROLE_NAME}", "exists"))
    elif dry_run:
        role_id = None
        changes.append(Change(f"role {ROLE_NAME}", "missing"))
    else:
        created = client.request(
            "POST",
            "roles",
            body={
                "name": ROLE_NAME,
                "description": "Uses the D365 Phone web phone: reads customers and colleagues, "
                "logs Phone Call activities.",
                "businessunitid@odata.bind": f"/businessunits({business_unit})",
            },
        )
        entity = created.headers.get("OData-EntityId", "")
        role_id = entity.rsplit("(", 1)[-1].rstrip(")")
        changes.append(Change(f"role {ROLE_NAME}", "created"))

    names = " or ".join(f"name eq '{n}'" for n in ROLE_PRIVILEGES)
    known = {
        str(p["name"]): str(p["privilegeid"])
        for p in (
            client.request("GET", f"privileges?$select=privilegeid,name&$filter={names}").body or {}
        ).get("value", [])
    }
    held: dict[str, str] = {}
    if role_id is not None and roles:
        current = (
            client.request(
                "GET", f"roles({role_id})/Microsoft.Dynamics.CRM.RetrieveRolePrivilegesRole()"
            ).body
            or {}
        )
        held = {
            str(p["PrivilegeId"]).lower(): str(p["Depth"])
            for p in current.get("RolePrivileges", [])
        }
    grants = []
    for name, depth in ROLE_PRIVILEGES.items():
        pid = known.get(name)
        if pid is None:
            changes.append(Change(f"privilege {name}", "skipped", "the org has no such privilege"))
            continue
        have = held.get(pid.lower())
        if have is not None and _DEPTH_ORDER.index(have) >= _DEPTH_ORDER.index(depth):
            continue
        grants.append({"PrivilegeId": pid, "BusinessUnitId": business_unit, "Depth": depth})
        changes.append(Change(f"privilege {name}", "missing" if dry_run else "created", depth))
    if grants and not dry_run and role_id is not None:
        client.request(
            "POST",
            f"roles({role_id})/Microsoft.Dynamics.CRM.AddPrivilegesRole",
            body={
                "Privileges": [
                    {"@odata.type": "Microsoft.Dynamics.CRM.RolePrivilege", **g} for g in grants
                ]
            },
        )
    if not grants:
        changes.append(
            Change(f"role {ROLE_NAME} privileges", "exists", f"{len(ROLE_PRIVILEGES)} wanted")
        )
    return changes


def _environment(settings_file: Path) -> dict[str, str]:
    """The process environment over local.settings.json `Values` (as the Functions host does)."""
    values: dict[str, str] = {}
    if settings_file.is_file():
        values.update(json.loads(settings_file.read_text())["Values"])
    values.update(os.environ)
    return values


def _setting(env: Mapping[str, str], name: str) -> Any:
    setting = SETTINGS[name]
    raw = env.get(name) or setting.default
    if raw is None:
        raise SystemExit(f"{name} is missing (environment or local.settings.json)")
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} {exc}") from None


def client_from(env: Mapping[str, str]) -> tuple[DataverseClient, EnrichmentColumns]:
    client, columns, _ = setup_from(env)
    return client, columns


def setup_from(env: Mapping[str, str]) -> tuple[DataverseClient, EnrichmentColumns, str]:
    """The Dataverse client, the custom columns and PUBLIC_BASE_URL the set-up works with."""
    from shared.adapters.identity import ClientCredentialsTokenProvider

    s = {name: _setting(env, name) for name in NEEDED}
    ca = s["TLS_CA_BUNDLE"] or None
    if ca and not Path(ca).is_absolute():
        ca = str(ROOT / ca)  # local.settings.json names it relative to the app
    tokens = ClientCredentialsTokenProvider(
        s["ENTRA_AUTHORITY_HOST"],
        s["ENTRA_TENANT_ID"],
        s["DATAVERSE_CLIENT_ID"],
        s["DATAVERSE_CLIENT_SECRET"],
        f"{s['DATAVERSE_URL']}/.default",
        ca,
    )
    client = DataverseClient(
        s["DATAVERSE_URL"], tokens.token, ca_bundle=ca, timeout_seconds=s["HTTP_TIMEOUT_SECONDS"]
    )
    return client, EnrichmentColumns(s["DATAVERSE_PUBLISHER_PREFIX"]), s["PUBLIC_BASE_URL"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--settings", type=Path, default=ROOT / "local.settings.json")
    parser.add_argument("--dry-run", action="store_true", help="report, create nothing")
    parser.add_argument("--solution", help="unmanaged solution to add the columns to")
    parser.add_argument(
        "--columns-only", action="store_true", help="only the custom columns (no CIF, no role)"
    )
    args = parser.parse_args(argv)
    client, columns, public_base_url = setup_from(_environment(args.settings))
    results = ensure_columns(client, columns, dry_run=args.dry_run, solution=args.solution)
    for r in results:
        detail = f" ({r.detail})" if r.detail else ""
        print(f"{ENTITY}.{r.logical_name} [{r.kind}]: {r.action}{detail}")
    created = sum(r.action == "created" for r in results)
    print(f"columns: {created} created, {len(results) - created} unchanged")
    failed = any(r.action in ("conflict", "missing") for r in results)
    if not args.columns_only:
        changes = [
            *ensure_channel_providers(client, public_base_url, dry_run=args.dry_run),
            *ensure_security_role(client, dry_run=args.dry_run),
        ]
        for c in changes:
            print(f"{c.item}: {c.action}" + (f" ({c.detail})" if c.detail else ""))
        written = sum(c.action in ("created", "updated") for c in changes)
        print(f"records: {written} written, {len(changes) - written} unchanged")
        failed = failed or any(c.action == "missing" for c in changes)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
