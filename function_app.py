"""The Functions app: builds it and registers one blueprint per surface. Nothing else."""

import azure.functions as func

from functions.acs_webhooks import bp as acs_webhooks
from functions.agent_api import bp as agent_api
from functions.agent_phone import bp as agent_phone
from functions.health import bp as health
from shared.config import get_settings

get_settings()  # validate every app setting now: a bad one stops start-up, naming it

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (health, acs_webhooks, agent_api, agent_phone):
    app.register_functions(blueprint)
