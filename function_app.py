"""The Functions app: builds it and registers one blueprint per surface. Nothing else."""

import azure.functions as func

from functions.health import bp as health
from shared.config import get_settings

get_settings()  # validate every app setting now: a bad one stops start-up, naming it

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health)
