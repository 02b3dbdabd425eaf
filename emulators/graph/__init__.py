"""Microsoft Graph emulator: the Teams call-record reports the enterprise-call sync reads."""

from __future__ import annotations

from emulators.graph.server import GraphEmulator, pstn_call_row, start

__all__ = ["GraphEmulator", "pstn_call_row", "start"]
