"""Bad input never gets a 500: every documented operation, odd bodies and parameters."""

from __future__ import annotations

import json
import re

import pytest

from functions.openapi import document
from tests.fixtures.product import ANNA, Product

pytestmark = pytest.mark.e2e

BODIES: list[bytes | None] = [
    None,
    b"",
    b"not json",
    b"[]",
    b"null",
    b"42",
    b'"text"',
    json.dumps(
        {
            "number": 5,
            "notes": ["x"],
            "status": {},
            "pools": "all",
            "active": "yes",
            "tones": 7,
            "agentId": None,
            "entity": 1,
            "id": [],
            "takeover": "no",
        }
    ).encode(),
    json.dumps([{"id": 1, "eventType": None, "data": "x"}]).encode(),
    json.dumps({"x" * 300: "y" * 5000}).encode(),
]
PARAMS = ["x", "%00", "..", "a" * 600, "00000000-0000-0000-0000-000000000000"]


def operations() -> list[tuple[str, str]]:
    return [(path, method) for path, ops in document("test")["paths"].items() for method in ops]


@pytest.mark.parametrize(("path", "method"), operations())
def test_odd_input_never_gets_a_500(world: Product, path: str, method: str) -> None:
    tokens = {"agent": world.token(ANNA), "supervisor": world.token(ANNA, ["Phone.Supervisor"])}
    key = {"x-functions-key": world.host.function_key}
    for value in PARAMS:
        concrete = re.sub(r"\{[^}]+\}", value, path).lstrip("/")
        for body in BODIES:
            for who, token in tokens.items():
                reply = world.api(
                    method.upper(),
                    f"{concrete}?limit=-1&q=%&state=9&list=",
                    token=token,
                    raw=body,
                    headers=key,
                )
                assert reply.status_code < 500 or reply.status_code == 503, (
                    who,
                    method,
                    concrete,
                    body,
                    reply.status_code,
                    reply.text[:300],
                )
                if reply.status_code >= 400 and reply.content:
                    assert reply.headers["Content-Type"].startswith("application/problem+json"), (
                        method,
                        concrete,
                        reply.text[:200],
                    )
                assert "Traceback" not in reply.text
