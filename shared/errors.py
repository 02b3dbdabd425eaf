"""One error type per failure kind; functions/invocation.py maps each to its HTTP response."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """Which input field is wrong and why (rendered into problem+json `errors`)."""

    field: str
    message: str


class Problem(Exception):
    """A failure the caller can act on; `detail` is shown to the caller, so never a secret."""

    title = "Request failed"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(Problem):
    """Malformed input: not JSON, wrong shape, wrong types."""

    title = "Invalid input"


class NotAuthenticated(Problem):
    """No credentials, or credentials that do not validate."""

    title = "Not authenticated"


class NotAllowed(Problem):
    """Authenticated, but this caller may not do this (wrong role, someone else's call)."""

    title = "Forbidden"


class PayloadTooLarge(Problem):
    """A body over the operation's size limit (read no further)."""

    title = "Payload too large"


class UnsupportedMediaType(Problem):
    """A body whose Content-Type is not the JSON the operation reads."""

    title = "Unsupported media type"


class NotFound(Problem):
    title = "Not found"


class Conflict(Problem):
    """The request conflicts with the current state (e.g. another live session)."""

    title = "Conflict"


class Unprocessable(Problem):
    """Well-formed input that breaks a rule (an invalid number, a note over the limit)."""

    title = "Unprocessable input"


class TelephonyError(Conflict):
    """ACS refused an operation (e.g. the participant is already gone): status and code."""

    title = "The phone service refused the operation"

    def __init__(self, operation: str, status: int | None, code: str | None) -> None:
        super().__init__(f"ACS {operation} failed: {status} {code or ''}".strip())
        self.status, self.code = status, code


class DependencyUnavailable(Problem):
    """A dependency (Dataverse, ACS, storage) is down or throttling; try again later."""

    title = "Dependency unavailable"
