"""The demo data `make run` puts in the emulators: a small CRM in Dataverse (and the customer's
custom columns), a Teams PSTN call in Graph."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulators.common.processes import REPO_ROOT
from emulators.run.options import StartError
from shared.config import Settings

if TYPE_CHECKING:
    from emulators.dataverse import DataverseEmulator
    from emulators.graph import GraphEmulator


# Fixed ids for the demo records, so seeding twice (or in two runs) yields the same records.
_DEMO_NS = uuid.UUID("5f3c2a1e-7b4d-4c8e-9a6f-0d1e2f3a4b5c")
# The demo contact who calls: a known caller for the web phone and for the Teams call below.
DEMO_CALLER = "+358401234567"


def demo_id(name: str) -> str:
    return str(uuid.uuid5(_DEMO_NS, name))


def demo_data(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """A small CRM: an account, two contacts (one known caller), a lead, the agents' users."""
    account_id = demo_id("account:contoso")
    users = []
    for agent in settings.agents:
        first, _, last = agent.name.partition(" ")
        email = f"{agent.id}@contoso.local"
        users.append(
            {
                "systemuserid": agent.system_user_id,
                "firstname": first,
                "lastname": last or agent.id,
                "internalemailaddress": email,
                "domainname": email,
                "azureactivedirectoryobjectid": agent.entra_object_id,
                "isdisabled": False,
                "accessmode": 0,
            }
        )
    return {
        "systemusers": users,
        "accounts": [
            {
                "accountid": account_id,
                "name": "Contoso Oy",
                "accountnumber": "C-1001",
                "telephone1": "+358912345678",
                "emailaddress1": "info@contoso.example",
                "address1_city": "Helsinki",
            }
        ],
        "contacts": [
            {
                "contactid": demo_id("contact:maija"),
                "firstname": "Maija",
                "lastname": "Virtanen",
                "mobilephone": DEMO_CALLER,
                "emailaddress1": "maija.virtanen@contoso.example",
                "jobtitle": "Purchasing manager",
                "parentcustomerid_account@odata.bind": f"/accounts({account_id})",
            },
            {
                "contactid": demo_id("contact:matti"),
                "firstname": "Matti",
                "lastname": "Korhonen",
                "telephone1": "+358501112233",
                "emailaddress1": "matti.korhonen@example.com",
            },
        ],
        "leads": [
            {
                "leadid": demo_id("lead:liisa"),
                "subject": "Interested in the web phone",
                "firstname": "Liisa",
                "lastname": "Laine",
                "companyname": "Fabrikam Oy",
                "telephone1": "+358441234567",
            }
        ],
    }


_PRIMARY_IDS = {
    "systemusers": "systemuserid",
    "accounts": "accountid",
    "contacts": "contactid",
    "leads": "leadid",
}


def create_custom_columns(
    settings_file: Path, *, authority_host: str, dataverse_url: str, ca_path: Path
) -> None:
    """The customer's custom phone call columns (docs/dataverse-setup.md), made as an admin makes
    them: by running `make dataverse-setup`'s script against the emulators; idempotent. A child
    process, so that `emulators/` never imports `scripts/`."""
    env = {
        **os.environ,
        "ENTRA_AUTHORITY_HOST": authority_host,
        "DATAVERSE_URL": dataverse_url,
        "TLS_CA_BUNDLE": str(ca_path),
    }
    script = REPO_ROOT / "scripts" / "dataverse_setup.py"
    done = subprocess.run(
        [sys.executable, str(script), "--settings", str(settings_file)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise StartError(
            f"the custom columns could not be created ({script.name} exited "
            f"{done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}"
        )


def seed_demo_data(dataverse: DataverseEmulator, settings: Settings) -> dict[str, int]:
    """Create the demo records that are not there yet (idempotent); returns how many per set."""
    wanted = demo_data(settings)
    missing: dict[str, list[dict[str, Any]]] = {}
    for entity_set, rows in wanted.items():
        key = _PRIMARY_IDS[entity_set]
        present = {str(r.get(key, "")).lower() for r in dataverse.records(entity_set)}
        todo = [r for r in rows if str(r[key]).lower() not in present]
        if todo:
            missing[entity_set] = todo
    if missing:
        dataverse.seed(missing)
    return {entity_set: len(rows) for entity_set, rows in wanted.items()}


def demo_teams_calls(settings: Settings, now: datetime.datetime) -> list[dict[str, Any]]:
    """One Teams PSTN call the first agent answered from the demo contact, a few minutes ago:
    something for the enterprise-call sync to import as a Phone Call."""
    if not settings.agents:
        return []
    agent = settings.agents[0]
    start = now - datetime.timedelta(minutes=5)
    return [
        {
            "id": demo_id("teams-call:1"),
            "userId": agent.entra_object_id,
            "userPrincipalName": f"{agent.id}@contoso.local",
            "userDisplayName": agent.name,
            "callType": "user_in",
            "callerNumber": DEMO_CALLER,
            # The number Teams rang: the agent's own if it has one (any number works).
            "calleeNumber": next(iter(agent.direct_numbers), "+358101000300"),
            "startDateTime": start,
            "duration": 150,
        }
    ]


def seed_demo_teams_calls(graph: GraphEmulator, settings: Settings) -> int:
    """Put the demo Teams call in Graph's call records (in memory: each run starts empty)."""
    rows = demo_teams_calls(settings, datetime.datetime.now(datetime.UTC))
    graph.seed_pstn_calls(rows)
    return len(rows)
