"""`make d365-setup` against the Dataverse emulator over HTTPS: the custom columns, the CIF 1.0 and
2.0 channel providers pointing at the panel, and the "Phone User" role; a second run only reads
(the emulator's request log shows no write), and the emulator refuses what Dataverse refuses."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from scripts.dataverse_setup import PROVIDER_NAME, ROLE_NAME, ROLE_PRIVILEGES
from shared.adapters.dataverse import DataverseClient, DataverseError
from tests.fixtures.entra_dataverse import (
    APP_CLIENT_ID,
    APP_CLIENT_SECRET,
    TENANT_ID,
    app_dataverse_client,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BASE = "https://phone.contoso.example"


def _env(
    local_tls: LocalTLS, entra: EntraEmulator, dataverse: DataverseEmulator, base: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAVERSE_", "ENTRA_"))}
    env.update(
        {
            "DATAVERSE_URL": dataverse.url,
            "DATAVERSE_CLIENT_ID": APP_CLIENT_ID,
            "DATAVERSE_CLIENT_SECRET": APP_CLIENT_SECRET,
            "ENTRA_AUTHORITY_HOST": entra.url,
            "ENTRA_TENANT_ID": TENANT_ID,
            "TLS_CA_BUNDLE": str(local_tls.ca_path),
            "PUBLIC_BASE_URL": base,
        }
    )
    return env


def make_setup(env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["make", "--no-print-directory", "-s", "d365-setup"]
    if args:
        command.append(f"ARGS={' '.join(args)}")
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def writes(dataverse: DataverseEmulator) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in dataverse.requests_seen() if r["method"] != "GET"]


def clear_log(dataverse: DataverseEmulator) -> None:
    with dataverse._lock:  # the control API's DELETE /_control/requests does the same
        dataverse._log.clear()


def test_a_second_run_changes_nothing(
    local_tls: LocalTLS, entra: EntraEmulator, dataverse_reset: DataverseEmulator
) -> None:
    env = _env(local_tls, entra, dataverse_reset, BASE)
    first = make_setup(env)
    assert first.returncode == 0, first.stdout + first.stderr
    api = "/api/data/v9.2"
    done = writes(dataverse_reset)
    assert ("POST", f"{api}/msdyn_ciproviders") in done
    assert ("POST", f"{api}/msdyn_channelproviders") in done
    assert ("POST", f"{api}/roles") in done
    assert sum(p.endswith("/Microsoft.Dynamics.CRM.AddPrivilegesRole") for _, p in done) == 1
    assert sum(p.endswith("/Attributes") for _, p in done) >= 4  # the enrichment's columns

    [cif1] = dataverse_reset.records("msdyn_ciproviders")
    [cif2] = dataverse_reset.records("msdyn_channelproviders")
    for provider in (cif1, cif2):
        assert provider["msdyn_name"] == PROVIDER_NAME
        assert provider["msdyn_landingurl"] == f"{BASE}/api/panel/"
        assert provider["msdyn_trusteddomain"] == BASE
    assert cif1["msdyn_clicktoact"] is True and cif2["msdyn_enableoutbound"] is True
    [role] = dataverse_reset.records("roles")
    assert role["name"] == ROLE_NAME
    granted = {
        p["PrivilegeName"]: p["Depth"]
        for p in dataverse_reset.store.privileges_of_role(role["roleid"])
    }
    assert granted == ROLE_PRIVILEGES
    assert granted["prvCreateActivity"] == "Basic"  # Phone Call rights are Activity rights

    clear_log(dataverse_reset)
    second = make_setup(env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert writes(dataverse_reset) == []  # the request log: reads only
    assert dataverse_reset.requests_seen(), "the second run did read the org"
    assert "records: 0 written" in second.stdout
    assert "created" not in second.stdout.replace("0 created", "")
    assert len(dataverse_reset.records("roles")) == 1


def test_a_moved_app_updates_only_the_panel_url_of_both_providers(
    local_tls: LocalTLS, entra: EntraEmulator, dataverse_reset: DataverseEmulator
) -> None:
    assert make_setup(_env(local_tls, entra, dataverse_reset, BASE)).returncode == 0
    clear_log(dataverse_reset)
    moved = "https://phone2.contoso.example"
    third = make_setup(_env(local_tls, entra, dataverse_reset, moved))
    assert third.returncode == 0, third.stdout + third.stderr
    done = writes(dataverse_reset)
    assert sorted(m for m, _ in done) == ["PATCH", "PATCH"]
    patched = [r["body"] for r in dataverse_reset.requests_seen() if r["method"] == "PATCH"]
    assert (
        patched == [{"msdyn_landingurl": f"{moved}/api/panel/", "msdyn_trusteddomain": moved}] * 2
    )


def test_a_dry_run_writes_nothing_and_reports_what_is_missing(
    local_tls: LocalTLS, entra: EntraEmulator, dataverse_reset: DataverseEmulator
) -> None:
    run = make_setup(_env(local_tls, entra, dataverse_reset, BASE), "--dry-run")
    assert run.returncode != 0  # the script exits 1 (make reports it as 2)
    assert f"role {ROLE_NAME}: missing" in run.stdout
    assert "CIF 2.0 channel provider: missing" in run.stdout
    assert writes(dataverse_reset) == []


# ---------------------------------------------------------------------- the emulator's refusals


@pytest.fixture
def client(
    local_tls: LocalTLS, entra: EntraEmulator, dataverse_reset: DataverseEmulator
) -> DataverseClient:
    return app_dataverse_client(local_tls, entra, dataverse_reset, sleep=lambda s: None)


def _role(client: DataverseClient) -> str:
    bu = (client.request("GET", "WhoAmI").body or {})["BusinessUnitId"]
    created = client.request(
        "POST", "roles", body={"name": "R", "businessunitid@odata.bind": f"/businessunits({bu})"}
    )
    return str(created.headers["OData-EntityId"]).rsplit("(", 1)[-1].rstrip(")")


def test_add_privileges_refuses_an_unknown_privilege_or_depth_and_grants_nothing(
    client: DataverseClient,
) -> None:
    role_id = _role(client)
    [read_contact] = client.request(
        "GET", "privileges?$select=privilegeid&$filter=name eq 'prvReadContact'"
    ).body["value"]  # type: ignore[index]
    action = f"roles({role_id})/Microsoft.Dynamics.CRM.AddPrivilegesRole"
    good = {"PrivilegeId": read_contact["privilegeid"], "Depth": "Global"}
    with pytest.raises(DataverseError) as unknown:
        client.request(
            "POST",
            action,
            body={"Privileges": [good, {"PrivilegeId": "00000000-0000-0000-0000-00000000dead"}]},
        )
    assert unknown.value.status == 404
    with pytest.raises(DataverseError) as bad_depth:
        client.request("POST", action, body={"Privileges": [{**good, "Depth": "Everything"}]})
    assert bad_depth.value.status == 400
    held = client.request(
        "GET", f"roles({role_id})/Microsoft.Dynamics.CRM.RetrieveRolePrivilegesRole()"
    ).body
    assert held["RolePrivileges"] == []  # type: ignore[index]
    client.request("POST", action, body={"Privileges": [good]})
    held = client.request(
        "GET", f"roles({role_id})/Microsoft.Dynamics.CRM.RetrieveRolePrivilegesRole()"
    ).body
    assert [(p["PrivilegeName"], p["Depth"]) for p in held["RolePrivileges"]] == [  # type: ignore[index]
        ("prvReadContact", "Global")
    ]


def test_a_role_must_belong_to_an_existing_business_unit(client: DataverseClient) -> None:
    with pytest.raises(DataverseError) as refused:
        client.request(
            "POST",
            "roles",
            body={
                "name": "Orphan",
                "businessunitid@odata.bind": "/businessunits(00000000-0000-0000-0000-0000000000b1)",
            },
        )
    assert refused.value.status in (400, 404)
