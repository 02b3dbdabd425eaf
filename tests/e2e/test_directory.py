"""The contact directory through `GET /api/directory` (the local host, the Dataverse emulator):
numbers found by their start in any phone column, typed in E.164 or national form, and the
number that matched returned with its column."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from tests.fixtures.product import ANNA, Product

pytestmark = pytest.mark.e2e


def search(world: Product, q: str) -> list[dict[str, Any]]:
    reply = world.api("GET", f"directory?{urlencode({'q': q})}", ANNA)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["results"])


def test_numbers_are_found_by_their_start_in_every_table_and_the_match_returned(
    world: Product,
) -> None:
    seeded = world.dataverse.seed(
        {
            "contacts": [
                {"firstname": "Maija", "lastname": "Mobile", "mobilephone": "+358405551234"}
            ],
            "accounts": [{"name": "Contoso Oy", "telephone2": "09 555 0100"}],
            "leads": [{"firstname": "Liisa", "lastname": "Lead", "mobilephone": "0445550000"}],
            "systemusers": [
                {"firstname": "Sami", "lastname": "Support", "homephone": "+358 50 5557777"}
            ],
        }
    )
    [contact], [account] = seeded["contacts"], seeded["accounts"]
    [lead], [user] = seeded["leads"], seeded["systemusers"]

    # a contact by a mobile-phone prefix typed in national form; D365 holds E.164
    assert search(world, "040 555") == [
        {
            "kind": "contact",
            "id": contact,
            "name": "Maija Mobile",
            "phone": "+358405551234",
            "matchedNumber": "+358405551234",
            "matchedColumn": "mobilephone",
            "matchedLabel": "mobile",
        }
    ]
    # an account by an E.164 prefix of its second number, which D365 holds in national form
    [found] = search(world, "+358 9 555")
    assert (found["kind"], found["id"], found["phone"], found["matchedColumn"]) == (
        "account",
        account,
        "09 555 0100",
        "telephone2",
    )
    [found] = search(world, "+35844555")
    assert (found["kind"], found["id"], found["matchedNumber"]) == ("lead", lead, "0445550000")
    [found] = search(world, "050 5557")  # D365 holds it as phonenumbers formats it
    assert (found["kind"], found["id"], found["matchedLabel"]) == ("systemuser", user, "home")


def test_names_still_match_without_a_matched_number_and_colleagues_appear_once(
    world: Product,
) -> None:
    world.dataverse.seed({"contacts": [{"firstname": "Ann", "lastname": "Agentson"}]})
    results = search(world, "agent")
    assert [(r["kind"], r["name"]) for r in results] == [
        ("contact", "Ann Agentson"),
        ("colleague", "Anna Agent"),  # her D365 user record is shown as the colleague
        ("colleague", "Ben Agent"),
        ("colleague", "Cat Agent"),
    ]
    assert all("matchedNumber" not in r for r in results)
    [anna] = search(world, "+358 10 1000 2")  # her direct number's start
    assert (anna["kind"], anna["id"], anna["matchedColumn"]) == (
        "colleague",
        "anna",
        "directNumbers",
    )


def test_a_query_it_cannot_search_is_a_422(world: Product) -> None:
    for q in ("a", "x" * 101):
        reply = world.api("GET", f"directory?{urlencode({'q': q})}", ANNA)
        assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "q"
