"""`make dataverse-setup`: create the custom columns on `phonecall` (the call's seconds, the
enrichment's link and metrics) through the Dataverse metadata API (docs/dataverse-setup.md).
Idempotent: a column that exists is left as it is, so a second run reads once and writes nothing.

Settings come from the environment, else from local.settings.json (so it works against the
local emulator of `make run`): DATAVERSE_URL, DATAVERSE_CLIENT_ID, DATAVERSE_CLIENT_SECRET,
ENTRA_AUTHORITY_HOST, ENTRA_TENANT_ID, DATAVERSE_PUBLISHER_PREFIX, TLS_CA_BUNDLE.
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

from shared.adapters.dataverse import DataverseClient  # noqa: E402
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
    return client, EnrichmentColumns(s["DATAVERSE_PUBLISHER_PREFIX"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--settings", type=Path, default=ROOT / "local.settings.json")
    parser.add_argument("--dry-run", action="store_true", help="report, create nothing")
    parser.add_argument("--solution", help="unmanaged solution to add the columns to")
    args = parser.parse_args(argv)
    client, columns = client_from(_environment(args.settings))
    results = ensure_columns(client, columns, dry_run=args.dry_run, solution=args.solution)
    for r in results:
        detail = f" ({r.detail})" if r.detail else ""
        print(f"{ENTITY}.{r.logical_name} [{r.kind}]: {r.action}{detail}")
    created = sum(r.action == "created" for r in results)
    print(f"{created} created, {len(results) - created} unchanged")
    return 1 if any(r.action in ("conflict", "missing") for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
