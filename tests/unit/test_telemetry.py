"""Telemetry: Application Insights through OpenTelemetry only where it is configured, and the
call id on every span of a call's invocation (webhook, callback, queue, outbound requests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from functions.invocation import background_invocation, http_invocation, json_response
from shared import telemetry

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_call_yet() -> Iterator[None]:
    # Other unit tests call services directly (outside an invocation's own context) and so tag
    # this test process's context; these tests start from none.
    token = telemetry._current_call.set(None)
    yield
    telemetry._current_call.reset(token)


def tracer_with_exporter() -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider()
    provider.add_span_processor(telemetry.call_id_processor())
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def request(route_params: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest("POST", "http://h/api/x", body=b"", route_params=route_params or {})


def test_spans_started_while_a_call_is_handled_carry_its_id_and_no_other_span_does() -> None:
    provider, exporter = tracer_with_exporter()
    tracer = provider.get_tracer("test")

    @http_invocation
    def webhook(req: func.HttpRequest) -> func.HttpResponse:
        telemetry.tag_call("call-1")
        with tracer.start_as_current_span("dataverse POST phonecalls"):
            pass
        return json_response({})

    webhook(request())
    with tracer.start_as_current_span("after the invocation"):
        pass
    spans = {s.name: dict(s.attributes or {}) for s in exporter.get_finished_spans()}
    assert spans["dataverse POST phonecalls"] == {telemetry.CALL_ID_ATTRIBUTE: "call-1"}
    assert spans["after the invocation"] == {}
    assert telemetry.current_call_id() is None  # the invocation's context ended with it


def test_a_route_with_a_call_id_tags_the_invocation() -> None:
    seen: list[str | None] = []

    @http_invocation
    def callback(req: func.HttpRequest) -> func.HttpResponse:
        seen.append(telemetry.current_call_id())
        return json_response({})

    callback(request({"callId": "c-42"}))
    callback(request())
    assert seen == ["c-42", None]


def test_queue_invocations_do_not_leak_a_call_into_the_next() -> None:
    seen: list[str | None] = []

    @background_invocation("queue")
    def handler(body: str) -> None:
        seen.append(telemetry.current_call_id())
        telemetry.tag_call(body)

    handler("first")
    handler("second")
    assert seen == [None, None]


def test_nothing_is_configured_or_imported_without_a_connection_string() -> None:
    env = {**os.environ, **json.loads((ROOT / "local.settings.json").read_text())["Values"]}
    env.pop("APPLICATIONINSIGHTS_CONNECTION_STRING", None)
    code = (
        "import sys, json, function_app; "
        "print(json.dumps([m for m in ('opentelemetry', 'azure.monitor.opentelemetry', "
        "'azure.identity') if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    assert json.loads(out.stdout) == []
    assert telemetry.configure_from_environment({}) is False


def test_with_a_connection_string_the_distro_exports_with_the_call_id_processor() -> None:
    code = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from shared import telemetry

env = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey="
    "00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId="
    "11111111-0000-4000-8000-000000000001;Authorization=AAD",
}
assert telemetry.configure_from_environment(env)
provider = trace.get_tracer_provider()
exporter = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(exporter))
telemetry.tag_call("call-7")
with trace.get_tracer("t").start_as_current_span("acs answer"):
    pass
[span] = exporter.get_finished_spans()
print(json.dumps({"provider": type(provider).__name__, "attrs": dict(span.attributes)}))
"""
    env = {
        **os.environ,
        "OTEL_BSP_SCHEDULE_DELAY": "60000",
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["provider"] == "TracerProvider"
    assert result["attrs"][telemetry.CALL_ID_ATTRIBUTE] == "call-7"
