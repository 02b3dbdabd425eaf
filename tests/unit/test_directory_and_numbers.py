"""Agents, pools and phone numbers as admins write them."""

from __future__ import annotations

import json

import pytest

from shared.domain.directory import Directory, check_directory, parse_agents, parse_pools
from shared.domain.numbers import normalise

pytestmark = pytest.mark.unit
OID = "11111111-2222-4333-8444-555555555555"
UID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def test_numbers_become_e164_and_the_unparsable_identify_nobody() -> None:
    assert normalise("040 123 4567", "FI").value == "+358401234567"
    assert normalise("+46 8 123 456 78", "FI").value == "+46812345678"
    assert normalise("4:+358401234567", "FI").value == "+358401234567"
    odd = normalise("anonymous", "FI")
    assert (odd.value, odd.valid) == ("anonymous", False)


def test_agents_are_read_with_their_targets() -> None:
    [agent] = parse_agents(
        json.dumps(
            [
                {
                    "id": "anna",
                    "entraObjectId": OID,
                    "systemUserId": UID,
                    "acsUserId": "8:acs:x",
                    "directNumbers": ["+358900200"],
                    "callerIds": ["+358900100"],
                }
            ]
        )
    )
    assert agent.ring_target == "8:acs:x" and agent.direct_numbers == ("+358900200",)


def test_every_problem_in_the_agents_setting_is_named() -> None:
    with pytest.raises(ValueError) as caught:
        parse_agents(
            json.dumps(
                [
                    {
                        "id": "a b",
                        "entraObjectId": "nope",
                        "systemUserId": UID,
                        "directNumbers": ["0401234"],
                    }
                ]
            )
        )
    message = str(caught.value)
    assert "[0].id" in message and "[0].entraObjectId" in message
    assert "acsUserId or phoneNumber" in message and "0401234" in message


def test_pools_refer_to_known_agents_and_numbers_are_not_shared() -> None:
    agents = parse_agents(
        json.dumps(
            [
                {
                    "id": "a",
                    "entraObjectId": OID,
                    "systemUserId": UID,
                    "phoneNumber": "+358401111111",
                    "directNumbers": ["+358900100"],
                }
            ]
        )
    )
    pools = parse_pools(
        json.dumps(
            [
                {
                    "id": "sales",
                    "numbers": ["+358900100"],
                    "members": ["a", "ghost"],
                    "ringTimeoutSeconds": 15,
                }
            ]
        )
    )
    problems = check_directory(Directory(agents, pools))
    assert any("ghost" in p for p in problems)
    assert any("+358900100" in p for p in problems)


def test_bad_json_is_reported_as_such() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_pools("[{")
