"""Teams incoming webhook emulator: records what the app posts to a channel's webhook."""

from __future__ import annotations

from emulators.teams.server import TeamsWebhookEmulator, start

__all__ = ["TeamsWebhookEmulator", "start"]
