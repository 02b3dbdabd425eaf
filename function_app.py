"""The Functions app: builds it and registers one blueprint per surface. Nothing else."""

import azure.functions as func

from functions.acs_webhooks import bp as acs_webhooks
from functions.agent_api import bp as agent_api
from functions.agent_phone import bp as agent_phone
from functions.call_control import bp as call_control
from functions.callbacks import bp as callbacks
from functions.enrichment import bp as enrichment
from functions.enterprise_calls import bp as enterprise_calls
from functions.health import bp as health
from functions.openapi import bp as openapi
from functions.recordings import bp as recordings
from shared.config import get_settings

get_settings()  # validate every app setting now: a bad one stops start-up, naming it

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (health, openapi, acs_webhooks, agent_api, agent_phone, call_control):
    app.register_functions(blueprint)
app.register_functions(enrichment)
app.register_functions(recordings)
app.register_functions(callbacks)
app.register_functions(enterprise_calls)
