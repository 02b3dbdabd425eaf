"""The document the app serves is the one the code generates, and the suite checks answers
against it (tests/fixtures/openapi_contract.py validates every answer of every e2e test)."""

from __future__ import annotations

import pytest

from functions.openapi import document
from tests.fixtures.product import ANNA, Product

pytestmark = pytest.mark.e2e


def test_the_served_document_is_the_generated_one(world: Product) -> None:
    served = world.api("GET", "openapi.json")
    assert served.status_code == 200
    assert served.headers["Content-Type"].startswith("application/json")
    body = served.json()
    generated = document(body["info"]["version"])
    assert body["paths"] == generated["paths"]
    assert body["components"] == generated["components"]


def test_every_answer_of_a_documented_operation_is_checked(world: Product) -> None:
    before = world.contract.checked
    world.current(ANNA)  # 200 with its CallView-or-null body
    assert world.api("GET", "me/calls/current").status_code == 401  # problem+json
    assert world.api("POST", "callbacks", json_body={"number": "x"}).status_code == 401  # empty
    assert world.contract.checked == before + 3
