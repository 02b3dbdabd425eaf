"""A local Azure Functions host for Python v2-model apps: HTTP, timer and queue triggers."""
