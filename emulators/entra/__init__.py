"""Entra ID emulator: discovery, JWKS, client-credentials tokens and user tokens for tests."""

from __future__ import annotations

from emulators.entra.server import EntraEmulator, start

__all__ = ["EntraEmulator", "start"]
