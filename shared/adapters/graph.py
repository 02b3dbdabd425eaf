"""Microsoft Graph: app-only HTTP with `@odata.nextLink` paging and 429 honoured, and the Teams
PSTN call records (`getPstnCalls`) read as enterprise calls."""

from __future__ import annotations

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
