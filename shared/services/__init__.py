"""Use cases, one module per capability; they talk to ports, not SDKs."""
