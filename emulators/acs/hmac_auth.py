"""ACS HMAC-SHA256 request signing: verified as the service does it, signed as the SDK does it."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"
# The service tolerates some clock skew on x-ms-date; a request far outside it is a replay.
MAX_CLOCK_SKEW = timedelta(minutes=15)


@dataclass(frozen=True)
class AuthFailure:
    """Why a request was refused; rendered as the ACS error body with status 401."""

    code: str
    message: str


def content_hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def compute_signature(
    access_key: str, verb: str, path_and_query: str, date: str, host: str, body_hash: str
) -> str:
    string_to_sign = f"{verb.upper()}\n{path_and_query}\n{date};{host};{body_hash}"
    digest = hmac.new(
        base64.b64decode(access_key), string_to_sign.encode("utf-8"), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(
    *,
    access_key: str,
    verb: str,
    path_and_query: str,
    hosts: list[str],
    headers: dict[str, str],
    body: bytes,
    now: datetime | None = None,
) -> AuthFailure | None:
    """Check one request's HMAC headers. `hosts` are the host values the signer may have used.

    `headers` must be keyed in lower case.
    """
    authorization = headers.get("authorization", "")
    if not authorization:
        return AuthFailure("Denied", "Authorization header is missing.")
    scheme, _, params = authorization.partition(" ")
    if scheme != "HMAC-SHA256":
        return AuthFailure("Denied", "Unsupported authorization scheme.")
    fields = dict(part.partition("=")[::2] for part in params.split("&"))
    if fields.get("SignedHeaders", "").lower() != SIGNED_HEADERS or not fields.get("Signature"):
        return AuthFailure("Denied", "Authorization header is malformed.")
    date = headers.get("x-ms-date", "")
    try:
        signed_at = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return AuthFailure("Denied", "x-ms-date header is missing or invalid.")
    if signed_at.tzinfo is None:
        signed_at = signed_at.replace(tzinfo=UTC)
    if abs((now or datetime.now(UTC)) - signed_at) > MAX_CLOCK_SKEW:
        return AuthFailure("Denied", "x-ms-date is outside the allowed clock skew.")
    claimed_hash = headers.get("x-ms-content-sha256", "")
    if claimed_hash != content_hash(body):
        return AuthFailure(
            "Denied", "Request 'x-ms-content-sha256' differs from generated content hash."
        )
    expected = fields["Signature"]
    for host in hosts:
        candidate = compute_signature(access_key, verb, path_and_query, date, host, claimed_hash)
        if hmac.compare_digest(candidate, expected):
            return None
    return AuthFailure("7509", "HMAC-SHA256 validation failed")


def sign(
    *, access_key: str, method: str, url: str, body: bytes = b"", now: datetime | None = None
) -> dict[str, str]:
    """Headers that authenticate `method url body` the way the ACS SDK's HMAC policy does.

    For clients that call ACS URLs outside the SDK (e.g. downloading recording content).
    """
    parts = urlsplit(url)
    path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
    date = (now or datetime.now(UTC)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    body_hash = content_hash(body)
    signature = compute_signature(access_key, method, path_and_query, date, parts.netloc, body_hash)
    return {
        "x-ms-date": date,
        "x-ms-content-sha256": body_hash,
        "Authorization": f"HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={signature}",
    }
