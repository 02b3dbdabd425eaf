"""The name of every queue the app writes and reads: what the queue triggers bind to at cold
start, in a module of its own so that declaring them imports nothing else. Each queue's message
format, writer and reader side by side, is in shared/messages.py; docs/storage.md lists them."""

from __future__ import annotations

ENRICHMENT = "enrichment"
CALLBACK_OFFERS = "callback-offers"
CALLBACK_IMPORTS = "callback-imports"
CALL_REJOINS = "call-rejoins"
POOL_CHECKS = "pool-checks"
ENTERPRISE_NOTIFICATIONS = "enterprise-notifications"
WRAP_UPS = "wrap-ups"
QUEUE_WAITS = "queue-waits"
