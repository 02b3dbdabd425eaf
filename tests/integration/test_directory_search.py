"""The directory search (DataverseCrm.search) against the Dataverse emulator over HTTPS: every
phone column, E.164 and national prefixes, one `$batch`, and the filter semantics it relies on
(startswith/contains as T-SQL LIKE patterns, Dataverse's errors) over plain HTTP."""

from __future__ import annotations

import pytest
import requests

from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from shared.adapters.dataverse import DataverseCrm
from shared.domain.customers import PhoneMatch
from shared.domain.directory_search import directory_query
from tests.fixtures.entra_dataverse import app_dataverse_client

pytestmark = pytest.mark.integration

APP = "99999999-0000-4000-8000-0000000000ff"


@pytest.fixture
def crm(
    local_tls: LocalTLS, entra: EntraEmulator, dataverse_reset: DataverseEmulator
) -> DataverseCrm:
    dataverse_reset.seed(
        {
            "contacts": [
                {"firstname": "Maija", "lastname": "Mobile", "mobilephone": "040 1234567"},
                {"firstname": "Ari", "lastname": "Assistant", "assistantphone": "+358 40 1299999"},
                {"firstname": "Noora", "lastname": "Nobody", "telephone1": "+358 9 555 0100"},
            ],
            "accounts": [
                {"name": "Contoso Oy", "telephone1": "09 555 0100", "telephone2": "+358501112222"}
            ],
            "leads": [{"firstname": "Liisa", "lastname": "Lead", "telephone3": "0401200000"}],
            "systemusers": [
                {"firstname": "Sami", "lastname": "User", "address1_telephone1": "+358401277777"},
                {
                    "firstname": "Dora",
                    "lastname": "Disabled",
                    "mobilephone": "0401288888",
                    "isdisabled": True,
                },
                {
                    "firstname": "App",
                    "lastname": "User",
                    "mobilephone": "0401266666",
                    "applicationid": APP,
                },
            ],
        }
    )
    return DataverseCrm(
        app_dataverse_client(local_tls, entra, dataverse_reset),
        duration_column="new_durationseconds",
    )


def found(crm: DataverseCrm, text: str) -> dict[tuple[str, str], PhoneMatch | None]:
    return {(e.kind, e.name): e.matched for e in crm.search(directory_query(text, "FI"), top=10)}


def test_a_national_prefix_finds_every_table_in_either_stored_form(
    crm: DataverseCrm, dataverse_reset: DataverseEmulator
) -> None:
    before = len(dataverse_reset.requests_seen())
    results = found(crm, "040 12")
    assert results == {
        ("contact", "Maija Mobile"): PhoneMatch("040 1234567", "mobilephone", "mobile"),
        ("contact", "Ari Assistant"): PhoneMatch("+358 40 1299999", "assistantphone", "assistant"),
        ("lead", "Liisa Lead"): PhoneMatch("0401200000", "telephone3", "other"),
        ("systemuser", "Sami User"): PhoneMatch("+358401277777", "address1_telephone1", "main"),
    }  # no disabled user, no application user, no other number
    searches = [r for r in dataverse_reset.requests_seen()[before:] if not r["in_batch"]]
    assert [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in searches] == [("POST", "$batch")]


def test_an_e164_prefix_finds_a_national_number_and_a_second_column(crm: DataverseCrm) -> None:
    assert found(crm, "+358 50 111") == {
        ("account", "Contoso Oy"): PhoneMatch("+358501112222", "telephone2", "other")
    }
    assert found(crm, "+358 9 555") == {
        ("contact", "Noora Nobody"): PhoneMatch("+358 9 555 0100", "telephone1", "business"),
        ("account", "Contoso Oy"): PhoneMatch("09 555 0100", "telephone1", "main"),
    }


def test_names_still_match_and_carry_no_matched_number(crm: DataverseCrm) -> None:
    [entry] = crm.search(directory_query("contoso", "FI"), top=10)
    assert (entry.kind, entry.name, entry.phone, entry.matched) == (
        "account", "Contoso Oy", "09 555 0100", None,
    )  # fmt: skip


# ---------------------------------------------------------------------- the emulator's filters


def get(
    http: requests.Session, dv: DataverseEmulator, query: str, entity_set: str = "accounts"
) -> requests.Response:
    select = "fullname" if entity_set == "contacts" else "name"
    return http.get(f"{dv.api_url}/{entity_set}", params={"$select": select, "$filter": query})


def names(reply: requests.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    return sorted(r["name"] for r in reply.json()["value"])


def test_string_functions_are_like_patterns(
    dataverse_http: requests.Session, dataverse_reset: DataverseEmulator
) -> None:
    dataverse_reset.seed(
        {"accounts": [{"name": "100% Oy"}, {"name": "1000 Oy"}, {"name": "A_B"}, {"name": "AxB"}]}
    )
    dv, http = dataverse_reset, dataverse_http
    assert names(get(http, dv, "startswith(name,'100%')")) == ["100% Oy", "1000 Oy"]
    assert names(get(http, dv, "startswith(name,'100[%]')")) == ["100% Oy"]
    assert names(get(http, dv, "contains(name,'a_b')")) == ["A_B", "AxB"]
    assert names(get(http, dv, "contains(name,'a[_]b')")) == ["A_B"]
    assert names(get(http, dv, "endswith(name,'[^_]b')")) == ["AxB"]
    assert names(get(http, dv, "startswith(name,'1') or contains(name,'x')")) == [
        "100% Oy", "1000 Oy", "AxB",
    ]  # fmt: skip


def test_what_dataverse_refuses_is_refused_in_its_shape(
    dataverse_http: requests.Session, dataverse_reset: DataverseEmulator
) -> None:
    dv, http = dataverse_reset, dataverse_http
    unterminated = get(http, dv, "lastname eq 'O'Bryan'", "contacts")  # Microsoft's example
    assert unterminated.status_code == 400
    assert unterminated.json() == {
        "error": {
            "code": "0x80060888",
            "message": "There is an unterminated literal at position 21 in "
            "'lastname eq 'O'Bryan''.",
        }
    }
    for bad in ("startswith(telephone1,1)", "startswith(nosuchcolumn,'1')", "tolower(name) eq 'a'"):
        reply = get(http, dv, bad)
        assert reply.status_code == 400 and reply.json()["error"]["code"] == "0x80060888", bad
