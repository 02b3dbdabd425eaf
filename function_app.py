"""The Functions app: builds it and registers one blueprint per surface. Nothing else."""

from __future__ import annotations

import azure.functions as func

from functions.acs_webhooks import bp as acs_webhooks
from functions.agent_api import bp as agent_api
from functions.agent_phone import bp as agent_phone
from functions.call_control import bp as call_control
from functions.call_rejoin import bp as call_rejoin
from functions.callbacks import bp as callbacks
from functions.device_tokens import bp as device_tokens
from functions.enrichment import bp as enrichment
from functions.enterprise_calls import bp as enterprise_calls
from functions.health import bp as health
from functions.openapi import bp as openapi
from functions.panel import bp as panel
from functions.pool_alarms import bp as pool_alarms
from functions.prompts import bp as prompts
from functions.queue_waits import bp as queue_waits
from functions.recordings import bp as recordings
from functions.supervisor_api import bp as supervisor_api
from functions.workflows_api import bp as workflows_api
from shared.config import check_settings
from shared.telemetry import configure_from_environment

# Validate the app settings now: a bad one stops start-up, naming it. The JSON lists of agents,
# pools, callback lists and enterprise users are parsed into their models on first use.
check_settings()
configure_from_environment()  # Application Insights, only where its connection string is set

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
SURFACES = (
    health,  # GET /api/health
    openapi,  # GET /api/openapi.json
    acs_webhooks,  # Event Grid and ACS mid-call events
    agent_api,  # the web phone: current call, notes, picking, dialling
    agent_phone,  # availability, pool switches, the single session, housekeeping
    device_tokens,  # the agent's ACS user token for the panel's Calling SDK
    call_control,  # hold, mute, DTMF, transfers, history, directory
    call_rejoin,  # queue: a dropped web phone's caller after REJOIN_SECONDS
    queue_waits,  # queue: a waiting pool caller's announcements and longest wait
    recordings,  # the recording link's audio
    enrichment,  # queue: recording link and pool metrics onto the activity
    callbacks,  # callback requests: intake, import timer and queue
    enterprise_calls,  # Teams and mobile calls: sync timer and push intake
    supervisor_api,  # the live pool dashboard and membership switches
    workflows_api,  # CaseDialog and Contact&Account in the panel, the agent's mobile endpoint
    pool_alarms,  # queue and timer: pool alarms raised and cleared (Teams, e-mail)
    prompts,  # the pools' uploaded prompts: supervisors' uploads, the audio ACS plays
    panel,  # the web phone panel's files and config.json
)
for surface in SURFACES:
    app.register_functions(surface)
