"""Microsoft Graph: app-only HTTP with `@odata.nextLink` paging and 429 honoured, the Teams
PSTN call records (`getPstnCalls`) and call records (`callRecords/{id}`) read as enterprise
calls, and the change-notification subscription for call records."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.adapters.http import ThrottledHttp
from shared.domain.calls import Direction
from shared.domain.enterprise_calls import (
    TEAMS_LABEL,
    TEAMS_SOURCE,
    EnterpriseCall,
    UnreadableRecord,
    graph_direction,
    parse_timestamp,
)
from shared.domain.graph_notifications import CALL_RECORDS_RESOURCE, StoredSubscription
from shared.errors import DependencyUnavailable

if TYPE_CHECKING:
    import requests

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
RETRYABLE = (429, 503, 504)


class GraphError(DependencyUnavailable):
    """Graph answered with an error: its HTTP status and Graph's error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"Microsoft Graph {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class GraphClient:
    """GETs to one Graph endpoint. 429/503/504 wait their `Retry-After` (the total wait is
    bounded), then give up with GraphError; nothing read so far is lost to the caller."""

    def __init__(
        self,
        base_url: str,
        token: Callable[[], str],
        *,
        ca_bundle: str | None = None,
        timeout_seconds: int = 15,
        max_attempts: int = 6,
        max_retry_wait_seconds: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 10,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = ThrottledHttp(
            "Microsoft Graph",
            token,
            ca_bundle=ca_bundle,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            max_retry_wait_seconds=max_retry_wait_seconds,
            retryable=RETRYABLE,
            headers={"Accept": "application/json"},
            sleep=sleep,
            pool_size=pool_size,
        )

    @property
    def requests_sent(self) -> int:
        return self.http.requests_sent

    def pages(self, path: str) -> Iterator[list[dict[str, Any]]]:
        """The `value` of each page of a collection, following `@odata.nextLink`."""
        url: str | None = f"{self.base_url}/{path.lstrip('/')}"
        while url is not None:
            body = self.get(url)
            value = body.get("value")
            if not isinstance(value, list):
                raise GraphError(502, "UnexpectedResponse", "a collection without 'value'")
            yield [row for row in value if isinstance(row, dict)]
            next_link = body.get("@odata.nextLink")
            url = self._same_origin(next_link) if next_link else None

    def get(self, url: str) -> dict[str, Any]:
        reply = self.http.send("GET", url)
        if reply.status_code >= 400:
            raise _error(reply)
        try:
            body = reply.json()
        except ValueError:
            raise GraphError(502, "UnexpectedResponse", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise GraphError(502, "UnexpectedResponse", "the body is not a JSON object")
        return body

    def send_json(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """A write (or GET) to `path`; the JSON answer, None for 204 No Content. Raises
        GraphError on an error status (404 included: `.status` tells)."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        headers = {"Content-Type": "application/json"} if body is not None else None
        data = json.dumps(body) if body is not None else None
        reply = self.http.send(method, url, headers=headers, data=data)
        if reply.status_code >= 400:
            raise _error(reply)
        if reply.status_code == 204 or not reply.content:
            return None
        try:
            parsed = reply.json()
        except ValueError:
            raise GraphError(502, "UnexpectedResponse", "the body is not JSON") from None
        if not isinstance(parsed, dict):
            raise GraphError(502, "UnexpectedResponse", "the body is not a JSON object")
        return parsed

    def _same_origin(self, link: Any) -> str:
        # The bearer token goes only to the Graph we were configured with.
        ours, theirs = urlsplit(self.base_url), urlsplit(str(link))
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            raise GraphError(502, "UnexpectedResponse", "a nextLink to another host")
        return str(link)


def _error(reply: requests.Response) -> GraphError:
    try:
        error = reply.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    return GraphError(
        reply.status_code, str(error.get("code", "")), str(error.get("message", ""))[:300]
    )


# ---------------------------------------------------------------------- Teams PSTN calls


def graph_time(moment: datetime) -> str:
    """A DateTimeOffset literal for a Graph function parameter (UTC, whole seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GraphCallRecords:
    """The Teams PSTN call log (application permission CallRecords.Read.All)."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    def pstn_call_pages(
        self, start: datetime, end: datetime
    ) -> Iterator[list[EnterpriseCall | UnreadableRecord]]:
        """Calls that started in [start, end] (both inclusive), one list per Graph page."""
        path = (
            "v1.0/communications/callRecords/getPstnCalls("
            f"fromDateTime={graph_time(start)},toDateTime={graph_time(end)})"
        )
        for rows in self.client.pages(path):
            yield [pstn_call(row) for row in rows]

    def call_record(self, record_id: str) -> EnterpriseCall | UnreadableRecord | None:
        """One call record with its sessions and segments, as an enterprise call; None when
        Graph does not have it (404)."""
        path = f"v1.0/communications/callRecords/{record_id}?$expand=sessions($expand=segments)"
        try:
            record = self.client.send_json("GET", path)
        except GraphError as exc:
            if exc.status == 404:
                return None
            raise
        return call_record_call(record or {})


def call_record_call(record: Mapping[str, Any]) -> EnterpriseCall | UnreadableRecord:
    """A callRecord as an enterprise call. A Teams user's own PSTN call is a peer-to-peer
    record whose session joins a user endpoint and a phone endpoint: the caller's side says
    the direction. The connected time is the span of the session's segments (none: it was
    never answered). Anything else (a meeting, a Teams-to-Teams call) is no user call."""
    record_id = record.get("id")
    if not isinstance(record_id, str) or not record_id:
        return UnreadableRecord("", "no id")
    started = parse_timestamp(record.get("startDateTime"))
    if started is None:
        return UnreadableRecord(record_id, "no startDateTime")
    ended = max(parse_timestamp(record.get("endDateTime")) or started, started)
    user: Mapping[str, Any] | None = None
    number = ""
    direction: Direction | None = None
    connected = 0
    sessions = record.get("sessions")
    if record.get("type") == "peerToPeer" and isinstance(sessions, list):
        for session in sessions:
            if not isinstance(session, Mapping):
                continue
            caller, callee = _identity(session.get("caller")), _identity(session.get("callee"))
            if caller.get("phone") and callee.get("user"):
                direction, user, phone = Direction.INBOUND, callee["user"], caller["phone"]
            elif caller.get("user") and callee.get("phone"):
                direction, user, phone = Direction.OUTBOUND, caller["user"], callee["phone"]
            else:
                continue
            number = str(phone.get("id") or "")
            connected = _connected_seconds(session)
            break
    return EnterpriseCall(
        source=TEAMS_SOURCE,
        source_label=TEAMS_LABEL,
        call_id=record_id,
        user_id=_text(user.get("id")) if user else None,
        user_email=_text(user.get("userPrincipalName")) if user else None,
        direction=direction,
        customer_number=number,
        started_at=started,
        ended_at=ended,
        duration_seconds=connected,
        kind=f"callRecord:{record.get('type') or ''}",
    )


def _identity(endpoint: Any) -> Mapping[str, Any]:
    identity = endpoint.get("identity") if isinstance(endpoint, Mapping) else None
    if not isinstance(identity, Mapping):
        return {}
    return {k: v for k, v in identity.items() if isinstance(v, Mapping)}


def _connected_seconds(session: Mapping[str, Any]) -> int:
    spans = [
        (parse_timestamp(s.get("startDateTime")), parse_timestamp(s.get("endDateTime")))
        for s in session.get("segments") or []
        if isinstance(s, Mapping)
    ]
    known = [(a, b) for a, b in spans if a is not None and b is not None]
    if not known:
        return 0
    return max(0, int((max(b for _, b in known) - min(a for a, _ in known)).total_seconds()))


# ---------------------------------------------------------------------- the subscription


class GraphSubscriptions:
    """The change-notification subscription for call records (`/v1.0/subscriptions`)."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    def create(
        self,
        *,
        notification_url: str,
        lifecycle_url: str,
        client_state: str,
        expires_at: datetime,
    ) -> StoredSubscription:
        """Graph first validates both URLs (our webhook echoes its token), then answers 201."""
        body = self.client.send_json(
            "POST",
            "v1.0/subscriptions",
            {
                "changeType": "created",
                "notificationUrl": notification_url,
                "lifecycleNotificationUrl": lifecycle_url,
                "resource": CALL_RECORDS_RESOURCE,
                "expirationDateTime": graph_timestamp(expires_at),
                "clientState": client_state,
                "latestSupportedTlsVersion": "v1_2",
            },
        )
        return _subscription(body)

    def renew(self, subscription_id: str, expires_at: datetime) -> StoredSubscription | None:
        """PATCH the expiry (this also reauthorizes it); None when Graph no longer has it."""
        try:
            body = self.client.send_json(
                "PATCH",
                f"v1.0/subscriptions/{subscription_id}",
                {"expirationDateTime": graph_timestamp(expires_at)},
            )
        except GraphError as exc:
            if exc.status == 404:
                return None
            raise
        return _subscription(body)

    def ours(self, notification_url: str) -> list[StoredSubscription]:
        """The live subscriptions of this app that deliver to `notification_url`."""
        body = self.client.send_json("GET", "v1.0/subscriptions") or {}
        value = body.get("value")
        return [
            _subscription(item)
            for item in (value if isinstance(value, list) else [])
            if isinstance(item, dict)
            and item.get("notificationUrl") == notification_url
            and str(item.get("resource", "")).lstrip("/") == CALL_RECORDS_RESOURCE.lstrip("/")
        ]

    def delete(self, subscription_id: str) -> None:
        try:
            self.client.send_json("DELETE", f"v1.0/subscriptions/{subscription_id}")
        except GraphError as exc:
            if exc.status != 404:
                raise


def graph_timestamp(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}0Z"


def _subscription(body: Mapping[str, Any] | None) -> StoredSubscription:
    body = body or {}
    expires = parse_timestamp(body.get("expirationDateTime"))
    sub_id = body.get("id")
    if not isinstance(sub_id, str) or expires is None:
        raise GraphError(502, "UnexpectedResponse", "a subscription without id or expiry")
    return StoredSubscription(sub_id, expires)


def pstn_call(row: Mapping[str, Any]) -> EnterpriseCall | UnreadableRecord:
    """A pstnCallLogRow as an enterprise call. The customer is the caller of an inbound call
    and the callee of an outbound one."""
    record_id = row.get("id")
    if not isinstance(record_id, str) or not record_id:
        return UnreadableRecord("", "no id")
    started = parse_timestamp(row.get("startDateTime"))
    if started is None:
        return UnreadableRecord(record_id, "no startDateTime")
    ended = parse_timestamp(row.get("endDateTime")) or started
    call_type = str(row.get("callType") or "")
    direction = graph_direction(call_type)
    number = row.get("callerNumber") if direction is Direction.INBOUND else row.get("calleeNumber")
    duration = row.get("duration")
    if not isinstance(duration, int) or isinstance(duration, bool):
        duration = max(0, int((ended - started).total_seconds()))
    return EnterpriseCall(
        source=TEAMS_SOURCE,
        source_label=TEAMS_LABEL,
        call_id=record_id,
        user_id=_text(row.get("userId")),
        user_email=_text(row.get("userPrincipalName")),
        direction=direction,
        customer_number=str(number or ""),
        started_at=started,
        ended_at=max(ended, started),
        duration_seconds=duration,
        kind=call_type,
    )


def _text(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) and value.strip() else None
