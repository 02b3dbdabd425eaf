"""Dataverse for the enterprise-call sync: customers and already-logged calls of many numbers in
one `$batch`, and many Phone Call activities created (and completed) in one `$batch`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from shared.adapters.dataverse import (
    API,
    DUPLICATE_CODES,
    ENTITY_SET,
    NAME_COLUMN,
    PHONE_COLUMNS,
    DataverseClient,
    DataverseError,
    Response,
    parse_batch_response,
    phone_call_body,
)
from shared.domain.customers import CustomerEntity, CustomerRef
from shared.domain.enterprise_calls import (
    CrmView,
    EnterpriseActivity,
    LoggedCall,
    WriteResult,
    WriteStatus,
    parse_timestamp,
)
from shared.errors import DependencyUnavailable

T = TypeVar("T")

# Numbers per query: 6 phone columns x 20 numbers keeps each URL a few KB (it travels inside
# the $batch body, so the GET URL limit does not apply, but Dataverse parses each filter).
NUMBERS_PER_QUERY = 20
# A $batch holds at most 1000 requests; each activity takes two (create, complete).
ACTIVITIES_PER_BATCH = 250
MAX_BATCH_PARTS = 1000  # Dataverse's limit of requests in one $batch
RECEIVED, MADE = 4, 2  # phonecall statuscode of a completed inbound / outbound call


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _in(column: str, values: Sequence[str]) -> str:
    quoted = ",".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"Microsoft.Dynamics.CRM.In(PropertyName='{column}',PropertyValues=[{quoted}])"


def _odata_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DataverseEnterpriseCrm:
    """Batched reads and writes; Dataverse requests grow with batches, not with records."""

    def __init__(self, client: DataverseClient) -> None:
        self.client = client

    # ------------------------------------------------------------------ reads

    def look_up(
        self,
        wanted: Sequence[tuple[str, str]],
        since: datetime,
        until: datetime,
        *,
        accounts_and_leads: bool,
    ) -> CrmView:
        """Customers of each number, and Phone Calls owned by the given users with those numbers
        that started in [since, until]; `wanted` is (owner systemuser id, E.164 number) pairs."""
        if not wanted:
            return CrmView()
        entities = list(PHONE_COLUMNS) if accounts_and_leads else [CustomerEntity.CONTACT]
        numbers = sorted({n for _, n in wanted})
        paths: list[tuple[str, CustomerEntity | None]] = []
        for chunk in _chunks(numbers, NUMBERS_PER_QUERY):
            for entity in entities:
                columns = PHONE_COLUMNS[entity]
                condition = " or ".join(_in(c, chunk) for c in columns)
                select = ",".join((f"{entity.value}id", NAME_COLUMN[entity], *columns))
                paths.append(
                    (
                        f"{ENTITY_SET[entity]}?$select={select}"
                        f"&$filter={quote(condition, safe='')}",
                        entity,
                    )
                )
            owners = sorted({o for o, n in wanted if n in chunk})
            condition = (
                "("
                + " or ".join(f"_ownerid_value eq {o}" for o in owners)
                + f") and {_in('phonenumber', chunk)}"
                f" and actualstart ge {_odata_time(since)} and actualstart le {_odata_time(until)}"
            )
            paths.append(
                (
                    "phonecalls?$select=activityid,phonenumber,actualstart,_ownerid_value"
                    f"&$filter={quote(condition, safe='')}",
                    None,
                )
            )
        customers: dict[str, list[CustomerRef]] = {}
        logged: list[LoggedCall] = []
        wanted_numbers = set(numbers)
        responses: list[Response] = []
        for part in _chunks([p for p, _ in paths], MAX_BATCH_PARTS):
            responses.extend(self.client.batch_get(part))
        for (_, kind), response in zip(paths, responses, strict=True):
            for row in self._rows(response):
                if kind is None:
                    started = parse_timestamp(row.get("actualstart"))
                    if started is not None and row.get("phonenumber"):
                        logged.append(
                            LoggedCall(
                                str(row["activityid"]).lower(),
                                str(row.get("_ownerid_value") or "").lower(),
                                str(row["phonenumber"]),
                                started,
                            )
                        )
                    continue
                ref = CustomerRef(
                    kind, str(row[f"{kind.value}id"]), row.get(NAME_COLUMN[kind]) or ""
                )
                for number in {row.get(c) for c in PHONE_COLUMNS[kind]} & wanted_numbers:
                    customers.setdefault(str(number), []).append(ref)
        return CrmView({n: tuple(refs) for n, refs in customers.items()}, tuple(logged))

    def _rows(self, response: Response) -> list[dict[str, Any]]:
        """The rows of one batched GET, following `@odata.nextLink` (rare: 5000 per page)."""
        _raise_for(response)
        body = response.body if isinstance(response.body, dict) else {}
        rows = list(body.get("value", []))
        next_link = body.get("@odata.nextLink")
        while next_link:
            page = self.client.request("GET", str(next_link).split(API, 1)[-1]).body
            rows.extend(page.get("value", []))
            next_link = page.get("@odata.nextLink")
        return rows

    # ------------------------------------------------------------------ writes

    def create_activities(self, activities: Sequence[EnterpriseActivity]) -> dict[str, WriteResult]:
        """Create each activity and complete it, atomically per activity (one change set
        each), many per `$batch`; one failure does not stop the others."""
        results: dict[str, WriteResult] = {}
        for chunk in _chunks(activities, ACTIVITIES_PER_BATCH):
            results.update(self._create_batch(chunk))
        return results

    def _create_batch(self, activities: Sequence[EnterpriseActivity]) -> dict[str, WriteResult]:
        boundary = f"batch_{uuid.uuid4()}"
        parts: list[str] = []
        for n, item in enumerate(activities):
            changeset = f"changeset_{uuid.uuid4()}"
            body = {**phone_call_body(item.activity), "category": item.category}
            done = {"statecode": 1, "statuscode": MADE if item.activity.outgoing else RECEIVED}
            content_id = 2 * n + 1
            parts.append(
                f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
                + _request_part(
                    changeset,
                    content_id,
                    f"POST {self.client.org_url}{API}phonecalls",
                    body,
                )
                + _request_part(changeset, content_id + 1, f"PATCH ${content_id}", done)
                + f"--{changeset}--\r\n"
            )
        payload = ("".join(parts) + f"--{boundary}--\r\n").encode()
        reply = self.client.request(
            "POST",
            "$batch",
            raw=payload,
            headers={
                "Content-Type": f"multipart/mixed; boundary={boundary}",
                "Prefer": "odata.continue-on-error",
            },
        )
        raw = reply.body if isinstance(reply.body, bytes) else str(reply.body).encode()
        responses = parse_batch_response(raw, reply.headers.get("Content-Type", ""))
        # A change set answers with one response per request when it succeeds, and with only
        # the failing request's response when it does not; answers come in request order.
        results: dict[str, WriteResult] = {}
        position = 0
        for item in activities:
            activity_id = item.activity.activity_id
            if position >= len(responses):
                results[activity_id] = WriteResult(WriteStatus.RETRY, "no answer in the batch")
                continue
            response = responses[position]
            if response.status < 400:
                results[activity_id] = WriteResult(WriteStatus.CREATED)
                position += 2
                continue
            results[activity_id] = _failure(response)
            position += 1
        return results


def _request_part(changeset: str, content_id: int, request_line: str, body: Any) -> str:
    return (
        f"--{changeset}\r\nContent-Type: application/http\r\n"
        f"Content-Transfer-Encoding: binary\r\nContent-ID: {content_id}\r\n\r\n"
        f"{request_line} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        f"{json.dumps(body)}\r\n"
    )


def _error_of(response: Response) -> tuple[str, str]:
    body = response.body if isinstance(response.body, dict) else {}
    error = body.get("error", {}) if isinstance(body.get("error"), dict) else {}
    return str(error.get("code", "")), str(error.get("message", ""))[:300]


def _failure(response: Response) -> WriteResult:
    code, message = _error_of(response)
    if code in DUPLICATE_CODES or response.status in (409, 412):
        return WriteResult(WriteStatus.EXISTS)
    if response.status in (429, 503) or response.status >= 500:
        return WriteResult(WriteStatus.RETRY, f"{response.status} {code}".strip())
    return WriteResult(WriteStatus.REFUSED, f"{response.status} {code}: {message}")


def _raise_for(response: Response) -> None:
    if response.status < 400:
        return
    if response.status in (429, 503):
        raise DependencyUnavailable(f"Dataverse is throttling or unavailable ({response.status})")
    code, message = _error_of(response)
    raise DataverseError(response.status, code, message)
