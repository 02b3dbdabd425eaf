"""ACS Call Automation emulator: REST surface for the real SDK, Event Grid and callback events."""

from __future__ import annotations

from emulators.acs.emulator import DEFAULT_ACS_NUMBERS, AcsEmulator, start
from emulators.acs.hmac_auth import sign as sign_request
from emulators.acs.tokens import ISSUER

__all__ = ["DEFAULT_ACS_NUMBERS", "ISSUER", "AcsEmulator", "sign_request", "start"]
