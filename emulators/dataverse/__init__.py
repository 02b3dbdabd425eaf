"""Dataverse Web API v9.2 emulator: the subset the app uses, with the service's error shapes."""

from __future__ import annotations

from emulators.dataverse.server import DataverseEmulator, start

__all__ = ["DataverseEmulator", "start"]
