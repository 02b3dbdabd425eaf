"""The one refusal type of the ACS emulator: a service error with its HTTP status and code."""

from __future__ import annotations


class AcsError(Exception):
    """A refusal rendered as `{"error": {"code", "message"}}` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
