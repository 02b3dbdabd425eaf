"""The Functions app: builds it and registers one blueprint per surface. Nothing else."""

import azure.functions as func

from functions.health import bp as health

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health)
