"""Application Insights through OpenTelemetry, and the call id that correlates a call's spans.

Configured only where APPLICATIONINSIGHTS_CONNECTION_STRING is set (Azure), and only then is the
distro imported: a local run or a test pays nothing at cold start. Every span started while a
call is being handled (the webhook, the ACS callback, the enrichment queue message, and the
Dataverse, ACS and storage requests they make) carries that call's id as `app.call_id`, so one
query in Application Insights shows a call end to end."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

CALL_ID_ATTRIBUTE = "app.call_id"
_current_call: ContextVar[str | None] = ContextVar("current_call", default=None)
_configured: list[bool] = []


def current_call_id() -> str | None:
    return _current_call.get()


def tag_call(call_id: str) -> None:
    """From here to the end of this invocation, spans belong to `call_id`. The triggers run each
    invocation in a context of its own (functions/invocation.py), so nothing leaks into the next."""
    _current_call.set(call_id)
    if _configured:
        from opentelemetry import trace

        trace.get_current_span().set_attribute(CALL_ID_ATTRIBUTE, call_id)


def call_id_processor() -> Any:
    """A span processor stamping each new span with the current call id (OpenTelemetry SDK)."""
    from opentelemetry.sdk.trace import SpanProcessor

    class CallIdSpanProcessor(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            call_id = _current_call.get()
            if call_id:
                span.set_attribute(CALL_ID_ATTRIBUTE, call_id)

    return CallIdSpanProcessor()


def configure_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Send traces, logs and metrics to Application Insights when its connection string is set.
    With APPLICATIONINSIGHTS_AUTHENTICATION_STRING `ClientId=...;Authorization=AAD` (as infra/
    sets it) ingestion is authenticated by that managed identity (local auth is disabled)."""
    env = os.environ if environ is None else environ
    connection = (env.get("APPLICATIONINSIGHTS_CONNECTION_STRING") or "").strip()
    if not connection or _configured:
        return bool(_configured)
    from azure.monitor.opentelemetry import configure_azure_monitor

    options: dict[str, Any] = {}
    auth = dict(
        part.split("=", 1)
        for part in (env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING") or "").split(";")
        if "=" in part
    )
    if not env.get("OTEL_TRACES_SAMPLER"):
        # Calls are few and each matters: keep every trace (the distro's default rate-limits).
        options["sampling_ratio"] = 1.0
    if auth.get("Authorization", "").upper() == "AAD":
        from shared.adapters.managed_identity import managed_identity

        options["credential"] = managed_identity(auth.get("ClientId") or "")
    configure_azure_monitor(
        connection_string=connection,
        span_processors=[call_id_processor()],
        # Only what this app uses: requests (Dataverse, Graph), the Azure SDKs (ACS, storage).
        instrumentation_options={
            name: {"enabled": False}
            for name in ("django", "fastapi", "flask", "psycopg2", "urllib", "urllib3")
        },
        **options,
    )
    _configured.append(True)
    return True
