"""Dataverse's read check for a recording's viewer: 403/404 mean "no", any other refusal is
a 503 to retry (never an unhandled 500 from the recording endpoint)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters.dataverse import DataverseError
from shared.adapters.dataverse_access import DataverseActivityAccess
from shared.errors import DependencyUnavailable

ACTIVITY = "0f0e0d0c-0000-4000-8000-000000000001"
VIEWER = "11111111-1111-4111-8111-111111111111"


class AnsweringClient:
    def __init__(self, status: int | None) -> None:
        self.status, self.asked = status, []

    def request(self, method: str, path: str, **options: Any) -> Any:
        self.asked.append((method, path, options.get("headers")))
        if self.status is not None:
            raise DataverseError(self.status, "0x80040220", "refused")
        return None


def access(status: int | None) -> tuple[DataverseActivityAccess, AnsweringClient]:
    client = AnsweringClient(status)
    return DataverseActivityAccess(client), client  # type: ignore[arg-type]


def test_a_read_as_the_viewer_decides() -> None:
    allowed, client = access(None)
    assert allowed.may_read_phone_call(ACTIVITY, VIEWER) is True
    assert client.asked == [
        ("GET", f"phonecalls({ACTIVITY})?$select=activityid", {"CallerObjectId": VIEWER})
    ]
    assert access(403)[0].may_read_phone_call(ACTIVITY, VIEWER) is False
    assert access(404)[0].may_read_phone_call(ACTIVITY, VIEWER) is False


@pytest.mark.parametrize("status", [400, 401])
def test_another_refusal_is_dependency_unavailable(status: int) -> None:
    with pytest.raises(DependencyUnavailable):
        access(status)[0].may_read_phone_call(ACTIVITY, VIEWER)
