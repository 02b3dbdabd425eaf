"""The Dataverse emulator answers reads as an impersonated user (CallerObjectId) as its security
model does: own rows at user depth, shared rows, every row at organization depth, none without
the privilege; refusals are 403 0x80040220, a missing row or user 404; the app user reads all."""

from __future__ import annotations

import requests

from emulators.dataverse import DataverseEmulator
from tests.integration.test_dataverse_emulator import api, error_of

ANNA_OID, BEN_OID = "0a000000-0000-4000-8000-00000000000a", "0b000000-0000-4000-8000-00000000000b"


def people(dataverse: DataverseEmulator) -> tuple[str, str, str]:
    anna, ben = dataverse.seed(
        {
            "systemusers": [
                {"fullname": "Anna", "azureactivedirectoryobjectid": ANNA_OID},
                {"fullname": "Ben", "azureactivedirectoryobjectid": BEN_OID},
            ]
        }
    )["systemusers"]
    [call] = dataverse.seed(
        {"phonecalls": [{"subject": "Anna's call", "ownerid@odata.bind": f"/systemusers({anna})"}]}
    )["phonecalls"]
    return anna, ben, call


def read_as(
    http: requests.Session, dataverse: DataverseEmulator, call: str, oid: str | None
) -> requests.Response:
    headers = {"CallerObjectId": oid} if oid else {}
    return http.get(api(dataverse, f"phonecalls({call})?$select=subject"), headers=headers)


def test_a_user_reads_its_own_phone_call_and_not_a_colleagues(
    dataverse_http: requests.Session, dataverse_reset: DataverseEmulator
) -> None:
    dataverse = dataverse_reset
    _, _, call = people(dataverse)
    assert read_as(dataverse_http, dataverse, call, ANNA_OID).json()["subject"] == "Anna's call"
    refused = read_as(dataverse_http, dataverse, call, BEN_OID)
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "0x80040220"
    assert "SecLib::AccessCheckEx failed" in error_of(refused)["message"]
    assert read_as(dataverse_http, dataverse, call, None).status_code == 200  # the app user


def test_sharing_or_an_organization_role_lets_a_colleague_read(
    dataverse_http: requests.Session, dataverse_reset: DataverseEmulator
) -> None:
    dataverse = dataverse_reset
    _, ben, call = people(dataverse)
    shared = dataverse_http.post(
        f"{dataverse.url}/_control/shares",
        json={"table": "phonecall", "id": call, "systemuserid": ben},
    )
    assert shared.status_code == 204
    assert read_as(dataverse_http, dataverse, call, BEN_OID).status_code == 200

    dataverse.privileges.reset()
    assert read_as(dataverse_http, dataverse, call, BEN_OID).status_code == 403
    granted = dataverse_http.post(
        f"{dataverse.url}/_control/privileges",
        json={"systemuserid": ben, "table": "phonecall", "read": "organization"},
    )
    assert granted.status_code == 204
    assert read_as(dataverse_http, dataverse, call, BEN_OID).status_code == 200


def test_no_read_privilege_missing_rows_and_unknown_users(
    dataverse_http: requests.Session, dataverse_reset: DataverseEmulator
) -> None:
    dataverse = dataverse_reset
    anna, _, call = people(dataverse)
    dataverse.privileges.set_read(anna, "phonecall", "none")
    refused = read_as(dataverse_http, dataverse, call, ANNA_OID)
    assert refused.status_code == 403 and "missing prvReadActivity" in error_of(refused)["message"]
    missing = read_as(dataverse_http, dataverse, "9" * 8 + "-0000-4000-8000-" + "0" * 12, BEN_OID)
    assert missing.status_code == 404 and error_of(missing)["code"] == "0x80040217"
    stranger = read_as(dataverse_http, dataverse, call, "0c000000-0000-4000-8000-00000000000c")
    assert stranger.status_code == 404
    bad = dataverse_http.post(
        f"{dataverse.url}/_control/privileges",
        json={"systemuserid": anna, "table": "phonecall", "read": "sometimes"},
    )
    assert bad.status_code == 400
