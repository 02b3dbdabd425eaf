"""Views render as the API's JSON: camelCase names, ISO `Z` times, enums by value."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.domain.availability import AvailabilityType
from shared.domain.customers import CustomerEntity, CustomerRef, ScreenPop
from shared.views import (
    AvailabilityView,
    PoolDetail,
    PoolFigures,
    ScreenPopView,
    StatusChoice,
    extended,
    to_json,
)

pytestmark = pytest.mark.unit
HELSINKI = timezone(timedelta(hours=2))


def test_names_are_camel_case_or_their_declared_json_name_and_times_utc_with_z() -> None:
    view = AvailabilityView(
        status="Lunch",
        kind=AvailabilityType.OFFWORK,
        until=datetime(2026, 11, 25, 14, 0, tzinfo=HELSINKI),
        returns_to="DND",
        forward_to=None,
        statuses=(StatusChoice(name="DND", kind=AvailabilityType.DND),),
    )
    assert to_json(view) == {
        "status": "Lunch",
        "type": "Offwork",
        "until": "2026-11-25T12:00:00Z",
        "returnsTo": "DND",
        "forwardTo": None,
        "statuses": [{"name": "DND", "type": "DND"}],
    }


def test_an_omitted_field_is_absent_while_none_and_domain_values_render_as_they_are() -> None:
    anna = CustomerRef(CustomerEntity.CONTACT, "c-1", "Anna")
    assert to_json(ScreenPopView(action=ScreenPop.NOTHING)) == {"action": "nothing"}
    assert to_json(ScreenPopView(action=ScreenPop.OPEN_RECORD, record=anna)) == {
        "action": "openRecord",
        "record": {"entity": "contact", "id": "c-1", "name": "Anna"},
    }


def test_an_extended_view_keeps_the_base_values_and_adds_its_own() -> None:
    figures = PoolFigures(
        pool_id="sales",
        name="Sales",
        serving=1,
        free=1,
        active=2,
        active_calls=0,
        queue_length=0,
        max_wait_seconds=0,
    )
    detail = to_json(extended(figures, PoolDetail, numbers=("+358900",), agents=()))
    assert detail == {**to_json(figures), "numbers": ["+358900"], "agents": []}
