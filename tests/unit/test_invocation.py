"""The shared trigger wrapper: problem+json rendering, correlation ids, one log line each."""

from __future__ import annotations

import json
import logging

import azure.functions as func
import pytest

from functions.invocation import background_invocation, http_invocation
from shared.errors import FieldError, NotAllowed, Unprocessable
from shared.services.health import check_health

pytestmark = pytest.mark.unit


def request(headers: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(
        method="POST",
        url="http://h/api/x",
        headers=headers or {},
        params={},
        route_params={},
        body=b"",
    )


def invocation_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "invocation" and r.getMessage().startswith("{")
    ]


def test_a_problem_becomes_problem_json_with_the_field_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @http_invocation
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise Unprocessable("notes too long", errors=[FieldError("notes", "at most 2000")])

    caplog.set_level(logging.INFO)
    response = handler(request({"x-correlation-id": "abc-123"}))

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = json.loads(response.get_body())
    assert body["status"] == 422 and body["detail"] == "notes too long"
    assert body["errors"] == [{"field": "notes", "message": "at most 2000"}]
    assert response.headers["x-correlation-id"] == "abc-123"
    [line] = invocation_lines(caplog)
    assert line["correlationId"] == "abc-123"
    assert line["outcome"] == "rejected" and line["status"] == 422
    assert line["durationMs"] >= 0


def test_each_problem_kind_has_its_status() -> None:
    @http_invocation
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise NotAllowed("not your call")

    assert handler(request()).status_code == 403


def test_an_unexpected_error_is_a_500_without_internals(caplog: pytest.LogCaptureFixture) -> None:
    @http_invocation
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("password=hunter2")

    caplog.set_level(logging.INFO)
    response = handler(request())
    assert response.status_code == 500
    assert b"hunter2" not in response.get_body()
    assert b"Traceback" not in response.get_body()
    assert invocation_lines(caplog)[0]["outcome"] == "failure"


def test_a_setting_found_bad_on_first_use_is_a_503_naming_it() -> None:
    from shared.config import ConfigError

    @http_invocation
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise ConfigError(["SERVICE_POOLS: pool 'sales' has unknown members ['zed']"])

    response = handler(request())
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert b"SERVICE_POOLS" in response.get_body()


def test_the_trace_id_of_a_traceparent_is_the_correlation_id() -> None:
    @http_invocation
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = handler(request({"traceparent": f"00-{trace}-00f067aa0ba902b7-01"}))
    assert response.headers["x-correlation-id"] == trace


def test_a_failing_background_function_is_logged_and_reraised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @background_invocation("queue")
    def handler(msg: object) -> None:
        raise ValueError("boom")

    caplog.set_level(logging.INFO)
    with pytest.raises(ValueError):
        handler(object())
    [line] = invocation_lines(caplog)
    assert line["trigger"] == "queue" and line["outcome"] == "failure"
    assert line["error"] == "ValueError"


class _Up:
    def ping(self) -> None:
        return None


class _Down:
    def ping(self) -> None:
        raise ConnectionError("https://secret-host/?sig=abc")


def test_health_reports_each_dependency_and_hides_error_text() -> None:
    report = check_health("1.2.3", [("a", _Up()), ("b", _Down())])
    assert not report.healthy
    assert [(d.name, d.up, d.error) for d in report.dependencies] == [
        ("a", True, None),
        ("b", False, "ConnectionError"),
    ]
    assert check_health("1", [("a", _Up())]).healthy


def body_request(raw: bytes) -> func.HttpRequest:
    return func.HttpRequest(method="PUT", url="http://h/api/x", headers={}, body=raw)


def test_a_body_is_decoded_into_its_dataclass_naming_each_wrong_or_missing_field() -> None:
    from functions.bodies import AvailabilityBody, DialBody, NotesBody, PoolsBody, SessionBody
    from functions.invocation import read_body
    from shared.errors import InvalidInput

    dial = read_body(body_request(b'{"number": "+358401", "callerId": null}'), DialBody)
    assert (dial.number, dial.caller_id) == ("+358401", None)
    with pytest.raises(InvalidInput) as missing:
        read_body(body_request(b'{"number": ""}'), DialBody)
    assert [e.field for e in missing.value.errors] == ["number"]
    with pytest.raises(InvalidInput) as wrong:
        read_body(body_request(b'{"number": 5, "callerId": []}'), DialBody)
    assert [e.field for e in wrong.value.errors] == ["number", "callerId"]
    assert read_body(body_request(b'{"notes": null}'), NotesBody).notes is None
    with pytest.raises(InvalidInput):
        read_body(body_request(b"{}"), NotesBody)  # notes must be there, even if null
    with pytest.raises(InvalidInput) as item:
        read_body(body_request(b'{"pools": [{"poolId": "a", "active": "yes"}]}'), PoolsBody)
    assert [e.field for e in item.value.errors] == ["pools[0].active"]
    pools = read_body(body_request(b'{"pools": [{"poolId": "a", "active": false}]}'), PoolsBody)
    assert pools.pools[0].pool_id == "a" and pools.pools[0].active is False
    assert read_body(body_request(b""), SessionBody).takeover is False  # no body is {}
    cleared = read_body(body_request(b'{"forwardTo": null}'), AvailabilityBody)
    assert cleared.given == {"forwardTo"} and cleared.status is None
    with pytest.raises(InvalidInput):
        read_body(body_request(b"{}"), AvailabilityBody)  # neither status nor forwardTo
    with pytest.raises(InvalidInput):
        read_body(body_request(b"[1]"), DialBody)
