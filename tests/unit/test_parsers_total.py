"""Every parser of outside input is total: for any bytes it returns or raises our typed errors.

Event Grid and ACS events, queue messages (shared/messages.py), Graph notifications and every
request body of functions/bodies.py, fed arbitrary bytes and arbitrary JSON, envelope-shaped
or not. Anything but a shared.errors.Problem would be a 500 (or a poisoned queue) in the host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.errors import Problem

pytestmark = pytest.mark.unit

PROPERTY = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
DEEP = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 3000 + b"1" + b"}" * 3000

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "Z", "2026-03-02T09:00:00Z", "4:+358401234567", "callRecord"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)
# Objects with the keys our parsers look for, holding anything.
KEYS = [
    "id", "eventType", "type", "data", "eventTime", "time", "subject", "callId", "list",
    "requestId", "requestedAt", "kind", "since", "event", "reason", "subscriptionId", "value",
    "clientState", "resource", "resourceData", "from", "to", "serverCallId",
    "incomingCallContext", "validationCode", "recordingStorageInfo", "participants",
    "number", "notes", "status", "forwardTo", "pools", "agentId", "tones", "takeover",
    "entity", "active", "callerId", "name", "note", "lifecycleEvent",
]  # fmt: skip
shaped = st.recursive(
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS), inner | json_values, max_size=6)
    ),
    max_leaves=10,
)
bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | shaped.map(lambda v: json.dumps(v).encode())
    | shaped.map(lambda v: json.dumps([v]).encode())
)


def total(parse: Callable[[bytes], Any], body: bytes) -> None:
    with contextlib.suppress(Problem):  # our typed errors: anything else fails the test
        parse(body)


def _acs_incoming(body: bytes) -> None:
    from shared.adapters import acs_events

    events = acs_events.event_grid_events(body)
    acs_events.validation_code(events)
    for event in events:
        acs_events.incoming_call(event)


def _acs_recordings(body: bytes) -> None:
    from shared.adapters import acs_events

    for event in acs_events.event_grid_events(body):
        acs_events.recording_ready(event)


def _acs_callbacks(body: bytes) -> None:
    from shared.adapters import acs_events

    acs_events.call_events(body)


def _graph(body: bytes) -> None:
    from shared.domain.graph_notifications import read_notifications
    from shared.json_input import loads

    read_notifications(loads(body), "state")


def _messages() -> dict[str, Callable[[bytes], Any]]:
    from shared import messages

    return {
        "enrichment": lambda b: messages.enrichment_message(b, "m-1", 1),
        "callback-offers": messages.callback_offer_call_id,
        "call-rejoins": messages.rejoin_check_call_id,
        "queue-waits": messages.queue_wait_check,
        "callback-imports": messages.CallbackImport.read,
        "enterprise-notifications": messages.enterprise_notice,
    }


PARSERS: dict[str, Callable[[bytes], Any]] = {
    "acs/incoming": _acs_incoming,
    "acs/recordings": _acs_recordings,
    "acs/callbacks": _acs_callbacks,
    "graph notifications": _graph,
}


@pytest.mark.parametrize("name", sorted(PARSERS))
@PROPERTY
@given(body=bodies)
@example(body=DEEP)
@example(body=DEEP_OBJECT)
@example(body=b'[{"id": "1", "eventType": ["a"], "data": "x"}]')
@example(body=b"\xff\xfe")
@example(body=b"NaN")
def test_each_event_parser_raises_only_our_typed_errors(name: str, body: bytes) -> None:
    total(PARSERS[name], body)


@pytest.mark.parametrize("queue", sorted(_messages()))
@PROPERTY
@given(body=bodies)
@example(body=DEEP)
@example(body=b'{"callId": {"x": 1}}')
@example(body=b'{"kind": "lifecycle", "event": []}')
def test_each_queue_message_reader_raises_only_our_typed_errors(queue: str, body: bytes) -> None:
    total(_messages()[queue], body)


def _body_classes() -> list[type]:
    from functions import bodies

    return [
        c
        for c in vars(bodies).values()
        if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == bodies.__name__
    ]


@pytest.mark.parametrize("cls", _body_classes(), ids=lambda c: c.__name__)
@PROPERTY
@given(body=bodies)
@example(body=DEEP)
@example(body=DEEP_OBJECT)
def test_each_request_body_decoder_raises_only_our_typed_errors(cls: type, body: bytes) -> None:
    from functions.invocation import read_body, read_raw_json

    req = func.HttpRequest(method="POST", url="http://h/api/x", headers={}, body=body)
    total(lambda _: read_body(req, cls), body)
    total(lambda _: read_raw_json(req), body)
