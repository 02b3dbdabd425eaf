"""Queue message formats: each writer's message is read back by its reader; others are refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared import messages
from shared.adapters.callback_store import QueueCallbackSignals
from shared.adapters.repositories import QueueDelayedChecks, QueueEnrichment
from shared.domain.callbacks import CallbackRequest
from shared.errors import InvalidInput

pytestmark = pytest.mark.unit


class Sent:
    """A QueueSender stand-in keeping the text QueueSender would enqueue."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, int]] = []

    def send(self, queue: str, body: dict[str, str], *, delay_seconds: int = 0) -> str:
        text = json.dumps(body, separators=(",", ":")).encode()
        self.messages.append((queue, text, delay_seconds))
        return "id"


def test_the_enrichment_writer_and_reader_agree() -> None:
    sent = Sent()
    QueueEnrichment(sent).schedule("call-1", delay_seconds=30)
    [(queue, body, delay)] = sent.messages
    assert (queue, delay) == ("enrichment", 30)
    assert messages.enrichment_message(body, "m-1", 2) == messages.EnrichmentMessage(
        "call-1", "m-1", 2
    )


def test_the_callback_offer_writer_and_reader_agree() -> None:
    sent = Sent()
    QueueDelayedChecks(sent).offer_callback_later("call-2", delay_seconds=90)
    [(queue, body, delay)] = sent.messages
    assert (queue, delay) == ("callback-offers", 90)
    assert messages.callback_offer_call_id(body) == "call-2"


def test_the_callback_import_writer_and_reader_agree() -> None:
    requested = datetime(2026, 3, 1, 10, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    request = CallbackRequest(
        request_id="r-1",
        list_id="sales",
        number="+358401234567",
        requested_at=requested,
        source="api",
    )
    sent = Sent()
    QueueCallbackSignals(sent).captured(request)  # type: ignore[arg-type]
    [(queue, body, _)] = sent.messages
    assert queue == "callback-imports"
    assert json.loads(body)["requestedAt"] == "2026-03-01T08:00:05+00:00"
    read = messages.CallbackImport.read(body)
    assert read == messages.CallbackImport("sales", "r-1", requested.astimezone(UTC))


@pytest.mark.parametrize("body", [b"not json", b"[]", b"{}", b'"x"', b'{"list": "sales"}'])
def test_bodies_no_writer_produces_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="not a callback offer message"):
        messages.callback_offer_call_id(body)
    with pytest.raises(InvalidInput, match="not a callback import message"):
        messages.CallbackImport.read(body)
    with pytest.raises(InvalidInput, match="enrichment message"):
        messages.enrichment_message(body, "m", 1)


def test_a_callback_import_without_a_time_is_refused() -> None:
    body = b'{"list": "sales", "requestId": "r-1", "requestedAt": "yesterday"}'
    with pytest.raises(InvalidInput, match="not a callback import message"):
        messages.CallbackImport.read(body)
